"""ImageExampleGen throughput on real photos (issue: benchmarks on real data).

Three rates on the same files, measured in one run with the page cache warm:
  decode      PIL open + load of each file's bytes on one core; the 2-core
              decode limit is twice this.
  plain       one process: read, validate and build the same tf.Example with
              the executor's own inspect_image/make_example, write the same
              TFRecords as ExampleGen (gzip at level 0, train/eval): what a
              notebook would do.
  bound       the plain loop's work plus the executor's sha256, split over
              two threads with no framework (each writes its own files):
              what any two-core ingest can reach on this machine right now.
  ExampleGen  the executor as the tests run it (Executor().Do with artifacts),
              with the pipeline's local Beam args, in each DirectRunner mode:
              in_memory (the default: one process) and multi_processing
              (2 worker processes).
Beam start-up (executor construction plus a Do on a handful of images) is
timed separately, so rates are printed including and excluding it. A
one-core breakdown of the per-file work shows where ExampleGen's time goes.
Every rate is the median of --repeats runs, each side's runs interleaved
(one run swings by a third on a shared machine).
Targets: ExampleGen >= 1.5x the plain loop; >= 75% of the 2-core decode limit.

usage: .venv/bin/python bench/ingest.py [--data DIR] [--limit N]
       [--modes in_memory,multi_processing] [--workers 2] [--repeats 3]
       [--beam-arg=--flag=value ...]
"""
import argparse
import collections
import concurrent.futures
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time

from common import (add_data_args, cpu_seconds, image_files, machine, quiet,
                    subset)

import tensorflow as tf
from PIL import Image
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.image_example_gen import IngestReport
from components.tfx_internals import beam_executor_argv
from components.image_example_gen.executor import Executor
from components.image_example_gen.ingest import inspect_image, make_example
from pipeline.config import PipelineConfig

DEFAULT_MAX_PIXELS = PipelineConfig().data.max_pixels
from pipeline.data_layout import example_gen_configs

# What ImageExampleGen writes: gzip members of stored (undeflated) blocks.
STORED_GZIP = tf.io.TFRecordOptions(compression_type="GZIP",
                                    compression_level=0)


def split_and_label(rel):
  split, label = rel.split("/")[:2]
  return ("train" if split == "train" else "eval"), label


def _decode_all(blobs):
  for data in blobs:
    with Image.open(io.BytesIO(data)) as image:
      image.load()


def decode_rate(blobs, threads=1):
  """PIL open + load of every blob, on `threads` threads (PIL releases the
  GIL while decoding): what that many cores actually give right now, which
  on a shared virtual machine can be well under `threads` x one core."""
  data = list(blobs.values())
  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    list(pool.map(_decode_all, [data[i::threads] for i in range(threads)]))
  return len(data) / (time.perf_counter() - start)


def _ingest(data, files, out, sha256=False):
  """The per-file work of the plain loop, writing <out>.train/.eval.gz."""
  writers = {s: tf.io.TFRecordWriter(f"{out}.{s}.gz", STORED_GZIP)
             for s in ("train", "eval")}
  written = 0
  for rel in files:
    with open(os.path.join(data, rel), "rb") as f:
      raw = f.read()
    split, label = split_and_label(rel)
    try:
      image = inspect_image(raw, DEFAULT_MAX_PIXELS)
    except ValueError:
      continue
    if sha256:  # the executor hashes every file (duplicates)
      hashlib.sha256(raw).hexdigest()
    writers[split].write(make_example(image, label, rel).SerializeToString())
    written += 1
  for w in writers.values():
    w.close()
  return written


def plain_loop(data, files, out):
  """One process, no framework: the baseline a notebook user would write.
  (images written, seconds)"""
  start = time.perf_counter()
  written = _ingest(data, files, os.path.join(out, "plain"))
  return written, time.perf_counter() - start


def two_thread_bound(data, files, out, threads=2):
  """The plain loop's work (and the executor's sha256) on `threads` threads
  with nothing else: an upper bound for ExampleGen on this many cores.
  images/s."""
  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    written = sum(pool.map(
        lambda i: _ingest(data, files[i::threads],
                          os.path.join(out, f"bound{i}"), sha256=True),
        range(threads)))
  return written / (time.perf_counter() - start)


def run_example_gen(data, out, beam_args):
  """(construction s, Do s, images ingested), as executor_test runs it."""
  input_config, output_config = example_gen_configs(data)
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(out, "examples")
  report = IngestReport()
  report.uri = os.path.join(out, "report")
  start = time.perf_counter()
  # As pipeline/local_runner.py: TFX parses sys.argv + Beam args with absl.
  with beam_executor_argv():
    executor = Executor(BaseBeamExecutor.Context(beam_pipeline_args=beam_args))
    built = time.perf_counter()
    executor.Do({}, {"examples": [examples], "rejected": [report]}, {
        "input_base": data,
        "input_config": proto_utils.proto_to_json(input_config),
        "output_config": proto_utils.proto_to_json(output_config),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        "max_pixels": DEFAULT_MAX_PIXELS,
    })
  done = time.perf_counter()
  return built - start, done - built, report.get_int_custom_property("ingested")


def breakdown(data, files, blobs, out):
  """Seconds per stage of ExampleGen's per-file work, one core, all files."""
  def timed(fn):
    start = time.perf_counter()
    for rel in files:
      fn(rel)
    return time.perf_counter() - start

  def gfile_read(rel):
    with tf.io.gfile.GFile(os.path.join(data, rel), "rb") as f:
      f.read()

  def open_read(rel):
    with open(os.path.join(data, rel), "rb") as f:
      f.read()

  images = {rel: inspect_image(blobs[rel], DEFAULT_MAX_PIXELS) for rel in files}
  serialized = {rel: make_example(images[rel], split_and_label(rel)[1],
                                  rel).SerializeToString() for rel in files}

  def write_all(name, compression):
    path = os.path.join(out, f"breakdown.{name}")
    start = time.perf_counter()
    with tf.io.TFRecordWriter(path, compression) as w:
      for rel in files:
        w.write(serialized[rel])
    return time.perf_counter() - start

  return {
      "read (tf.io.gfile.GFile)": timed(gfile_read),
      "read (open)": timed(open_read),
      "inspect_image (PIL decode + checks)": timed(
          lambda rel: inspect_image(blobs[rel], DEFAULT_MAX_PIXELS)),
      "sha256 of the file": timed(lambda rel: hashlib.sha256(blobs[rel])),
      "make_example + serialize": timed(lambda rel: make_example(
          images[rel], split_and_label(rel)[1], rel).SerializeToString()),
      "write TFRecord, gzip level 0": write_all("level0", STORED_GZIP),
      "write TFRecord, gzip level 6 (TFX)": write_all("level6", "GZIP"),
      "write TFRecord, uncompressed": write_all("raw", ""),
  }


def profile(data, limit, top=15):
  """Where a one-process (in_memory) ExampleGen run spends its time."""
  # pylint: disable=import-outside-toplevel
  import cProfile
  import pstats
  with tempfile.TemporaryDirectory() as tmp:
    data = subset(data, limit, os.path.join(tmp, "subset"))
    profiler = cProfile.Profile()
    profiler.enable()
    run_example_gen(data, os.path.join(tmp, "eg"),
                    ["--direct_running_mode=in_memory",
                     "--direct_num_workers=1"])
    profiler.disable()
  print(f"in_memory ExampleGen, top {top} functions by own time:")
  stats = pstats.Stats(profiler, stream=sys.stdout)
  stats.sort_stats("tottime").print_stats(top)


def measure_mode(mode, workers, extra_args, data, tiny, n, tmp, run):
  """One run of a DirectRunner mode, on all images then on a handful:
  (images, rate incl. start-up, rate excl. start-up, CPU s/image excl.)."""
  beam_args = PipelineConfig(beam_workers=workers,
                             beam_mode=mode).beam_pipeline_args() + extra_args
  cpu = cpu_seconds()
  build_s, do_s, ingested = run_example_gen(
      data, os.path.join(tmp, f"eg_{mode}_{run}"), beam_args)
  eg_cpu = cpu_seconds() - cpu
  cpu = cpu_seconds()
  tiny_build_s, tiny_do_s, tiny_n = run_example_gen(
      tiny, os.path.join(tmp, f"eg_tiny_{mode}_{run}"), beam_args)
  tiny_cpu = cpu_seconds() - cpu
  total = build_s + do_s
  startup = tiny_build_s + tiny_do_s  # a whole run on a handful of images
  # Marginal rate: the images beyond the start-up run's, in the time beyond it.
  extra_s = total - startup
  rate_ex = (ingested - tiny_n) / extra_s if extra_s > 0 else float("nan")
  # CPU time (all threads) is steadier than wall time when other jobs share
  # the cores: it bounds what the wall rate can reach on idle cores.
  cpu_ex = (eg_cpu - tiny_cpu) / max(1, ingested - tiny_n)
  print(f"   {mode} run {run + 1}: {ingested} examples in {total:.2f} s "
        f"({ingested / total:.0f} images/s, {1e3 * eg_cpu / n:.2f} CPU "
        f"ms/image); start-up {startup:.2f} s (Do on {tiny_n} images); "
        f"excluding it {rate_ex:.0f} images/s, {1e3 * cpu_ex:.2f} CPU "
        "ms/image" + ("" if extra_s > 0 else " (start-up dominates: use "
                      "more images)"))
  return ingested, ingested / total, rate_ex, cpu_ex


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_data_args(parser)
  parser.add_argument("--modes", default="in_memory,multi_processing",
                      help="DirectRunner modes to measure, comma-separated "
                      "(the first is the pipeline's default)")
  parser.add_argument("--workers", type=int, default=2,
                      help="workers of the multi_* modes (direct_num_workers)")
  parser.add_argument("--beam-arg", action="append", default=[],
                      help="extra Beam pipeline arg, to try a change")
  parser.add_argument("--tiny", type=int, default=8,
                      help="images of the start-up run")
  parser.add_argument("--profile", action="store_true",
                      help="also profile a one-process (in_memory) run")
  parser.add_argument("--repeats", type=int, default=3,
                      help="runs of each side; medians are reported")
  args = parser.parse_args()
  quiet()
  print(f"machine: {machine()}")
  modes = args.modes.split(",")

  with tempfile.TemporaryDirectory() as tmp:
    data = subset(args.data, args.limit, os.path.join(tmp, "subset"))
    tiny = subset(args.data, args.tiny, os.path.join(tmp, "tiny"))
    files = image_files(data)
    blobs = {}
    for rel in files:  # warms the page cache for every measurement below
      with open(os.path.join(data, rel), "rb") as f:
        blobs[rel] = f.read()
    n = len(files)
    mb = sum(map(len, blobs.values())) / 1e6
    print(f"{n} images ({mb:.1f} MB) from {data}")

    stages = breakdown(data, files, blobs, tmp)
    print("per-file work of ExampleGen, 1 core (us/image):")
    for stage, seconds in stages.items():
      print(f"  {stage:38s} {1e6 * seconds / n:8.0f}")
    # What the executor itself does per file (gfile read, level-0 write).
    work = sum(v for k, v in stages.items()
               if k not in ("read (open)", "write TFRecord, uncompressed",
                            "write TFRecord, gzip level 6 (TFX)"))
    print(f"  {'sum of the executor path':38s} {1e6 * work / n:8.0f}  "
          f"(= {work / 2:.2f} s for {n} images on 2 cores, no framework)")

    runs = collections.defaultdict(list)
    os.makedirs(os.path.join(tmp, "plain"))
    print(f"{args.repeats} rounds, each: decode on 1 and 2 threads, the "
          "plain loop, the two-thread bound, then ExampleGen per mode:")
    for run in range(args.repeats):
      runs["decode"].append(decode_rate(blobs))
      runs["decode2"].append(decode_rate(blobs, threads=2))
      cpu = cpu_seconds()
      written, plain_s = plain_loop(data, files, os.path.join(tmp, "plain"))
      runs["plain_cpu"].append((cpu_seconds() - cpu) / n)
      runs["plain"].append(written / plain_s)
      runs["bound"].append(two_thread_bound(data, files,
                                            os.path.join(tmp, "plain")))
      print(f"   round {run + 1}: decode {runs['decode'][-1]:.0f} images/s "
            f"on 1 thread, {runs['decode2'][-1]:.0f} on 2; plain loop "
            f"{runs['plain'][-1]:.0f}; two-thread bound "
            f"{runs['bound'][-1]:.0f}")
      for mode in modes:
        ingested, *rates = measure_mode(mode, args.workers, args.beam_arg,
                                        data, tiny, n, tmp, run)
        assert ingested == written, (mode, ingested, written)
        for key, value in zip(("in", "ex", "cpu"), rates):
          runs[f"{mode}_{key}"].append(value)
  if args.profile:
    profile(args.data, args.limit)

  med = {key: statistics.median(values) for key, values in runs.items()}
  decode, decode2, plain, bound = (med[k] for k in ("decode", "decode2",
                                                    "plain", "bound"))
  limit = 2 * decode
  print(f"medians of {args.repeats}: decode (PIL open + load) {decode:.0f} "
        f"images/s on 1 thread, 2-core limit {limit:.0f}; measured on 2 "
        f"threads {decode2:.0f} ({decode2 / decode:.2f}x one thread); "
        f"plain loop {plain:.0f} images/s ({1e3 * med['plain_cpu']:.2f} CPU "
        f"ms/image); two-thread bound {bound:.0f} images/s = "
        f"{bound / plain:.2f}x the plain loop, {100 * bound / limit:.1f}% "
        "of the 2-core decode limit")
  for mode in modes:
    rate_in, rate_ex, cpu_ex = (med[f"{mode}_{k}"] for k in ("in", "ex",
                                                             "cpu"))
    print(f"{mode}: CPU per image excluding start-up {1e3 * cpu_ex:.2f} ms "
          f"vs plain loop {1e3 * med['plain_cpu']:.2f} ms")
    print(f"{mode}: ExampleGen / plain loop: {rate_in / plain:.2f}x including "
          f"start-up, {rate_ex / plain:.2f}x excluding (target >= 1.5); "
          f"/ 2-core decode limit: {100 * rate_in / limit:.1f}% including "
          f"start-up, {100 * rate_ex / limit:.1f}% excluding (target >= 75%); "
          f"{100 * rate_ex / bound:.1f}% of the two-thread bound, excluding "
          "start-up")


if __name__ == "__main__":
  main()
