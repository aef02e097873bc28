"""Learned vs bilinear top-1 on real photos, through the real pipeline (issue:
benchmarks on real data).

pipeline.local_runner.run (the whole DAG, in this process) on
cats_and_dogs_filtered's own train/validation split (2000 + 1000 images),
random initial weights; both top-1s come from results.json (TFMA on the
validation split). Prints the configuration, wall and CPU minutes, and the
per-component times from MLMD.
The seed reports 67.67% learned vs 60.19% bilinear (ratio 1.124) with
DenseNet-121 at 300 -> 150 after 10 epochs on far more data.

Defaults (DenseNet-121 as the seed, 128 -> 64, batch 32, 3 epochs) are sized
for <= 30 minutes on 2 cores, estimated on a busy CPU (a test suite running):
train steps of about 2.5 s (learned) and 1.3 s (bilinear), 63 steps + 32
validation batches an epoch, so about 4.6 minutes an epoch for both models;
plus about 15 minutes that do not scale with epochs (graph tracing and the
SavedModel export of each Trainer, about 3.5 minutes each; both Evaluators
about 5 minutes; ExampleGen, StatisticsGen, Transform about 2 minutes):
about 29 minutes busy, less on an idle CPU. Each extra epoch costs ~4.6 min.
MobileNetV2 is not the default: its BatchNorm momentum (0.999) leaves the
moving statistics mostly at their initial values after a few hundred steps
from scratch, so its eval-mode top-1 says little.
Target: learned / bilinear top-1 > 1 (the learned resizer is worth it).

usage: .venv/bin/python bench/accuracy.py [--data DIR] [--limit N]
       [--backbone densenet121] [--input-size 128] [--target-size 64]
       [--epochs 3] [--batch-size 32] [--output DIR (kept)]
"""
import argparse
import os
import shutil
import tempfile
import time

from common import (add_data_args, add_training_args, component_durations,
                    cpu_seconds, image_files, machine, pipeline_config,
                    print_durations, print_trainer_phases, quiet, run_flags,
                    subset)

from pipeline import local_runner


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_data_args(parser)
  parser.add_argument("--output", help="keep the run's output here "
                      "(default: a temporary folder, removed)")
  add_training_args(parser, backbone="densenet121", epochs=3)
  args = parser.parse_args()
  quiet()
  tmp = tempfile.mkdtemp()
  try:
    data = subset(args.data, args.limit, os.path.join(tmp, "subset"))
    output = args.output or os.path.join(tmp, "out")
    config = pipeline_config(args, data, output)
    m, t = config.model, config.train
    print(f"machine: {machine()}; data: {data} ({len(image_files(data))} "
          f"images)")
    print(f"config: {m.backbone}, {m.input_size} -> {m.target_size}, resizer "
          f"{m.filters} filters x {m.res_blocks} block(s), weights "
          f"{m.weights or 'random'}; {t.epochs} epochs, batch {t.batch_size}, "
          f"{t.optimizer} lr {t.learning_rate} ({t.schedule}), label smoothing "
          f"{t.label_smoothing}, augment {t.augment}, seed {t.seed}; flags: "
          f"{' '.join(run_flags(args))}")
    start, cpu = time.perf_counter(), cpu_seconds()
    results = local_runner.run(config)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu

    print(f"examples: {results['examples']}, rejected {results['rejected']}")
    print("by component (MLMD execution spans):")
    print_durations(component_durations(config.metadata_path), wall)
    print_trainer_phases(config.pipeline_root)
    for name in ("learned", "bilinear"):
      model = results["models"][name]
      history = model["history"]
      print(f"{name:8s} top-1 {100 * model['top1']:.2f}%  params "
            f"{model['params']:,}  last epoch: train accuracy "
            f"{history['accuracy'][-1]:.3f}, val accuracy "
            f"{history['val_accuracy'][-1]:.3f}")
    print(f"pushed: {results['pushed']} ({results['reason']})")
    print(f"wall {wall / 60:.1f} min, CPU {cpu / 60:.1f} min (this process + "
          f"finished Beam workers); output: {args.output or '(removed)'}")
    learned = results["models"]["learned"]["top1"]
    bilinear = results["models"]["bilinear"]["top1"]
    print(f"learned - bilinear top-1: {100 * (learned - bilinear):+.2f} "
          f"points; learned / bilinear top-1: {learned / bilinear:.3f} "
          "(seed: 1.124; target > 1)")
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
  main()
