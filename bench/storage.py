"""Transformed-example storage vs raw pixels (issue: benchmarks on real data).

For each split: on-disk bytes of Transform's transformed_examples divided by
its example count, over the raw uint8 pixels at the resizer input size
(input_size^2 x 3, read back from the records' own `pixels` feature).
Target <= 1.0: the gzipped tf.Examples cost no more than the bare pixels.

Cheapest honest way: the pipeline itself (create_pipeline, so every setting
is the pipeline's), run by LocalDagRunner as a TFX partial run up to
Transform: ImageExampleGen, StatisticsGen, CuratedSchemaGen, ExampleValidator,
ValidationGate, Transform; no training. Bytes per example do not depend on
how many images there are, so --limit gives the same ratio sooner. With
--output of an earlier run (accuracy.py, overhead.py --output, the CLI)
holding a Transform output, that output is measured and nothing runs.

usage: .venv/bin/python bench/storage.py [--data DIR] [--limit N]
       [--input-size 300] [--output DIR]
"""
import argparse
import glob
import os
import shutil
import tempfile

from common import add_data_args, machine, quiet, subset

import tensorflow as tf
from tfx import v1 as tfx
from tfx.orchestration import pipeline as tfx_pipeline

from components.tfx_internals import beam_executor_argv
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline
from trainer import features

def run_up_to_transform(config):
  """The DAG's own nodes up to Transform (TFX partial run; Transform's
  upstream: ImageExampleGen, StatisticsGen, CuratedSchemaGen,
  ExampleValidator, ValidationGate); nothing after it runs."""
  options = tfx_pipeline.RunOptions(to_nodes=["Transform"])
  with beam_executor_argv():  # as local_runner.run
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config),
                                           run_options=options)


def latest(pattern):
  found = sorted(glob.glob(pattern), key=os.path.getmtime)
  return found[-1] if found else None


def split_stats(split_dir):
  """(files' bytes, examples, serialized bytes, raw pixel bytes per example)."""
  files = sorted(glob.glob(os.path.join(split_dir, "*")))
  on_disk = sum(os.path.getsize(f) for f in files)
  count = serialized = pixels = 0
  for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
    if not pixels:
      example = tf.train.Example.FromString(record.numpy())
      pixels = len(
          example.features.feature[features.PIXELS].bytes_list.value[0])
    count += 1
    serialized += len(record.numpy())
  return on_disk, count, serialized, pixels


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_data_args(parser)
  parser.add_argument("--input-size", type=int, default=300,
                      help="resizer input size Transform resizes to")
  parser.add_argument("--output", help="an earlier run's output to measure, "
                      "or where to keep this run's (default: temporary)")
  args = parser.parse_args()
  quiet()
  tmp = tempfile.mkdtemp()
  try:
    output = args.output or os.path.join(tmp, "out")
    transformed = latest(os.path.join(
        output, "pipeline_root", "Transform", "transformed_examples", "*"))
    if transformed:
      print(f"measuring the Transform output of an earlier run: {transformed}")
    else:
      config = PipelineConfig(output=output)  # pipeline defaults otherwise
      config.data.path = subset(args.data, args.limit,
                                os.path.join(tmp, "subset"))
      # Transform reads input_size alone; the target size only has to be valid.
      config.model.input_size = args.input_size
      config.model.target_size = args.input_size // 2
      config.validate()
      data = config.data.path
      print(f"machine: {machine()}; running ImageExampleGen ... Transform on "
            f"{data}, input size {args.input_size}")
      run_up_to_transform(config)
      transformed = latest(os.path.join(
          output, "pipeline_root", "Transform", "transformed_examples", "*"))
    examples = latest(os.path.join(
        output, "pipeline_root", "ImageExampleGen", "examples", "*"))

    totals = [0, 0, 0]
    for split in ("train", "eval"):
      on_disk, count, serialized, pixels = split_stats(
          os.path.join(transformed, f"Split-{split}"))
      side = round((pixels / 3) ** 0.5)
      jpeg = sum(os.path.getsize(f) for f in glob.glob(
          os.path.join(examples, f"Split-{split}", "*")))
      print(f"{split:5s}: {count} examples, {on_disk / count:,.0f} B/example "
            f"on disk ({serialized / count:,.0f} B serialized, gzip "
            f"{on_disk / serialized:.3f}); raw pixels {side}x{side}x3 = "
            f"{pixels:,} B; ratio {on_disk / count / pixels:.3f}; "
            f"ExampleGen's encoded images {jpeg / count:,.0f} B/example")
      totals = [totals[0] + on_disk, totals[1] + count, pixels]
    on_disk, count, pixels = totals
    print(f"bytes per transformed example / raw uint8 pixels: "
          f"{on_disk / count / pixels:.3f} (target <= 1.0)")
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
  main()
