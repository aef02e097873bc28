"""The served model's header check against the decode it protects, per image.

Times trainer/image_header.py's `read` (traced as a served model runs it:
one tf.function with input_signature [None] string, warmed for each batch
size) and tf.io.decode_image of the same images (one tf.function per batch,
map_fn over its images), at batch 1, 32 and 256. JPEG: the validation photos
as they are; PNG, GIF and BMP: the first --convert of them re-encoded with
PIL in memory. Each figure is the fastest of --repeats passes over all the
images of that format, in microseconds per image; the call of a trivial
tf.function, included in each, is printed first.
Target: header read well under 100 us per typical JPEG at batch 32 and 256,
and no slower than the previous module on PNG, GIF and BMP.

usage: .venv/bin/python bench/image_header.py [--data DIR] [--limit N]
       [--module PATH (another image_header.py, e.g. an older commit's)]
       [--batch-sizes 1,32,256] [--formats JPEG,PNG,GIF,BMP] [--convert 64]
       [--repeats 5] [--no-decode]
"""
import argparse
import importlib.util
import io
import os
import time

from common import DEFAULT_DATA, REPO, image_files, machine

import tensorflow as tf  # noqa: E402  (after common: quiet C++ logs)
from PIL import Image  # noqa: E402


def load_module(path):
  """An image_header module from its file: the worktree's by default."""
  spec = importlib.util.spec_from_file_location("image_header_bench", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def images_by_format(data, limit, formats, convert):
  """{format: [encoded bytes]}: the validation JPEGs, and re-encodings."""
  files = [f for f in image_files(data) if f.startswith("validation/")]
  jpegs = []
  for rel in files[:limit or None]:
    with open(os.path.join(data, rel), "rb") as f:
      jpegs.append(f.read())
  found = {}
  for fmt in formats:
    if fmt == "JPEG":
      found[fmt] = jpegs
      continue
    found[fmt] = []
    for data_bytes in jpegs[:convert]:
      buf = io.BytesIO()
      with Image.open(io.BytesIO(data_bytes)) as image:
        image.convert("RGB").save(buf, format=fmt)
      found[fmt].append(buf.getvalue())
  return found


def batches(images, size):
  return [tf.constant(images[i:i + size])
          for i in range(0, len(images), size)]


def per_image_us(fn, images, size, repeats):
  """Fastest pass over `images` in batches of `size`, in us per image."""
  parts = batches(images, size)
  for part in parts[:2]:  # warm: the trace, and a first run
    fn(part)
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    for part in parts:
      fn(part)
    best = min(best, time.perf_counter() - start)
  return 1e6 * best / len(images)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data", default=DEFAULT_DATA)
  parser.add_argument("--limit", type=int, default=0,
                      help="the first N validation JPEGs (0: all)")
  parser.add_argument("--module", default=os.path.join(
      REPO, "trainer", "image_header.py"))
  parser.add_argument("--batch-sizes", default="1,32,256")
  parser.add_argument("--formats", default="JPEG,PNG,GIF,BMP")
  parser.add_argument("--convert", type=int, default=64,
                      help="JPEGs re-encoded for each other format")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--no-decode", action="store_true",
                      help="time the header read only")
  args = parser.parse_args()
  module = load_module(args.module)
  sizes = [int(s) for s in args.batch_sizes.split(",")]
  found = images_by_format(args.data, args.limit, args.formats.split(","),
                           args.convert)

  spec = [tf.TensorSpec([None], tf.string)]
  header = tf.function(module.read, autograph=False, input_signature=spec)

  @tf.function(autograph=False, input_signature=spec)
  def decode(encoded):
    return tf.map_fn(lambda x: tf.size(tf.io.decode_image(x, channels=3)),
                     encoded, fn_output_signature=tf.int32)

  call = tf.function(tf.strings.length, autograph=False,
                     input_signature=spec)
  call_us = per_image_us(call, found[next(iter(found))], 1, args.repeats)
  print(f"{machine()}; TensorFlow {tf.__version__}; module {args.module}; "
        f"fastest of {args.repeats}; a trivial call: {call_us:.1f} us")
  print(f"{'format':6s} {'images':>6s} {'KB':>5s} {'batch':>5s} "
        f"{'header us':>9s} {'decode us':>9s} {'ratio':>6s}")
  for fmt, images in found.items():
    kb = sum(map(len, images)) / len(images) / 1024
    for size in sizes:
      read_us = per_image_us(header, images, size, args.repeats)
      decode_us = (float("nan") if args.no_decode else
                   per_image_us(decode, images, size, args.repeats))
      print(f"{fmt:6s} {len(images):6d} {kb:5.1f} {size:5d} {read_us:9.1f} "
            f"{decode_us:9.1f} {read_us / decode_us:6.3f}", flush=True)


if __name__ == "__main__":
  main()
