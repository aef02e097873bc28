"""Beam executor of ImageExampleGen.

Each split pattern names a split root (`train/*/*` -> `train/`). Every file
under it is read once and fully decoded with PIL to validate it; a file that
can't be used becomes a rejection with a reason instead of failing the run, so
ingested + rejected = files seen. Dataset-level problems (fewer than two
classes, a class folder without a usable image) do fail the run, naming the
folder and the fix.
"""
import io
import json
import os
import posixpath
from typing import Any, Dict, Iterator, List

import apache_beam as beam
import tensorflow as tf
from PIL import Image
from tfx import types
from tfx.components.example_gen.base_example_gen_executor import (
    BaseExampleGenExecutor)
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import proto_utils

from trainer import features

MAX_PIXELS_KEY = "max_pixels"
REJECTED_KEY = "rejected"
REJECTED_FILE = "rejected.jsonl"
SUMMARY_FILE = "summary.json"
_REPORT_DIR_KEY = "_ingest_report_dir"  # passed to the PTransform, not a spec key
_FORMATS = {"JPEG": "jpeg", "PNG": "png"}
# max_pixels replaces PIL's own bomb limit, so the reason names our setting.
Image.MAX_IMAGE_PIXELS = None


class DatasetError(ValueError):
  """The image folder as a whole can't train a classifier."""


def split_root(pattern: str) -> str:
  """`train/*/*` -> `train`; `*/*` -> `` (the input base itself)."""
  parts = pattern.split("/")
  if parts[-2:] != ["*", "*"]:
    raise ValueError(f"split pattern {pattern!r} must end in '*/*' "
                     "(<split>/<class>/<image>)")
  return "/".join(parts[:-2])


def list_files(input_base: str, root: str) -> List[str]:
  """Every file below input_base/root, as paths relative to input_base."""
  top = posixpath.join(input_base, root) if root else input_base
  found = []
  for dirpath, _, filenames in tf.io.gfile.walk(top):
    rel_dir = os.path.relpath(dirpath, input_base)
    for name in filenames:
      found.append(posixpath.normpath(posixpath.join(rel_dir, name)))
  return sorted(found)


def class_folders(input_base: str, root: str) -> List[str]:
  top = posixpath.join(input_base, root) if root else input_base
  return sorted(d.rstrip("/") for d in tf.io.gfile.listdir(top)
                if tf.io.gfile.isdir(posixpath.join(top, d))
                and not d.startswith("."))


def _bytes(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def inspect_image(data: bytes, max_pixels: int):
  """Returns (format, width, height) or raises ValueError with the reason."""
  if not data:
    raise ValueError("empty file (0 bytes)")
  try:
    # Image.open reads only the header: the size check happens before decoding.
    with Image.open(io.BytesIO(data)) as image:
      width, height = image.size
      fmt = image.format
      if fmt not in _FORMATS:
        raise ValueError(f"unsupported format {fmt} (accepted: JPEG, PNG)")
      if width * height > max_pixels:
        raise ValueError(
            f"{width}x{height} = {width * height} pixels is above the "
            f"max_pixels limit {max_pixels} (possible decompression bomb); "
            "raise max_pixels if the image is genuine")
      image.load()  # full decode: truncated or corrupt data fails here
  except ValueError:
    raise
  except Exception as e:  # PIL raises many types for undecodable data.
    raise ValueError(f"cannot decode image: {e.__class__.__name__}: {e}") from None
  return _FORMATS[fmt], width, height


class _DecodeFn(beam.DoFn):
  """Path -> tf.Example (main output) and one outcome record per file."""

  OUTCOMES = "outcomes"

  def __init__(self, input_base: str, root: str, max_pixels: int):
    self._input_base = input_base
    self._root = root
    self._max_pixels = max_pixels

  def process(self, rel_path: str) -> Iterator[Any]:
    inside = posixpath.relpath(rel_path, self._root) if self._root else rel_path
    parts = inside.split("/")
    hidden = any(p.startswith(".") for p in parts)
    label = parts[0] if len(parts) > 1 and not hidden else None
    outcome = {"path": rel_path, "class": label, "split_root": self._root}
    try:
      if hidden:
        raise ValueError("hidden file or folder (name starts with '.')")
      if label is None:
        raise ValueError("not inside a class folder; move it into "
                         "<class>/ so its label is known")
      with tf.io.gfile.GFile(posixpath.join(self._input_base, rel_path),
                             "rb") as f:
        data = f.read()
      fmt, width, height = inspect_image(data, self._max_pixels)
    except (ValueError, OSError) as e:
      yield beam.pvalue.TaggedOutput(
          self.OUTCOMES, {**outcome, "status": "rejected", "reason": str(e)})
      return
    yield beam.pvalue.TaggedOutput(self.OUTCOMES,
                                   {**outcome, "status": "ingested"})
    yield tf.train.Example(features=tf.train.Features(feature={
        features.IMAGE: _bytes(data),
        features.LABEL: _bytes(label.encode("utf-8")),
        features.HEIGHT: _int(height),
        features.WIDTH: _int(width),
        features.FORMAT: _bytes(fmt.encode()),
        features.FILENAME: _bytes(rel_path.encode("utf-8")),
    }))


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _ImageToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                    split_pattern: str) -> beam.pvalue.PCollection:
  input_base = exec_properties["input_base"]
  root = split_root(split_pattern)
  results = (
      pipeline
      | "ListFiles" >> beam.Create(list_files(input_base, root))
      | "Distribute" >> beam.Reshuffle()
      | "Decode" >> beam.ParDo(_DecodeFn(input_base, root,
                                         exec_properties[MAX_PIXELS_KEY]))
      .with_outputs(_DecodeFn.OUTCOMES, main="examples"))
  shard = root.replace("/", "_") or "all"
  _ = (results[_DecodeFn.OUTCOMES]
       | "OutcomeToJson" >> beam.Map(json.dumps, sort_keys=True)
       | "WriteOutcomes" >> beam.io.WriteToText(
           posixpath.join(exec_properties[_REPORT_DIR_KEY], "_outcomes", shard)))
  return results["examples"]


class Executor(BaseExampleGenExecutor):
  """ExampleGen executor for folders of class-labelled images."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    return _ImageToExample

  def GenerateExamplesByBeam(self, pipeline, exec_properties):
    splits = super().GenerateExamplesByBeam(pipeline, exec_properties)
    counts_dir = posixpath.join(exec_properties[_REPORT_DIR_KEY], "_counts")
    for name, examples in splits.items():
      _ = (examples
           | f"Count[{name}]" >> beam.combiners.Count.Globally()
           | f"CountToJson[{name}]" >> beam.Map(
               lambda n, split=name: json.dumps({"split": split, "count": n}))
           | f"WriteCount[{name}]" >> beam.io.WriteToText(
               posixpath.join(counts_dir, name)))
    return splits

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    report = artifact_utils.get_single_instance(output_dict[REJECTED_KEY])
    exec_properties = {**exec_properties, _REPORT_DIR_KEY: report.uri}
    super().Do(input_dict, output_dict, exec_properties)
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties["input_config"], input_config)
    folders = [f"{root}/{c}".lstrip("/")
               for root in (split_root(s.pattern) for s in input_config.splits)
               for c in class_folders(exec_properties["input_base"], root)]
    summary = write_report(report.uri, folders)
    report.set_int_custom_property("seen", summary["seen"])
    report.set_int_custom_property("ingested", summary["ingested"])
    report.set_int_custom_property("rejected", summary["rejected"])
    check_dataset(summary, exec_properties["input_base"])


def _read_json_lines(pattern: str) -> List[Dict[str, Any]]:
  rows = []
  for path in sorted(tf.io.gfile.glob(pattern)):
    with tf.io.gfile.GFile(path) as f:
      rows.extend(json.loads(line) for line in f if line.strip())
  return rows


def write_report(report_dir: str, folders: List[str]) -> Dict[str, Any]:
  """Merges the Beam shards into rejected.jsonl and summary.json.

  folders: every class folder found ("<split root>/<class>"), so an empty
  one shows up with zero images.
  """
  outcomes = _read_json_lines(posixpath.join(report_dir, "_outcomes", "*"))
  counts = _read_json_lines(posixpath.join(report_dir, "_counts", "*"))
  rejected = sorted((o for o in outcomes if o["status"] == "rejected"),
                    key=lambda o: o["path"])
  per_class = {f: {"ingested": 0, "rejected": 0} for f in folders}
  for o in outcomes:
    if o["class"] is not None:
      key = f"{o['split_root']}/{o['class']}".lstrip("/")
      per_class.setdefault(key, {"ingested": 0, "rejected": 0})
      per_class[key][o["status"]] += 1
  summary = {
      "seen": len(outcomes),
      "ingested": sum(o["status"] == "ingested" for o in outcomes),
      "rejected": len(rejected),
      "splits": {c["split"]: c["count"] for c in counts},
      "classes": dict(sorted(per_class.items())),
  }
  with tf.io.gfile.GFile(posixpath.join(report_dir, REJECTED_FILE), "w") as f:
    # One write, even when empty: GFile creates the file on first write.
    f.write("".join(json.dumps({"path": r["path"], "reason": r["reason"]}) + "\n"
                    for r in rejected))
  with tf.io.gfile.GFile(posixpath.join(report_dir, SUMMARY_FILE), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
  for sub in ("_outcomes", "_counts"):
    tf.io.gfile.rmtree(posixpath.join(report_dir, sub))
  return summary


def check_dataset(summary: Dict[str, Any], input_base: str) -> None:
  """Fails on data that can't train a classifier, naming folder and fix."""
  if summary["ingested"] == 0:
    raise DatasetError(
        f"no usable image under {input_base} ({summary['seen']} files seen, all "
        "rejected; see the rejected output). Put JPEG or PNG files in "
        "<data>/<class>/ folders.")
  labels = {key.rsplit("/", 1)[-1] for key in summary["classes"]}
  if len(labels) < 2:
    raise DatasetError(
        f"only one class folder ({', '.join(sorted(labels))}) under "
        f"{input_base}: a classifier needs at least two. Add a folder per class.")
  empty = [k for k, n in summary["classes"].items() if n["ingested"] == 0]
  if empty:
    raise DatasetError(
        "class folder(s) with no usable image under "
        f"{input_base}: {', '.join(empty)}. Add images or remove the folder; "
        "the rejected output says why each file was refused.")
  for split, n in summary["splits"].items():
    if n == 0:
      raise DatasetError(
          f"split '{split}' got no examples from {input_base}: add images or "
          "change the split ratio.")
