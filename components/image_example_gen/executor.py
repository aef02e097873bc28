"""Beam executor of ImageExampleGen.

Each split pattern names a split root (`train/*/*` -> `train/`). Every file
under it is read once and fully decoded with PIL to validate it; a file that
can't be used becomes a rejection with a reason instead of failing the run, and
so does every file outside the split roots (test/, loose files, eval/ beside
validation/), so ingested + rejected = files seen under the data folder.
Dataset-level problems (fewer than two classes, a class folder without a
usable image, a class only in eval) do fail the run, naming the folder and
the fix.

Transform and the served model decode `image/encoded` with
tf.io.decode_image(channels=3), which agrees with PIL's RGB view of every PNG
and JPEG mode (grey, palette, alpha, 16-bit, CMYK; JPEG up to TF's faster
IDCT) but ignores EXIF orientation. So the original bytes are kept, except for
images with an EXIF orientation and files in the other formats PIL decodes
(WebP, BMP, GIF, TIFF): those are stored as a lossless PNG of the upright RGB
image, and `image/normalized` says why.

The decompression-bomb limit is max_pixels, checked per file on the header;
PIL's own process-wide Image.MAX_IMAGE_PIXELS is read, never changed.
"""
import collections
import concurrent.futures
import gzip
import itertools
import hashlib
import io
import json
import logging
import os
import posixpath
import struct
from typing import (Any, Deque, Dict, Iterator, List, NamedTuple, Optional,
                    Sequence, Tuple)

import apache_beam as beam
from apache_beam.io import filebasedsink, filesystem, iobase
import numpy as np
import tensorflow as tf
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import (
    BaseExampleGenExecutor)
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

import tasks
from components import tfx_internals
from components.tfx_internals import WindowedValue
from components.image_example_gen import input_folder, labels_csv
from trainer import features
from trainer.text import escape, label_problem

MAX_PIXELS_KEY = "max_pixels"
# Labels from a CSV (labels_csv.py) instead of class folders: its path, the
# target column ("" = the only one), the task, and a hash of its content
# (so that an edited CSV is not served from the cache).
LABELS_KEY, TARGET_KEY, TASK_KEY, LABELS_HASH_KEY = (
    "labels", "target", "task", "labels_sha256")
REJECTED_KEY = "rejected"
REJECTED_FILE = "rejected.jsonl"
SUMMARY_FILE = "summary.json"
_REPORT_DIR_KEY = "_ingest_report_dir"  # passed to the PTransform, not a spec key
_LABELS_OBJECT_KEY = "_csv_labels"      # likewise: the parsed CSV, or None
# The eval split's folder, in order of preference (pipeline/data_layout.py
# picks the first that exists; a second one is reported as not read).
EVAL_DIRS = ("validation", "eval")
# Kept as the file's bytes. MPO is a JPEG with extra frames (phone cameras);
# both decoders read frame 1.
_KEPT = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png"}
# Decoded by PIL and stored as a lossless PNG of the (first frame's) RGB
# image: Transform's tf.io.decode_image reads none of WebP and TIFF, and
# only this project's PNG/JPEG path is tested to match PIL's pixels.
_CONVERTED = {"WEBP": "webp", "BMP": "bmp", "GIF": "gif", "TIFF": "tiff"}
ACCEPTED = "JPEG, PNG, WebP, BMP, GIF (first frame), TIFF"


def pil_pixel_limit() -> Optional[int]:
  """Pixels above which PIL itself refuses to open an image (None: none).

  PIL.Image.MAX_IMAGE_PIXELS is process-wide, so this module only reads it:
  max_pixels is checked per file below it, and can't be raised past it.
  """
  limit = Image.MAX_IMAGE_PIXELS
  return None if limit is None else 2 * limit


def check_max_pixels(max_pixels: int) -> None:
  """Raises ValueError for a max_pixels the executor can't honour."""
  limit = pil_pixel_limit()
  if max_pixels <= 0 or (limit is not None and max_pixels > limit):
    raise ValueError(
        f"max_pixels {max_pixels} must be positive and at most {limit}, "
        "PIL's own decompression-bomb limit (2 x PIL.Image.MAX_IMAGE_PIXELS), "
        "which this pipeline leaves in place")


class DatasetError(ValueError):
  """The image folder as a whole can't train a classifier."""


def split_root(pattern: str) -> str:
  """`train/*/*` -> `train`; `*/*` -> `` (the input base itself)."""
  parts = pattern.split("/")
  if parts[-2:] != ["*", "*"]:
    raise ValueError(f"split pattern {pattern!r} must end in '*/*' "
                     "(<split>/<class>/<image>)")
  return "/".join(parts[:-2])


def unread_files(input_base: str,
                 split_roots: Dict[str, str]) -> List[Dict[str, Any]]:
  """Rejection outcomes for the files outside every split root.

  split_roots: split name -> root (`{"train": "train", "eval":
  "validation"}`). A flat folder (root "") has none: its walk sees every
  file. In the split layout, test/, other folders, loose files and eval/
  beside validation/ would otherwise be silently skipped; one rejection per
  file keeps seen = ingested + rejected true of the whole data folder.
  """
  roots = set(split_roots.values())
  if "" in roots:
    return []
  read = ", ".join(f"{root}/ ({split})" for split, root in split_roots.items())
  eval_used = sorted(roots & set(EVAL_DIRS))
  outcomes = []
  for rel, problem, _ in input_folder.list_files(input_base, "", skip=roots):
    top, _, rest = rel.partition("/")
    if problem:  # as in a split: its name, or a symlinked folder leading out
      reason = problem
    elif top.startswith("."):
      reason = "hidden file or folder (name starts with '.')"
    elif not rest:
      reason = (f"loose file at the top of the data folder, not in a split "
                f"folder; this run reads {read}")
    elif top in EVAL_DIRS and eval_used:
      reason = (f"{top}/ is not read: {eval_used[0]}/ is the eval split "
                f"({'/ is preferred to '.join(EVAL_DIRS)}/ when both exist); "
                f"merge {top}/ into {eval_used[0]}/ to use it")
    else:
      reason = (f"{top}/ is not a split folder this run reads ({read}); move "
                "its images into one of them to use them")
    outcomes.append({"path": rel, "class": None, "split_root": None,
                     "status": "rejected", "reason": reason,
                     "unread": top if rest else ""})
  return outcomes


def _bytes(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


class Ingested(NamedTuple):
  encoded: bytes    # the file itself, or a PNG of the normalised image
  fmt: str          # format of `encoded`: "jpeg" | "png"
  width: int        # of the image as stored (upright)
  height: int
  normalized: str   # why `encoded` is a re-encoding; "" when it is the file


def exif_orientation(image: Image.Image) -> int:
  orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
  return orientation if orientation in range(2, 9) else 1  # 1: as stored


def rgb_view(image: Image.Image) -> Image.Image:
  """The 8-bit RGB image TF's decoders give for `image`'s pixels."""
  if image.mode.startswith("I"):
    # 16-bit grey: PIL's convert clips at 255; TF (libpng) keeps the high byte.
    image = Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))
  return image.convert("RGB")


def inspect_image(data: bytes, max_pixels: int) -> Ingested:
  """Validates, and normalises when TF would decode it differently.

  Raises ValueError with the reason when the file can't be used.
  """
  if not data:
    raise ValueError("empty file (0 bytes)")
  try:
    # Image.open reads only the header: the size check happens before decoding.
    with Image.open(io.BytesIO(data)) as image:
      width, height = image.size
      fmt = image.format
      if fmt not in _KEPT and fmt not in _CONVERTED:
        raise ValueError(f"unsupported format {fmt} (accepted: {ACCEPTED})")
      if width * height > max_pixels:
        raise ValueError(_too_big(f"{width}x{height} = {width * height} "
                                  "pixels", max_pixels))
      image.load()  # full decode (frame 1): truncated or corrupt data fails
      orientation = exif_orientation(image)
      if fmt in _KEPT and orientation == 1:
        return Ingested(data, _KEPT[fmt], width, height, "")
      why = [f"converted_from={_CONVERTED[fmt]}"] if fmt in _CONVERTED else []
      if orientation != 1:
        why.append(f"exif_orientation={orientation}")
      # Reuses the decoded pixels: no second decode.
      upright = rgb_view(ImageOps.exif_transpose(image))
      buf = io.BytesIO()
      upright.save(buf, format="PNG")
      return Ingested(buf.getvalue(), "png", upright.width, upright.height,
                      ",".join(why))
  except ValueError:
    raise
  except Image.DecompressionBombError as e:
    # PIL's own limit, at or above max_pixels (check_max_pixels), fired first.
    raise ValueError(_too_big(str(e).split(" exceeds")[0], max_pixels)) from None
  except UnidentifiedImageError:  # its message holds a memory address
    raise ValueError("cannot decode image: unrecognised content, not an "
                     f"image format PIL knows (accepted: {ACCEPTED})") from None
  except Exception as e:  # PIL raises many types for undecodable data.
    raise ValueError(f"cannot decode image: {e.__class__.__name__}: {e}") from None


def _too_big(declared: str, max_pixels: int) -> str:
  return (f"{declared} is above the max_pixels limit {max_pixels} (possible "
          "decompression bomb); raise max_pixels if the image is genuine")


def make_example(image: Ingested, label, rel_path: str,
                 task: str = "") -> tf.train.Example:
  """label: the target as the task (its name; "": the default) stores it: a
  class name, a number."""
  kind = tasks.named(task)
  target = kind.example_feature(label)
  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE: _bytes(image.encoded),
      target[0]: target[1],
      features.HEIGHT: _int(image.height),
      features.WIDTH: _int(image.width),
      features.FORMAT: _bytes(image.fmt.encode()),
      features.FILENAME: _bytes(rel_path.encode("utf-8")),
      features.NORMALIZED: _bytes(image.normalized.encode()),
  }))


def decode_threads() -> int:
  """Cores this process may use: one decode thread each."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


class CsvLabels:
  """What decoding needs of a labels CSV (labels_csv.py): each image's label
  (class name, or float target) and split ("train", "eval", or None for the
  hash split)."""

  def __init__(self, labels: labels_csv.Labels, input_base: str):
    self.name = labels.path
    self.task = labels.task
    self.rows = {path: (labels.value(row), labels_csv.split_of(row))
                 for path, row in labels.rows.items()}
    self.unused = {path: f"its row in {labels.path} is not used: {reason}"
                   for path, reason in labels.rejected_paths.items()}
    base = input_base.rstrip("/") + "/"
    self.own_path = (labels.path[len(base):]
                     if labels.path.startswith(base) else None)

  def has_row(self, rel_path: str) -> bool:
    return rel_path in self.rows or rel_path in self.unused

  def lookup(self, rel_path: str) -> Tuple[Any, Optional[str], str]:
    """(label or None, split, why there is no label)."""
    if rel_path == self.own_path:
      return None, None, "the labels CSV (--labels), not an image"
    if rel_path in self.unused:
      return None, None, self.unused[rel_path]
    if rel_path not in self.rows:
      return None, None, (f"no row in {self.name}; add one (its path "
                          "relative to the data folder) or remove the file")
    value, split = self.rows[rel_path]
    return value, split, ""

  def row_outcomes(self, labels: labels_csv.Labels,
                   listed: Sequence[str]) -> List[Dict[str, Any]]:
    """Rejections of rows: the CSV's own (duplicates, bad targets, unknown
    splits) and rows whose image is not under the data folder."""
    present = set(listed)
    rejected = [(where, reason) for where, reason in labels.rejected]
    rejected += [(f"{self.name}:{row.number}",
                  f"row {row.number}: no image at {escape(path)} under the "
                  "data folder") for path, row in labels.rows.items()
                 if path not in present]
    return [{"path": where, "class": None, "split_root": None,
             "status": "rejected", "reason": reason}
            for where, reason in rejected]


def read_csv_labels(exec_properties: Dict[str, Any]) -> Optional[labels_csv.Labels]:
  if not exec_properties.get(LABELS_KEY):
    return None
  return labels_csv.read_labels(exec_properties[LABELS_KEY],
                                exec_properties.get(TARGET_KEY) or None,
                                exec_properties.get(TASK_KEY) or "auto")


def _split_tag(name: str) -> str:
  return f"split:{name}"  # apart from OUTCOMES, whatever the split is called


class _DecodeFn(beam.DoFn):
  """(input split, chunk of its listed files) -> per output split, a list of
  gzip members of their TFRecords, and a list of JSON outcome lines.

  Files are decoded on a thread pool: PIL, zlib, hashlib and file reads
  release the GIL, so one Beam worker (the in_memory default: one process)
  uses every core. The pool threads also frame each split's records and
  wrap them in a stored gzip member, so Beam's own thread only appends
  finished bytes to the split's file (readers take a file of concatenated
  members as one stream). One chunk decodes while the previous chunk's
  results go downstream, and Beam handles a chunk, not each file, so its
  per-element cost is paid once per FILES_PER_ELEMENT
  files. Each chunk's outputs carry its own timestamp and window, and
  chunking changes no record: the same examples, splits and outcomes as one
  file at a time. Every input split goes through the same pool, so a run
  fills and drains it once.
  """

  OUTCOMES = "outcomes"

  def __init__(self, input_base: str,
               inputs: Sequence[Tuple[str, Optional[str]]], max_pixels: int,
               split_config: Optional[example_gen_pb2.SplitConfig] = None,
               labels: Optional["CsvLabels"] = None):
    """inputs: (split root, its output split), or one (root, None) that is
    hash split by split_config."""
    self._labels = labels
    # Class folders label for the default task; a CSV for its own.
    self._task = labels.task if labels is not None else ""
    self._input_base = input_base
    self._inputs = list(inputs)
    self._max_pixels = max_pixels
    self._split_config = split_config
    self._hash_names = ([s.name for s in split_config.splits]
                        if split_config else [])
    self._buckets = (list(itertools.accumulate(
        s.hash_buckets for s in split_config.splits)) if split_config else [])
    self._real_base: Optional[str] = None
    self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
    self._threads = 1
    self._pending: Deque[Tuple[List[concurrent.futures.Future], Any, Any]] = (
        collections.deque())

  def setup(self):
    self._real_base = input_folder.real_base(self._input_base)
    self._threads = decode_threads()
    self._pool = concurrent.futures.ThreadPoolExecutor(
        self._threads, thread_name_prefix="decode")

  def start_bundle(self):
    self._pending = collections.deque()

  def process(self, element: Tuple[int, List[input_folder.Listed]],
              timestamp=beam.DoFn.TimestampParam,
              window=beam.DoFn.WindowParam) -> Iterator[Any]:
    assert self._pool is not None
    index, chunk = element  # index into inputs
    # One task per thread, not per file: each hand-off to the pool and
    # back costs more CPU than the GIL-held part of a small photo's decode.
    share = -(-len(chunk) // self._threads)
    self._pending.append(([self._pool.submit(self.decode_all, index,
                                             chunk[i:i + share])
                           for i in range(0, len(chunk), share)],
                          timestamp, window))
    # Keep the newest chunk decoding while this thread hands on the older.
    while len(self._pending) > 1:
      yield from self._emit(*self._pending.popleft())

  def finish_bundle(self) -> Iterator[Any]:
    while self._pending:  # a bundle ends only when all its files are out
      yield from self._emit(*self._pending.popleft())

  def teardown(self):
    if self._pool is not None:
      self._pool.shutdown(wait=True, cancel_futures=True)
      self._pool = None

  def _emit(self, futures, timestamp, window) -> Iterator[Any]:
    outcomes, members = [], collections.defaultdict(list)
    for future in futures:  # in chunk order
      lines, task_members = future.result()  # re-raises a bug
      outcomes.append(lines)
      for split, member in task_members.items():
        members[split].append(member)
    yield beam.pvalue.TaggedOutput(
        self.OUTCOMES, WindowedValue(outcomes, timestamp, (window,)))
    for split, batch in members.items():
      yield beam.pvalue.TaggedOutput(
          _split_tag(split), WindowedValue(batch, timestamp, (window,)))

  def decode_all(self, index: int, listed: Sequence[input_folder.Listed]
                 ) -> Tuple[str, Dict[str, bytes]]:
    """One pool task: (JSON outcome lines, split -> gzip member of its
    TFRecords)."""
    lines, framed = [], collections.defaultdict(list)
    for one in listed:
      outcome, split, record = self.decode(index, one)
      lines.append(json.dumps(outcome, sort_keys=True))
      if record is not None:
        framed[split].append(tfrecord(record))
    return "\n".join(lines), {
        split: gzip.compress(b"".join(records), compresslevel=0, mtime=0)
        for split, records in framed.items()}

  def decode(self, index: int, listed: input_folder.Listed
             ) -> Tuple[Dict[str, Any], str, Optional[bytes]]:
    """(outcome record, output split, serialized tf.Example or None when
    rejected) for one file of input `index`."""
    root, split = self._inputs[index]
    rel_path, name_problem, _ = listed
    # list_files(input_base, root) lists paths below root only.
    inside = rel_path[len(root) + 1:] if root else rel_path
    parts = inside.split("/")
    hidden = any(p.startswith(".") for p in parts)
    row_split = None
    if self._labels is not None:
      label, row_split, why_not = self._labels.lookup(rel_path)
      # A row names it (`..j.png`, `.x/a.png`): hidden or not, it is meant.
      hidden = hidden and not self._labels.has_row(rel_path)
    else:
      label = parts[0] if len(parts) > 1 and not hidden else None
      why_not = ("not inside a class folder; move it into <class>/ so its "
                 "label is known")
      bad_name = (label_problem(label, "class folder name")
                  if label is not None else "")
      if bad_name:
        # Not a class: TF Transform's vocabulary would drop it, and its
        # images would train as another class.
        label, why_not = None, bad_name
    outcome = {"path": rel_path, "split_root": root,
               "class": label if isinstance(label, str) else None}
    try:
      if name_problem:
        raise ValueError(name_problem)
      if hidden:
        raise ValueError("hidden file or folder (name starts with '.')")
      if label is None:
        raise ValueError(why_not)
      data = input_folder.read_file(self._input_base, listed, self._real_base)
      image = inspect_image(data, self._max_pixels)
    except (ValueError, OSError, tf.errors.OpError) as e:
      if isinstance(e, tf.errors.OpError):
        reason = e.message
      elif isinstance(e, OSError) and e.strerror:
        reason = f"cannot read the file: {e.strerror}"
      else:
        reason = str(e)
      return {**outcome, "status": "rejected", "reason": reason}, "", None
    example = make_example(image, label, rel_path, self._task)
    if row_split is not None:  # the labels CSV's split column
      split = row_split
    elif split is None:
      # TFX's own hash split function (on features.IMAGE), as its
      # GenerateExamplesByBeam applied it: the same split for each file.
      split = self._hash_names[tfx_internals.partition_fn(
          example, len(self._buckets), self._buckets, self._split_config)]
    return {
        **outcome, "status": "ingested", "normalized": image.normalized,
        "split": split,  # the report counts each split's examples from these
        # Of the file, so duplicates are found whatever was stored.
        "sha256": hashlib.sha256(data).hexdigest(),
    }, split, example.SerializeToString()


# Beam's per-element cost is paid per chunk; small enough that a chunk of
# large photos in flight (two per worker) stays well under a GB.
FILES_PER_ELEMENT = 32


def _listed_chunks(_, input_base: str, roots: Sequence[str], size: int
                   ) -> Iterator[Tuple[int, List[input_folder.Listed]]]:
  # Listed when the pipeline runs, not when it is built: a list in the
  # graph would be pickled and bz2-compressed with it.
  for index, root in enumerate(roots):
    files = input_folder.list_files(input_base, root)
    for i in range(0, len(files), size):
      yield index, files[i:i + size]


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
def _DecodeSplits(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                  inputs: Sequence[Tuple[str, Optional[str]]],
                  output_names: Sequence[str],
                  split_config: Optional[example_gen_pb2.SplitConfig] = None
                  ) -> Dict[str, beam.pvalue.PCollection]:
  """Output split name -> lists of gzip members, for the files of every
  input (_DecodeFn); their outcomes go to the report folder."""
  input_base = exec_properties["input_base"]
  labels = exec_properties.get(_LABELS_OBJECT_KEY)
  results = (
      pipeline
      | "Start" >> beam.Impulse()
      | "ListFiles" >> beam.FlatMap(_listed_chunks, input_base,
                                    [root for root, _ in inputs],
                                    FILES_PER_ELEMENT)
      | "Distribute" >> beam.Reshuffle()
      | "Decode" >> beam.ParDo(_DecodeFn(
          input_base, inputs, exec_properties[MAX_PIXELS_KEY], split_config,
          labels)).with_outputs(
              _DecodeFn.OUTCOMES, *map(_split_tag, output_names)))
  _ = (results[_DecodeFn.OUTCOMES]
       # One text element per chunk: a JSON line per file.
       | "OutcomeToJson" >> beam.Map("\n".join)
       | "WriteOutcomes" >> beam.io.WriteToText(
           posixpath.join(exec_properties[_REPORT_DIR_KEY], "_outcomes",
                          "outcomes")))
  return {name: results[_split_tag(name)] for name in output_names}


# Without python-snappy, Beam's TFRecord framing computes crc32c with crcmod:
# 45 us for a 23 KB photo. google-crc32c (C, SSE4.2; in the pinned set
# through google-cloud-storage) takes 4 us; its pure-Python fallback would be
# slower than crcmod.
try:
  import google_crc32c  # pylint: disable=g-import-not-at-top
  _CRC32C = google_crc32c.value if google_crc32c.implementation == "c" else None
except ImportError:
  _CRC32C = None
_masked_crc32c = tfx_internals.masked_crc32c


def tfrecord(value: bytes) -> bytes:
  """`value` framed as one TFRecord (length, crc, data, crc), as Beam and TF
  write it (Beam's only switch to a faster crc32c is a process-wide global)."""
  if _CRC32C is None:
    buf = io.BytesIO()
    tfx_internals.write_tfrecord(buf, value)
    return buf.getvalue()
  length = struct.pack("<Q", len(value))
  return b"".join([
      length, struct.pack("<I", _masked_crc32c(length, crc32c_fn=_CRC32C)),
      value, struct.pack("<I", _masked_crc32c(value, crc32c_fn=_CRC32C))])


# What a split's file holds when no record reaches it, so that it is still
# gzip. Only then: tf.data stops reading a file at an empty member.
_EMPTY_MEMBER = gzip.compress(b"", compresslevel=0, mtime=0)


class _Appended:
  """A sink's open file, and whether anything was appended (not every
  filesystem's files can tell())."""

  def __init__(self, file_handle):
    self.file_handle = file_handle
    self.written = False


class _StoredGzipTFRecordSink(filebasedsink.FileBasedSink):
  """TFRecords in gzip at level 0 ("stored"), as files named *.gz.

  TFX's WriteSplit deflates at zlib's default level 6: JPEG and PNG bytes
  barely shrink (under 3% on cats_and_dogs_filtered) and deflating them was
  43% of the executor's per-image CPU (bench/RESULTS.md). Level 0 is still the
  gzip that every TFX reader expects of `tfrecords_gzip` (they pick the codec
  from the .gz suffix), at a twentieth of the cost. The decode threads hand
  over finished gzip members (_DecodeFn), so this sink only appends them;
  sharding, temp files and the final rename stay Beam's.
  """

  def __init__(self, file_path_prefix: str):
    super().__init__(file_path_prefix, coder=beam.coders.BytesCoder(),
                     file_name_suffix=".gz", num_shards=0,
                     shard_name_template=None,
                     compression_type=filesystem.CompressionTypes.UNCOMPRESSED)

  def open(self, temp_path):
    return _Appended(super().open(temp_path))

  def write_record(self, file_handle: _Appended, value: List[bytes]):
    for member in value:  # a chunk's gzip members (_DecodeFn), not empty
      file_handle.file_handle.write(member)
    file_handle.written = file_handle.written or bool(value)

  def close(self, file_handle: _Appended):
    if not file_handle.written:
      file_handle.file_handle.write(_EMPTY_MEMBER)
    super().close(file_handle.file_handle)


@beam.ptransform_fn
def _WriteStoredSplit(batches: beam.pvalue.PCollection,
                      split_uri: str) -> beam.pvalue.PDone:
  # No Reshuffle before writing (TFX's WriteSplit has one): files were already
  # spread over workers before decoding, and the Trainer shuffles examples.
  return batches | "Write" >> iobase.Write(_StoredGzipTFRecordSink(
      posixpath.join(split_uri, "data_tfrecord")))


class Executor(BaseExampleGenExecutor):
  """ExampleGen executor for folders of class-labelled images."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    raise NotImplementedError(
        "ImageExampleGen decodes files in chunks: use GenerateExamplesByBeam, "
        "whose splits hold gzip members of TFRecords")

  def GenerateExamplesByBeam(self, pipeline, exec_properties):
    """Output split name -> lists of gzip members of TFRecords.

    As TFX's: input splits are kept, or the one input split is hash split
    on features.IMAGE by the output config; records come in chunks, framed
    and wrapped by the decode threads (_DecodeFn).
    """
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties["input_config"], input_config)
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties["output_config"], output_config)
    names = example_gen_utils.generate_output_split_names(input_config,
                                                          output_config)
    split_config = None
    if output_config.split_config.splits:
      if len(input_config.splits) != 1:
        raise ValueError("a hash split (output split_config) needs exactly "
                         "one input split")
      split_config = output_config.split_config
      inputs = [(split_root(input_config.splits[0].pattern), None)]
    else:
      inputs = [(split_root(s.pattern), s.name) for s in input_config.splits]
    return pipeline | "InputToRecord" >> _DecodeSplits(  # pylint: disable=no-value-for-parameter
        exec_properties, inputs, names, split_config)

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """BaseExampleGenExecutor.Do, writing splits with _WriteStoredSplit."""
    tfx_internals.log_startup(self, input_dict, output_dict, exec_properties)
    check_max_pixels(exec_properties[MAX_PIXELS_KEY])
    report = artifact_utils.get_single_instance(output_dict[REJECTED_KEY])
    input_base = exec_properties["input_base"]
    labels = read_csv_labels(exec_properties)
    csv_labels = labels and CsvLabels(labels, input_base)
    exec_properties = {**exec_properties, _REPORT_DIR_KEY: report.uri,
                       _LABELS_OBJECT_KEY: csv_labels}
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties["input_config"], input_config)
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties["output_config"], output_config)
    split_names = example_gen_utils.generate_output_split_names(
        input_config, output_config)
    examples = output_dict[standard_component_specs.EXAMPLES_KEY]
    artifact_utils.get_single_instance(examples).split_names = (
        artifact_utils.encode_split_names(split_names))
    with tfx_internals.beam_pipeline(self) as pipeline:
      splits = self.GenerateExamplesByBeam(pipeline, exec_properties)
      for name, split in splits.items():
        _ = split | f"WriteSplit[{name}]" >> _WriteStoredSplit(
            artifact_utils.get_split_uri(examples, name))
    payload_format = exec_properties.get(
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
    file_format = exec_properties.get(
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
    for artifact in examples:
      if payload_format:
        examples_utils.set_payload_format(artifact, payload_format)
      if file_format:
        examples_utils.set_file_format(
            artifact, write_split.to_file_format_str(file_format))
    roots = [split_root(s.pattern) for s in input_config.splits]
    folders = [] if csv_labels else [
        f"{root}/{c}".lstrip("/") for root in roots
        for c in input_folder.class_folders(input_base, root)]
    unread = unread_files(input_base, {
        s.name: split_root(s.pattern) for s in input_config.splits})
    rows = [] if csv_labels is None else csv_labels.row_outcomes(
        labels, [f.path for f in input_folder.list_files(input_base, "")])
    summary = write_report(report.uri, folders, split_names, unread, rows)
    report.set_int_custom_property("seen", summary["seen"])
    report.set_int_custom_property("ingested", summary["ingested"])
    report.set_int_custom_property("rejected", summary["rejected"])
    conflicts = [d["paths"] for d in summary["duplicates"]
                 if len(d["classes"]) > 1]
    if conflicts:
      logging.warning("%d image(s) are in more than one class folder (see "
                      "'duplicates' in %s): %s", len(conflicts),
                      posixpath.join(report.uri, SUMMARY_FILE), conflicts[:5])
    check_dataset(summary, input_base, roots,
                  csv_labels.task if csv_labels else "",
                  csv=csv_labels is not None)


def _read_json_lines(pattern: str) -> List[Dict[str, Any]]:
  rows = []
  for path in sorted(tf.io.gfile.glob(pattern)):
    with tf.io.gfile.GFile(path) as f:
      rows.extend(json.loads(line) for line in f if line.strip())
  return rows


def write_report(report_dir: str, folders: List[str],
                 split_names: Sequence[str],
                 unread: Sequence[Dict[str, Any]] = (),
                 rows: Sequence[Dict[str, Any]] = ()) -> Dict[str, Any]:
  """Merges the Beam shards into rejected.jsonl and summary.json.

  folders: every class folder found ("<split root>/<class>"), so an empty
  one shows up with zero images. split_names: the output splits, so an
  empty one shows up with zero examples. unread: outcomes of the files
  outside every split (unread_files). rows: rejected rows of a labels CSV.
  """
  outcomes = _read_json_lines(posixpath.join(report_dir, "_outcomes", "*"))
  outcomes += list(unread) + list(rows)
  rejected = sorted((o for o in outcomes if o["status"] == "rejected"),
                    key=lambda o: o["path"])
  per_class = {f: {"ingested": 0, "rejected": 0} for f in folders}
  for o in outcomes:
    if o["class"] is not None:
      key = f"{o['split_root']}/{o['class']}".lstrip("/")
      per_class.setdefault(key, {"ingested": 0, "rejected": 0})
      per_class[key][o["status"]] += 1
  # Identical files (copies, links) by content; a hash split keeps each group
  # in one split, but a group spanning classes is a label conflict.
  groups = collections.defaultdict(list)
  for o in outcomes:
    if o["status"] == "ingested":
      groups[o["sha256"]].append(o)
  duplicates = sorted(({"paths": sorted(o["path"] for o in group),
                        "classes": sorted({o["class"] for o in group})}
                       for group in groups.values() if len(group) > 1),
                      key=lambda d: d["paths"])
  per_split = collections.Counter(o["split"] for o in outcomes
                                  if o["status"] == "ingested")
  summary = {
      "seen": len(outcomes),
      "ingested": sum(o["status"] == "ingested" for o in outcomes),
      "rejected": len(rejected),
      # One example per ingested file, in the split its outcome names.
      "splits": {name: per_split[name] for name in split_names},
      "classes": dict(sorted(per_class.items())),
      "normalized": dict(sorted(collections.Counter(
          o["normalized"] for o in outcomes
          if o["status"] == "ingested" and o["normalized"]).items())),
      "duplicates": duplicates,
      # Files in no split, per top-level folder ("": loose files).
      "not_read": dict(sorted(collections.Counter(
          o["unread"] for o in unread).items())),
  }
  with tf.io.gfile.GFile(posixpath.join(report_dir, REJECTED_FILE), "w") as f:
    # One write, even when empty: GFile creates the file on first write.
    f.write("".join(json.dumps({"path": r["path"], "reason": r["reason"]}) + "\n"
                    for r in rejected))
  with tf.io.gfile.GFile(posixpath.join(report_dir, SUMMARY_FILE), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
  tf.io.gfile.rmtree(posixpath.join(report_dir, "_outcomes"))
  return summary


def check_dataset(summary: Dict[str, Any], input_base: str,
                  roots: Sequence[str] = ("",), task: str = "",
                  csv: bool = False) -> None:
  """Fails on data that can't train a model of `task` (its name; "": the
  default task), naming folder and fix.

  roots: the split roots, the training one first (one "" for a flat folder).
  Folder names are printed escaped (trainer.text.escape).
  """
  input_base = escape(input_base)
  if summary["ingested"] == 0:
    seen = (f"{summary['seen']} files seen, all rejected; see the rejected "
            "output" if summary["seen"] else "no files found")
    raise DatasetError(
        f"no usable image under {input_base} ({seen}). Put JPEG or PNG files "
        "in <data>/<class>/ folders, or name them in the labels CSV.")
  kind = tasks.named(task)
  problem = kind.dataset_problem(summary, input_base, roots)
  if problem:
    raise DatasetError(problem)
  fix = ("add images or rows, or change the split ratio or the CSV's split "
         "column" if csv else "add images or change the split ratio")
  for split, n in summary["splits"].items():
    if n == 0:
      raise DatasetError(
          f"split '{split}' got no examples from {input_base}: {fix}.")
