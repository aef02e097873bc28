"""Peak memory of a default 300 px Trainer (issue: Vertex AI at run time, bounded
memory): the shuffle buffer sized in bytes vs tfx_bsl's 10,000 records.

The training split of cats_and_dogs_filtered (2000 photos) is decoded and
resized to 300 px as Transform does and written as transformed examples.
Then, in a fresh process per setting: the default model (DenseNet-121,
learned resizer, 300 -> 150) is built and compiled with the default recipe,
one epoch of the Trainer's own input_dataset (shuffled, augmented) is read
through, and one training step (batch 32) is taken; the process's peak RSS
is printed after the pass and after the step.

usage: .venv/bin/python bench/trainer_memory.py [--data DIR] [--images 2000]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

from common import DEFAULT_DATA, machine, quiet

OLD_RECORDS = 10_000  # tfx_bsl's default shuffle buffer


def peak_rss_mb():
  """This process's peak RSS. Not getrusage: Linux carries ru_maxrss over
  fork and exec, so a child would report this (image-holding) parent's."""
  with open("/proc/self/status", encoding="ascii") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) / 1024
  raise RuntimeError("no VmHWM in /proc/self/status")


def _settings(buffer_mb):
  """The pipeline's default Trainer settings with this shuffle buffer."""
  # pylint: disable=import-outside-toplevel
  from pipeline.config import PipelineConfig, trainer_settings
  config = PipelineConfig()
  config.train.shuffle_buffer_mb = buffer_mb
  return trainer_settings(config.trainer_config("learned"))


def _dataset(settings, accessor, pattern, schema):
  """The Trainer's shuffled, augmented training input."""
  # pylint: disable=import-outside-toplevel
  import tasks
  from trainer import training
  return training.input_dataset(
      accessor, [pattern], schema, tasks.get(settings.task), 2,
      settings.model.input_size, settings.train, settings.train.batch_size,
      training=True)


def input_child(folder, buffer_mb):
  """The input pipeline alone: one shuffled epoch, no model."""
  # pylint: disable=import-outside-toplevel
  from model_speed import transformed_accessor
  settings = _settings(buffer_mb)
  accessor, pattern, schema = transformed_accessor(folder)
  before = peak_rss_mb()
  for _ in _dataset(settings, accessor, pattern, schema):
    pass
  print(json.dumps({"before_mb": before, "peak_rss_mb":
                    peak_rss_mb()}))


def child(folder, buffer_mb):
  # pylint: disable=import-outside-toplevel
  import tensorflow as tf
  import tasks
  from trainer import training
  from model_speed import transformed_accessor
  settings = _settings(buffer_mb)
  accessor, pattern, schema = transformed_accessor(folder)
  task = tasks.get(settings.task)
  spec = training.model_spec(settings.model, settings.resizer, task.head(2),
                             settings.train.seed)
  model = training.compile_model(spec, settings.train, task,
                                 settings.task_settings)
  batches = 0
  ds = _dataset(settings, accessor, pattern, schema)
  for x, y in ds:
    batches += 1
  # Before any training step: the model plus a full pass of the input.
  input_peak = peak_rss_mb()
  model.train_on_batch(x, y)
  print(json.dumps({
      "buffer_mb": buffer_mb,
      "records": training.shuffle_buffer_records(settings.train,
                                                 settings.model.input_size),
      "batches": batches, "input_size": settings.model.input_size,
      "input_peak_rss_mb": input_peak,
      "peak_rss_mb": peak_rss_mb(),
      "tf": tf.__version__}))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data", default=DEFAULT_DATA)
  parser.add_argument("--images", type=int, default=2000)
  parser.add_argument("--child", nargs=3, metavar=("FOLDER", "BUFFER_MB",
                                                    "input|trainer"))
  args = parser.parse_args()
  quiet()
  if args.child:
    (input_child if args.child[2] == "input" else child)(
        args.child[0], int(args.child[1]))
    return
  from model_speed import write_images_transformed  # pylint: disable=import-outside-toplevel
  from paired import load_split  # pylint: disable=import-outside-toplevel
  images, labels, _ = load_split(args.data, "train", 300,
                                 args.images // 2)
  folder = tempfile.mkdtemp()
  write_images_transformed(folder, images, labels)
  del images
  old_mb = math.ceil(OLD_RECORDS * 300 * 300 * 3 / 2 ** 20)
  print(f"machine: {machine()}; {len(labels)} transformed 300 px training "
        f"examples of {args.data}", flush=True)
  print("| shuffle buffer | records | input pass alone: peak RSS (growth) "
        "MB | Trainer after one input pass, MB | Trainer with a training "
        "step, MB |")
  print("|---|---|---|---|---|", flush=True)

  def run(mb, kind):
    out = subprocess.run([sys.executable, __file__, "--child", folder,
                          str(mb), kind], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(__file__))
    return json.loads(out.stdout.strip().splitlines()[-1])
  for label, mb in (("--shuffle-buffer-mb 256 (default)", 256),
                    (f"tfx_bsl's {OLD_RECORDS:,} records", old_mb)):
    alone, r = run(mb, "input"), run(mb, "trainer")
    print(f"| {label} | {r['records']:,} | {alone['peak_rss_mb']:,.0f} "
          f"(+{alone['peak_rss_mb'] - alone['before_mb']:,.0f}) | "
          f"{r['input_peak_rss_mb']:,.0f} | {r['peak_rss_mb']:,.0f} |",
          flush=True)


if __name__ == "__main__":
  main()
