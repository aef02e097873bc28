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
Target: TFX / plain <= 1.3, as the ratio of the medians of --repeats runs of
each side, run interleaved (plain, TFX, TFX, plain, plain, TFX, ...: each pair
alternates which goes first, so drift in the machine's load hits both sides).

usage: .venv/bin/python bench/overhead.py [--data DIR] [--limit N]
       [--backbone mobilenet_v2] [--input-size 128] [--target-size 64]
       [--epochs 1] [--batch-size 32] [--repeats 3] [--output DIR (kept)]
       [--input-only EXTRA_S: the plain input's passes alone, and the epochs
        at which decoding once pays back EXTRA_S]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import (add_data_args, REPO, add_training_args, component_durations,
                    image_files, machine, pipeline_config, print_durations,
                    print_trainer_phases, quiet, run_flags, subset,
                    training_flags)


def plain_input(args, output):
  """(the Trainer's settings, folder(split, shuffle)): the plain script's
  input, decoded from the JPEGs on every pass."""
  # pylint: disable=import-outside-toplevel
  from pipeline.config import trainer_settings
  from trainer.keras_lib import keras
  config = pipeline_config(args, args.data, output)
  settings = trainer_settings(config.trainer_config("learned"))
  size = settings.model.input_size

  def folder(split, shuffle):
    return keras.utils.image_dataset_from_directory(
        os.path.join(args.data, split), label_mode="categorical",
        image_size=(size, size), batch_size=settings.train.batch_size,
        shuffle=shuffle, seed=settings.train.seed)
  return settings, folder


def input_passes(args, passes=3):
  """Seconds of each pass over the plain script's train and validation
  input alone (decode and resize, no model): what it pays again every
  epoch, and the pipeline pays once in Transform."""
  # pylint: disable=import-outside-toplevel
  from pipeline.data_layout import detect_layout
  _, folder = plain_input(args, tempfile.mkdtemp())
  splits = [folder("train", True),
            folder(detect_layout(args.data)[1], False)]
  seconds = []
  for _ in range(passes):
    start = time.perf_counter()
    for split in splits:
      for _ in split.prefetch(2):
        pass
    seconds.append(time.perf_counter() - start)
  return seconds


def plain_keras(args):
  """The notebook way; writes {resizer: validation top-1} to args.result."""
  # pylint: disable=import-outside-toplevel
  import tasks
  from trainer import training
  from pipeline.data_layout import detect_layout
  settings, folder = plain_input(args, os.path.dirname(args.result))
  seed = settings.train.seed
  train = folder("train", True)
  classes = len(train.class_names)
  train = train.map(lambda x, y: (
      training.augment(x, settings.train.augment, seed), y))
  val = folder(detect_layout(args.data)[1], False)  # validation/ or eval/
  task = tasks.get(settings.task)
  top1, fit_s = {}, {}
  for resizer in ("learned", "bilinear"):
    spec = training.model_spec(settings.model, resizer, task.head(classes),
                               seed)
    model = training.compile_model(spec, settings.train, task,
                                   settings.task_settings)
    start = time.perf_counter()
    # The Trainer's own fit: the same schedule and BatchNorm recalibration
    # (from un-augmented training images, as there).
    history = training.fit(model, settings.train, train.prefetch(2),
                           val.prefetch(2), folder("train", True))
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


def dag_seconds(log):
  """The seconds on `resizer-pipeline run`'s own total line (from reading its
  settings to the end of the last step), or None."""
  with open(log) as f:
    lines = f.read().splitlines()
  for line in reversed(lines):
    m = re.fullmatch(r"total (?:(\d+) min (\d+) s|([\d.]+) s) \(.*\)", line)
    if m:
      return int(m[1]) * 60 + int(m[2]) if m[1] else float(m[3])
  return None


def run_pair(args, data, output, plain_first):
  """One plain and one TFX run, in the order given: their wall seconds, top-1
  and the plain script's fit seconds. The TFX run writes <output>/pipeline:
  the CLI refuses an --output holding files it did not write (the logs)."""
  os.makedirs(output, exist_ok=True)
  pipeline_output = os.path.join(output, "pipeline")
  log = os.path.join(output, "tfx.log")
  result = os.path.join(output, "plain_top1.json")
  sides = {}

  def plain():
    sides["plain"] = timed_process(
        [sys.executable, os.path.abspath(__file__), "--plain", "--data", data,
         "--result", result] + training_flags(args),
        os.path.join(output, "plain.log"))

  def tfx():
    sides["tfx"] = timed_process(
        [sys.executable, "-m", "pipeline.cli", "run", "--data", data,
         "--output", pipeline_output] + run_flags(args), log)

  for side in ((plain, tfx) if plain_first else (tfx, plain)):
    side()
  with open(result) as f:
    plain_result = json.load(f)
  with open(os.path.join(pipeline_output, "report", "results.json")) as f:
    tfx_top1 = {k: m["top1"] for k, m in json.load(f)["models"].items()}
  return {"plain_s": sides["plain"], "tfx_s": sides["tfx"],
          "plain_top1": plain_result["top1"], "tfx_top1": tfx_top1,
          "plain_fit_s": plain_result["fit_s"], "output": pipeline_output,
          "log": log}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_data_args(parser)
  parser.add_argument("--output", help="keep the TFX runs' output here "
                      "(default: a temporary folder, removed)")
  parser.add_argument("--repeats", type=int, default=1,
                      help="runs of each side, interleaved; medians reported")
  add_training_args(parser)
  parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--result", help=argparse.SUPPRESS)
  parser.add_argument(
      "--input-only", type=float, metavar="EXTRA_S",
      help="time only the plain script's input passes; with the pipeline's "
      "fixed extra seconds EXTRA_S (from a whole run), print the epochs at "
      "which decoding once would pay for it")
  args = parser.parse_args()
  if args.plain:
    quiet()
    plain_keras(args)
    return
  if args.input_only is not None:
    quiet()
    seconds = input_passes(args)
    per_epoch = statistics.median(seconds)
    print(f"machine: {machine()}; the plain script's input, one pass over "
          f"train and validation: {per_epoch:.1f} s (median of "
          f"{', '.join(f'{x:.1f}' for x in seconds)})")
    print(f"the pipeline decodes once: over E epochs the plain script pays "
          f"{per_epoch:.1f} x (E - 1) s more; the pipeline's fixed extra "
          f"{args.input_only:.0f} s is paid back from E = "
          f"{1 + args.input_only / per_epoch:.0f} epochs (at {args.epochs}: "
          f"{per_epoch * (args.epochs - 1):.0f} s of {args.input_only:.0f})")
    return

  tmp = tempfile.mkdtemp()
  try:
    data = subset(args.data, args.limit, os.path.join(tmp, "subset"))
    output = args.output or os.path.join(tmp, "tfx")
    if os.path.exists(os.path.join(output, "pipeline")) or \
        os.path.exists(os.path.join(output, "run-1")):
      sys.exit(f"--output {output} holds an earlier run; give a new folder")
    for rel in image_files(data):  # both sides then read from the page cache
      with open(os.path.join(data, rel), "rb") as f:
        f.read()
    print(f"machine: {machine()}; data: {data} ({len(image_files(data))} "
          f"images); settings: {' '.join(run_flags(args))}; "
          f"repeats: {args.repeats}", flush=True)

    runs = []
    for i in range(args.repeats):
      # Each TFX run gets its own output (a fresh MLMD: no cache, nothing in
      # production), so every run does the same work.
      folder = output if args.repeats == 1 else os.path.join(output,
                                                              f"run-{i + 1}")
      pair = run_pair(args, data, folder, plain_first=i % 2 == 0)
      runs.append(pair)
      print(f"run {i + 1}: plain {pair['plain_s']:.1f} s, TFX "
            f"{pair['tfx_s']:.1f} s ({pair['tfx_s'] / pair['plain_s']:.2f})",
            flush=True)

    last = runs[-1]
    for name, top1, seconds in (("plain Keras", last["plain_top1"],
                                 [r["plain_s"] for r in runs]),
                                ("TFX pipeline", last["tfx_top1"],
                                 [r["tfx_s"] for r in runs])):
      print(f"{name:12s} {statistics.median(seconds):8.1f} s median of "
            f"{', '.join(f'{s:.1f}' for s in seconds)}; last run's top-1 "
            f"learned {100 * top1['learned']:.2f}%, bilinear "
            f"{100 * top1['bilinear']:.2f}%")
    print("TFX run by component (MLMD execution spans; the share of the TFX "
          "wall time), last run:")
    print_durations(component_durations(
        os.path.join(last["output"], "metadata.sqlite")), last["tfx_s"])
    print("Trainers' own split (model_info.json), last run; plain Keras fit: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in last["plain_fit_s"].items()))
    print_trainer_phases(os.path.join(last["output"], "pipeline_root"))
    inside = [dag_seconds(r["log"]) for r in runs]
    if None not in inside:  # an older CLI prints no total line
      print("TFX process outside the DAG run (interpreter start, imports, "
            "exit): " + ", ".join(f"{r['tfx_s'] - s:.1f} s"
                                  for r, s in zip(runs, inside)))
    plain_s = statistics.median(r["plain_s"] for r in runs)
    tfx_s = statistics.median(r["tfx_s"] for r in runs)
    print(f"extra time of the pipeline (medians): {tfx_s - plain_s:.1f} s; "
          f"logs and artifacts: {output if args.output else '(removed)'}")
    print(f"TFX / plain wall time: {tfx_s / plain_s:.2f} (medians of "
          f"{len(runs)}; target <= 1.3)")
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
  main()
