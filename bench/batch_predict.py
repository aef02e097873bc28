"""Batch predictions (issue 23): `predict --input` as a Beam job against the
one-process small form, on the same real photos.

  limit   the bare serving_images call on pre-read, prepared bytes (no file
          I/O, no checks, no Beam) in batches of --batch-size, in a process
          of its own with TensorFlow on one thread: the 2-core limit is
          twice its rate. (`bare`: the same call on every core, for scale.)
  small   the small form's own function (pipeline/predict.predict: read,
          header check, ingest conversion, one signature call), called
          in-process on chunks of --batch-size files: one call on all
          1000 would send them as one batch.
  beam-1  `resizer-pipeline predict --input DIR --output F --workers 1`
          (cli.main in this process: DirectRunner in_memory), end to end:
          model check, listing, job start-up, output file.
  beam-2  the same with --workers 2 (multi_processing: two worker processes,
          each importing TensorFlow and loading the model).
Each rate is the median of --repeats runs, the four interleaved.

The model: --model DIR, or (default) one exported with the Trainer's own
export code (trainer/export.py): tiny_cnn, learned resizer 300 -> 150,
untrained weights (throughput does not depend on them).

usage: PYTHONPATH=. .venv/bin/python bench/batch_predict.py [--data DIR]
       [--limit 1000] [--model DIR] [--batch-size 64] [--repeats 3]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import common  # noqa: E402  (quiets TensorFlow before it loads)

import tensorflow as tf  # noqa: E402

from pipeline import cli, predict  # noqa: E402


def export_model(folder):
  """A pushed-model-shaped SavedModel from the Trainer's export code."""
  # pylint: disable=import-outside-toplevel
  import tasks
  from pipeline.config import PipelineConfig, trainer_settings
  from testing.helpers import transform_output
  from trainer import training
  from trainer.export import export
  kind = tasks.get("classification")
  output = transform_output(os.path.join(folder, "transform"),
                            "classification", input_size=300)
  names = kind.class_names(output)
  config = PipelineConfig()
  config.model.backbone = "tiny_cnn"  # 300 -> 150: the defaults
  settings = trainer_settings(config.trainer_config("learned"))
  spec = training.model_spec(settings.model, "learned", kind.head(len(names)),
                             settings.train.seed)
  model = training.compile_model(spec, settings.train, kind,
                                 settings.task_settings)
  path = os.path.join(folder, "model")
  export(model, path, output, names, spec.input_size, kind,
         settings.task_settings, settings.max_pixels)
  return path


def chunks(items, size):
  return [items[i:i + size] for i in range(0, len(items), size)]


def bare_rate(model, images, batch_size):
  serve = model.signatures[predict.SIGNATURE]
  start = time.perf_counter()
  for batch in chunks(images, batch_size):
    serve(image_bytes=tf.constant(batch))
  return len(images) / (time.perf_counter() - start)


def one_core_rate(model_dir, data, batch_size):
  """bare_rate in a new process whose TensorFlow runs on one thread."""
  run = subprocess.run([sys.executable, __file__, "--one-core", "--model",
                        model_dir, "--data", data, "--limit", "0",
                        "--batch-size", str(batch_size)], check=True,
                       capture_output=True, text=True)
  return float(run.stdout.strip().splitlines()[-1])


def _one_core(args):
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  _, model = predict.load(args.model)
  images = _prepared(model, args.data)
  bare_rate(model, images[:args.batch_size], args.batch_size)  # trace once
  print(bare_rate(model, images, args.batch_size))
  return 0


def _prepared(model, data):
  limit = predict.max_pixels(model)
  return [predict.prepare(os.path.join(data, rel), limit)[0].encoded
          for rel in common.image_files(data)]


def small_rate(model, paths, batch_size):
  start = time.perf_counter()
  results = []
  for batch in chunks(paths, batch_size):
    results += predict.predict(model, batch)
  assert not any("error" in r for r in results), results[:3]
  return len(paths) / (time.perf_counter() - start)


def beam_rate(model_dir, data, n, out, workers, batch_size):
  start = time.perf_counter()
  rc = cli.main(["predict", "--model", model_dir, "--input", data,
                 "--output", out, "--workers", str(workers),
                 "--batch-size", str(batch_size)])
  rate = n / (time.perf_counter() - start)
  with open(out) as f:
    assert rc == 0 and sum(1 for _ in f) == n, rc
  return rate


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_data_args(parser)
  parser.set_defaults(limit=1000)
  parser.add_argument("--model", help="a pushed model folder (default: "
                      "export an untrained tiny_cnn 300 -> 150)")
  parser.add_argument("--batch-size", type=int, default=cli.BATCH_SIZE)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--one-core", action="store_true",
                      help=argparse.SUPPRESS)  # one_core_rate's process
  args = parser.parse_args()
  if args.one_core:
    return _one_core(args)
  work = tempfile.mkdtemp(prefix="batch-predict-bench-")
  data = common.subset(args.data, args.limit, os.path.join(work, "data"))
  paths = [os.path.join(data, rel) for rel in common.image_files(data)]
  model_dir = args.model or export_model(work)
  _, model = predict.load(model_dir)
  images = _prepared(model, data)
  print(f"{common.machine()}; {len(paths)} images; model {model_dir}; "
        f"batch {args.batch_size}", flush=True)
  bare_rate(model, images[:args.batch_size], args.batch_size)  # trace once
  rates = {"limit": [], "bare": [], "small": [], "beam-1": [], "beam-2": []}
  out = os.path.join(work, "predictions.jsonl")
  for repeat in range(args.repeats):
    rates["limit"].append(one_core_rate(model_dir, data, args.batch_size))
    rates["bare"].append(bare_rate(model, images, args.batch_size))
    rates["small"].append(small_rate(model, paths, args.batch_size))
    for workers in (1, 2):
      rates[f"beam-{workers}"].append(beam_rate(
          model_dir, data, len(paths), out, workers, args.batch_size))
    print(f"repeat {repeat + 1}: " + ", ".join(
        f"{k} {v[-1]:.1f}" for k, v in rates.items()), flush=True)
  median = {k: statistics.median(v) for k, v in rates.items()}
  ceiling = 2 * median["limit"]
  print(f"\n{'form':<8} {'images/s':>9} {'/ small':>8} {'share of 2-core limit':>22}")
  for name, rate in median.items():
    print(f"{name:<8} {rate:9.1f} {rate / median['small']:8.2f} "
          f"{100 * rate / ceiling:21.1f}%")
  print(f"2-core limit: {ceiling:.1f} images/s (2 x the bare serving call "
        "on one thread)")
  print(f"beam-2 / small: {median['beam-2'] / median['small']:.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
