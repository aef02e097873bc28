"""Whole-pipeline wall time vs a plain Keras script (issue: benchmarks on real
data).

TFX:   `resizer-pipeline run` in a fresh process, as a user runs it: the whole
       DAG (ExampleGen ... Trainers ... both Evaluators, Pusher, report).
plain: this script with --plain in a fresh process, as the seed notebooks:
       tf.data straight from the folders (keras.utils.image_dataset_from_
       directory), the same two models (trainer.model.build_model) with the
       same settings, built by the CLI's own parser (backbone, sizes, epochs,
       batch, optimizer, label smoothing, augmentation, seed), each fit with
       the validation split as validation data, as the Trainer does.
Both wall times include interpreter start and imports. Then the TFX run's
per-component durations, read from its MLMD executions, show where the extra
time goes.
Target: TFX / plain <= 1.3.

usage: .venv/bin/python bench/overhead.py [--data DIR] [--limit N]
       [--backbone mobilenet_v2] [--input-size 128] [--target-size 64]
       [--epochs 1] [--batch-size 32] [--output DIR (kept)]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import (add_data_args, REPO, add_training_args, component_durations,
                    image_files, machine, pipeline_config, print_durations,
                    print_trainer_phases, quiet, run_flags, subset,
                    training_flags)


def plain_keras(args):
  """The notebook way; writes {resizer: validation top-1} to args.result."""
  # pylint: disable=import-outside-toplevel
  from trainer.keras_lib import keras
  from trainer.task import augment, compile_model, fit, model_spec_from_config
  from pipeline.data_layout import detect_layout
  config = pipeline_config(args, args.data, os.path.dirname(args.result))
  cfg = config.trainer_config("learned")
  size, seed = int(cfg["input_size"]), int(cfg["seed"])

  def folder(split, shuffle):
    return keras.utils.image_dataset_from_directory(
        os.path.join(args.data, split), label_mode="categorical",
        image_size=(size, size), batch_size=int(cfg["batch_size"]),
        shuffle=shuffle, seed=seed)

  train = folder("train", True)
  classes = len(train.class_names)
  train = train.map(lambda x, y: (augment(x, cfg["augment"], seed), y))
  val = folder(detect_layout(args.data)[1], False)  # validation/ or eval/
  top1, fit_s = {}, {}
  for resizer in ("learned", "bilinear"):
    cfg = config.trainer_config(resizer)
    model = compile_model(model_spec_from_config(cfg, classes), cfg)
    start = time.perf_counter()
    # The Trainer's own fit: the same schedule and BatchNorm recalibration
    # (from un-augmented training images, as there).
    history = fit(model, cfg, train.prefetch(2), val.prefetch(2),
                  folder("train", True))
    fit_s[resizer] = time.perf_counter() - start
    top1[resizer] = history.history["val_accuracy"][-1]
  with open(args.result, "w") as f:
    json.dump({"top1": top1, "fit_s": fit_s}, f)


def timed_process(command, log):
  """Wall seconds of a fresh process; its output goes to `log`."""
  start = time.perf_counter()
  with open(log, "w") as f:
    code = subprocess.call(command, stdout=f, stderr=subprocess.STDOUT,
                           cwd=REPO)
  seconds = time.perf_counter() - start
  if code:
    with open(log) as f:
      sys.exit(f"{' '.join(command[:4])} ... failed ({code}); end of {log}:\n"
               + "".join(f.readlines()[-30:]))
  return seconds


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_data_args(parser)
  parser.add_argument("--output", help="keep the TFX run's output here "
                      "(default: a temporary folder, removed)")
  add_training_args(parser)
  parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--result", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.plain:
    quiet()
    plain_keras(args)
    return

  tmp = tempfile.mkdtemp()
  try:
    data = subset(args.data, args.limit, os.path.join(tmp, "subset"))
    output = args.output or os.path.join(tmp, "tfx")
    if os.path.exists(os.path.join(output, "metadata.sqlite")):
      sys.exit(f"--output {output} holds an earlier run; give a new folder")
    os.makedirs(output, exist_ok=True)
    for rel in image_files(data):  # both sides then read from the page cache
      with open(os.path.join(data, rel), "rb") as f:
        f.read()
    print(f"machine: {machine()}; data: {data} ({len(image_files(data))} "
          f"images); settings: {' '.join(run_flags(args))}")

    result = os.path.join(output, "plain_top1.json")
    plain_s = timed_process(
        [sys.executable, os.path.abspath(__file__), "--plain", "--data", data,
         "--result", result] + training_flags(args),
        os.path.join(output, "plain.log"))
    with open(result) as f:
      plain = json.load(f)
    plain_top1 = plain["top1"]
    tfx_s = timed_process(
        [sys.executable, "-m", "pipeline.cli", "run", "--data", data,
         "--output", output] + run_flags(args), os.path.join(output, "tfx.log"))
    with open(os.path.join(output, "report", "results.json")) as f:
      tfx_top1 = {k: m["top1"] for k, m in json.load(f)["models"].items()}

    for name, top1, seconds in (("plain Keras", plain_top1, plain_s),
                                ("TFX pipeline", tfx_top1, tfx_s)):
      print(f"{name:12s} {seconds:8.1f} s  top-1 learned "
            f"{100 * top1['learned']:.2f}%, bilinear "
            f"{100 * top1['bilinear']:.2f}%")
    print("TFX run by component (MLMD execution spans; the share of the TFX "
          "wall time):")
    print_durations(component_durations(
        os.path.join(output, "metadata.sqlite")), tfx_s)
    print("Trainers' own split (model_info.json); plain Keras fit: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in plain["fit_s"].items()))
    print_trainer_phases(os.path.join(output, "pipeline_root"))
    print(f"extra time of the pipeline: {tfx_s - plain_s:.1f} s; logs and "
          f"artifacts: {output if args.output else '(removed)'}")
    print(f"TFX / plain wall time: {tfx_s / plain_s:.2f} (target <= 1.3)")
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
  main()
