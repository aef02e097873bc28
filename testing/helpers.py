"""Test helpers shared by tests/ and components/*/ tests."""
import contextlib
import glob
import html.parser
import io
import json
import os
import posixpath
import socket
import struct
import subprocess
import sys
import uuid
import zlib

import numpy as np
import pytest
import tensorflow as tf
from apache_beam.io import filesystem
from PIL import Image

from pipeline.demo_data import write_demo_data
from trainer import features


def tiny_dataset(path, per_class=8, classes=3, size=64, seed=0):
  """A few dozen 64 px demo images; returns the number written."""
  return write_demo_data(str(path), per_class=per_class, size=size,
                         classes=classes, seed=seed)


def jpeg_bytes(size=(40, 30), color=(200, 30, 30)):
  buf = io.BytesIO()
  Image.fromarray(np.full((size[1], size[0], 3), color, np.uint8)).save(
      buf, format="JPEG")
  return buf.getvalue()


def png_bomb(width=100_000, height=100_000, filled=False):
  """A tiny PNG whose header declares a huge image (a decompression bomb).

  filled: its data holds every row too (a 1-bit black image, deflated about
  1000 to 1), so a decoder really writes width x height pixels; else it
  holds one pixel and a decoder fails after allocating.
  """
  if filled:
    return _filled_png_bomb(width, height)
  buf = io.BytesIO()
  Image.new("RGB", (1, 1)).save(buf, format="PNG")
  data = bytearray(buf.getvalue())
  ihdr = data.index(b"IHDR")
  data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
  crc = zlib.crc32(bytes(data[ihdr:ihdr + 17]))
  data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
  return bytes(data)


def _filled_png_bomb(width, height):
  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))
  deflate = zlib.compressobj(9)
  row = b"\0" * (1 + (width + 7) // 8)  # filter byte "none", then the bits
  data = b"".join(deflate.compress(row) for _ in range(height))
  data += deflate.flush()
  return (b"\x89PNG\r\n\x1a\n"
          + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
          + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def read_examples(split_dir):
  """All tf.Examples in an ExampleGen split folder (gzipped TFRecords)."""
  files = sorted(glob.glob(os.path.join(split_dir, "*.gz")))
  examples = []
  for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
    examples.append(tf.train.Example.FromString(record.numpy()))
  return examples


def tensorboard_events(folder):
  """{tag: (step, value as an array, plugin name, plugin content)} of a
  TensorBoard log folder's own event files (not its subfolders')."""
  found = {}
  for path in sorted(tf.io.gfile.glob(
      os.path.join(folder, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        plugin = value.metadata.plugin_data
        found[value.tag] = (event.step, tf.make_ndarray(value.tensor),
                            plugin.plugin_name, plugin.content)
  return found


def tensorboard_hparams(folder):
  """{name: value} of the HParams session written in folder."""
  from tensorboard.plugins.hparams import metadata  # pylint: disable=import-outside-toplevel
  content = tensorboard_events(folder)[metadata.SESSION_START_INFO_TAG][3]
  start = metadata.parse_session_start_info_plugin_data(content)
  return {k: getattr(v, v.WhichOneof("kind"))
          for k, v in start.hparams.items()}


def feature(example, name):
  f = example.features.feature[name]
  return f.bytes_list.value[0] if f.HasField("bytes_list") else \
      f.int64_list.value[0]


@contextlib.contextmanager
def no_network():
  """Refuses every connection or name lookup inside; yields the hosts tried."""
  attempts = []

  def refuse(host):
    attempts.append(host)
    raise OSError("network access in an offline test")

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(socket.socket, "connect", lambda self, address: refuse(
        address[0] if isinstance(address, tuple) else address))
    mp.setattr(socket, "create_connection",
               lambda address, *a, **kw: refuse(address[0]))
    mp.setattr(socket, "getaddrinfo", lambda host, *a, **kw: refuse(host))
    yield attempts


def ram_root(name):
  """A fresh folder on TensorFlow's in-memory filesystem: artifact URIs there
  work only through tf.io.gfile / TFX fileio, as gs:// ones on Vertex."""
  return f"ram://{name}-{uuid.uuid4().hex}"


def artifact(cls, uri):
  """A TFX artifact of type `cls` (e.g. standard_artifacts.Model) at `uri`,
  as an executor receives it."""
  made = cls()
  made.uri = uri
  return made


def write_file(path, data):
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.gfile.GFile(path, "wb" if isinstance(data, bytes) else "w") as f:
    f.write(data)


def copy_tree(folder, uri):
  """Copies a local folder's files under `uri` (e.g. a ram_root), keeping
  their relative paths: test data on a filesystem only tf.io.gfile reaches."""
  for dirpath, _, names in os.walk(folder):
    for name in names:
      rel = os.path.relpath(os.path.join(dirpath, name), folder)
      with open(os.path.join(dirpath, name), "rb") as f:
        write_file(posixpath.join(uri, *rel.split(os.sep)), f.read())


def write_label_vocab(transform_graph_uri, classes):
  """The part of a Transform output the gates read: the label vocabulary."""
  write_file(os.path.join(transform_graph_uri, "transform_fn", "assets",
                          features.LABEL_VOCAB),
             "".join(f"{c}\n" for c in classes))


def transform_output(folder, task="classification", input_size=16,
                     target_transform="none"):
  """A TF Transform output (transform_fn/ and metadata/, as the Transform
  component writes them) of this pipeline's preprocessing_fn on three
  generated images with the curated base schema's raw features: classes
  "a" and "b", or a float image/target."""
  # pylint: disable=import-outside-toplevel
  import tempfile

  import tensorflow_data_validation as tfdv
  import tensorflow_transform as tft
  import tensorflow_transform.beam as tft_beam
  from tensorflow_transform.tf_metadata import (dataset_metadata,
                                                metadata_io, schema_utils)

  import schema as schema_pkg
  from pipeline.transform_module import preprocessing_fn
  spec = schema_utils.schema_as_feature_spec(
      tfdv.load_schema_text(schema_pkg.BASE_SCHEMA)).feature_spec
  if task == "regression":  # as components/schema_curator makes it
    del spec[features.LABEL]
    spec[features.TARGET] = tf.io.FixedLenFeature([1], tf.float32)
  cfg = {"input_size": input_size, "task": task}
  if task == "regression":
    cfg["target_transform"] = target_transform

  def value(name, i):
    if name == features.IMAGE:
      return [jpeg_bytes((8, 8), (80 * i, 0, 0))]
    if name == features.LABEL:
      return ["ab"[i % 2]]
    dtype = spec[name].dtype
    return [float(i + 1)] if dtype == tf.float32 else \
        [8] if dtype == tf.int64 else ["x"]

  raw = [{name: value(name, i) for name in spec} for i in range(3)]
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(spec))
  folder = str(folder)
  with tft_beam.Context(temp_dir=tempfile.mkdtemp()):
    transform_fn = (raw, metadata) | tft_beam.AnalyzeDataset(
        lambda inputs: preprocessing_fn(inputs, cfg))
    _ = transform_fn | tft_beam.WriteTransformFn(folder)
  metadata_io.write_metadata(metadata, os.path.join(folder, "metadata"))
  return tft.TFTransformOutput(folder)


def write_evaluation(uri, top1, paired=None, metrics=None, pairs=None):
  """A TFMA evaluation as TFX's Evaluator writes it (metrics TFRecords), with
  the overall top-1 of each model ({name: value}), per candidate model the
  PairedAccuracy table ({name: (examples, candidate_only, baseline_only)}),
  as the SweepEvaluator writes them every pair's table ({(a, b): (examples,
  a_only, b_only)}) and other overall metrics ({model: {metric name:
  value}})."""
  from tensorflow_model_analysis.proto import metrics_for_slice_pb2  # pylint: disable=import-outside-toplevel
  from gate import tfma_metric  # pylint: disable=import-outside-toplevel
  overall = metrics_for_slice_pb2.MetricsForSlice()
  overall.slice_key.SetInParent()

  def add(name, model, value, is_diff=False):
    kv = overall.metric_keys_and_values.add()
    kv.key.name, kv.key.model_name, kv.key.is_diff = name, model, is_diff
    kv.value.double_value.value = value

  for model, value in top1.items():
    add(tfma_metric.TOP1, model, value)
  for model, values in (metrics or {}).items():
    for name, value in values.items():
      add(name, model, value)
  for model, table in (paired or {}).items():
    for name, value in zip((tfma_metric.EXAMPLES, tfma_metric.CANDIDATE_ONLY,
                            tfma_metric.BASELINE_ONLY), table):
      add(name, model, float(value), is_diff=True)
  for (a, b), table in (pairs or {}).items():
    for name, value in zip((tfma_metric.EXAMPLES, tfma_metric.CANDIDATE_ONLY,
                            tfma_metric.BASELINE_ONLY), table):
      add(f"{name}{tfma_metric.PAIR}{b}", a, float(value))
  tf.io.gfile.makedirs(uri)
  with tf.io.TFRecordWriter(
      os.path.join(uri, "metrics-00000-of-00001.tfrecord")) as writer:
    writer.write(overall.SerializeToString())


def cost_record(flops, latency_ms=1.0):
  """A Trainer's model_info.json "cost" (trainer/cost.py) with these FLOPs
  per image and batch-1 latency."""
  return {"params": 1000, "flops_per_image": float(flops),
          "saved_model_bytes": 4096, "latency_ms_batch1": float(latency_ms),
          "latency_ms_batch32": float(latency_ms) / 4,
          "machine": "test machine, 2 cores, no GPU"}


def write_model(uri, files=None):
  """A stand-in for a Trainer's model: files under Format-Serving/."""
  files = files or {"saved_model.pb": b"graph",
                    "variables/variables.index": b"index"}
  for name, data in files.items():
    write_file(os.path.join(uri, "Format-Serving", name), data)


class FakeVertex:
  """Records what the TFX cloud pusher asks of google.cloud.aiplatform."""

  def __init__(self):
    self.calls = []
    self.endpoints = []  # display names created so far

  def install(self, mp):
    """Replaces, through the MonkeyPatch `mp`, the Vertex AI SDK calls that
    TFX's cloud pusher makes (tfx/extensions/google_cloud_ai_platform/
    prediction_clients.py); TFX's executor, runner and client run as they
    are."""
    from google.cloud import aiplatform  # pylint: disable=import-outside-toplevel
    vertex = self

    class Endpoint:
      def __init__(self, name):
        self.display_name = name
        self.resource_name = f"projects/p/locations/r/endpoints/{name}"

    class Model:
      resource_name = "projects/p/locations/r/models/42"

      def wait(self):
        pass

      def deploy(self, endpoint, **kwargs):
        vertex.calls.append(("deploy", {"endpoint": endpoint.display_name,
                                        **kwargs}))

    def init(**kwargs):
      vertex.calls.append(("init", kwargs))

    def list_endpoints(filter=None, **_):  # pylint: disable=redefined-builtin
      vertex.calls.append(("list_endpoints", {"filter": filter}))
      return [Endpoint(n) for n in vertex.endpoints
              if filter == f'display_name="{n}"']

    def create_endpoint(display_name, **kwargs):
      vertex.calls.append(("create_endpoint",
                           {"display_name": display_name, **kwargs}))
      vertex.endpoints.append(display_name)
      return Endpoint(display_name)

    def upload(**kwargs):
      vertex.calls.append(("upload", kwargs))
      return Model()

    mp.setattr(aiplatform, "init", init)
    mp.setattr(aiplatform.Endpoint, "list", list_endpoints)
    mp.setattr(aiplatform.Endpoint, "create", create_endpoint)
    mp.setattr(aiplatform.Model, "upload", upload)

  def named(self, name):
    return [kw for call, kw in self.calls if call == name]


class RamBeamFileSystem(filesystem.FileSystem):
  """Beam's view of ram:// through tf.io.gfile, as Beam's GCS filesystem is
  its view of gs:// on Dataflow. Beam finds FileSystem subclasses itself:
  importing this module lets a Beam component write ram:// outputs in tests.
  """

  @classmethod
  def scheme(cls):
    return "ram"

  def join(self, basepath, *paths):
    return posixpath.join(basepath, *paths)

  def split(self, path):
    return posixpath.split(path)

  def mkdirs(self, path):
    tf.io.gfile.makedirs(path)

  def has_dirs(self):
    return True

  def _list(self, dir_or_prefix):
    if not tf.io.gfile.exists(dir_or_prefix):
      return
    for dirpath, _, files in tf.io.gfile.walk(dir_or_prefix):
      for name in files:
        path = posixpath.join(dirpath, name)
        yield filesystem.FileMetadata(path, tf.io.gfile.stat(path).length)

  def _open(self, path, mode, compression_type):
    compression_type = self._get_compression_type(path, compression_type)
    raw = tf.io.gfile.GFile(path, mode)
    if compression_type == filesystem.CompressionTypes.UNCOMPRESSED:
      return raw
    return filesystem.CompressedFile(raw, compression_type=compression_type)

  def create(self, path, mime_type="application/octet-stream",
             compression_type=filesystem.CompressionTypes.AUTO):
    tf.io.gfile.makedirs(posixpath.dirname(path))
    return self._open(path, "wb", compression_type)

  def open(self, path, mime_type="application/octet-stream",
           compression_type=filesystem.CompressionTypes.AUTO):
    return self._open(path, "rb", compression_type)

  def copy(self, source_file_names, destination_file_names):
    for source, destination in zip(source_file_names, destination_file_names):
      tf.io.gfile.copy(source, destination, overwrite=True)

  def rename(self, source_file_names, destination_file_names):
    for source, destination in zip(source_file_names, destination_file_names):
      tf.io.gfile.makedirs(posixpath.dirname(destination))
      tf.io.gfile.rename(source, destination, overwrite=True)

  def exists(self, path):
    return tf.io.gfile.exists(path)

  def size(self, path):
    return tf.io.gfile.stat(path).length

  def last_updated(self, path):
    return tf.io.gfile.stat(path).mtime_nsec / 1e9

  def checksum(self, path):
    return str(self.size(path))

  def metadata(self, path):
    return filesystem.FileMetadata(path, self.size(path),
                                   self.last_updated(path))

  def delete(self, paths):
    for path in paths:
      if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
      else:
        tf.io.gfile.remove(path)


_SERVE = r"""
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
images = [open(p, "rb").read() for p in sys.argv[2:]]
examples = [tf.train.Example(features=tf.train.Features(feature={
    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b]))
})).SerializeToString() for b in images]

def plain(outputs):
  return {k: (v.numpy().astype(str) if v.dtype == tf.string else v.numpy()
              ).tolist() for k, v in outputs.items()}
print(json.dumps({
    "images": plain(model.signatures["serving_images"](
        image_bytes=tf.constant(images))),
    "examples": plain(model.signatures["serving_default"](
        examples=tf.constant(examples))),
    "project_code_imported": any(m.split(".")[0] in ("trainer", "components",
                                 "pipeline", "gate") for m in sys.modules),
}))
"""


def serve_in_fresh_process(model_dir, images, cwd):
  """A pushed model's serving_images and serving_default outputs for image
  files, computed in a fresh Python without the project on its path (as a
  serving system would): {"images": {...}, "examples": {...},
  "project_code_imported": bool}."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  proc = subprocess.run([sys.executable, "-c", _SERVE, str(model_dir),
                         *map(str, images)], cwd=cwd, env=env, check=True,
                        capture_output=True, text=True, timeout=300)
  return json.loads(proc.stdout.strip().splitlines()[-1])


def run_example_gen(data, out, max_pixels=40_000_000, layout="auto",
                    labels=None):
  """Runs ImageExampleGen's executor on `data` into `out`: (examples per
  split, summary.json, rejected.jsonl rows, the report and examples
  artifacts)."""
  # pylint: disable=import-outside-toplevel
  from tfx.proto import example_gen_pb2
  from tfx.types import standard_artifacts
  from tfx.utils import proto_utils

  from components.image_example_gen import IngestReport
  from components.image_example_gen.executor import Executor
  from components.image_example_gen.report import REJECTED_FILE, SUMMARY_FILE
  from pipeline.data_layout import example_gen_configs
  input_config, output_config = example_gen_configs(str(data), layout)
  examples = standard_artifacts.Examples()
  examples.uri = str(out / "examples")
  report = IngestReport()
  report.uri = str(out / "report")
  Executor().Do({}, {"examples": [examples], "rejected": [report]}, {
      "input_base": str(data),
      "input_config": proto_utils.proto_to_json(input_config),
      "output_config": proto_utils.proto_to_json(output_config),
      "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
      "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
      "max_pixels": max_pixels,
      **({"labels": str(labels)} if labels else {}),
  })
  splits = {s: read_examples(os.path.join(examples.uri, f"Split-{s}"))
            for s in ("train", "eval")}
  with open(os.path.join(report.uri, SUMMARY_FILE)) as f:
    summary = json.load(f)
  with open(os.path.join(report.uri, REJECTED_FILE)) as f:
    rejected = [json.loads(line) for line in f]
  return splits, summary, rejected, report, examples


class HtmlPage(html.parser.HTMLParser):
  """A parsed HTML page: every tag's attributes, the rows of each table and
  the text of each paragraph, by id."""

  def __init__(self, text):
    super().__init__(convert_charrefs=True)
    self.tags, self.tables, self.paragraphs = [], {}, {}
    self._table = self._cell = self._paragraph = None
    self.feed(text)
    self.close()

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    self.tags.append((tag, attrs))
    if tag == "table":
      self._table = self.tables.setdefault(attrs.get("id"), [])
    elif tag == "tr" and self._table is not None:
      self._table.append([])
    elif tag in ("td", "th"):
      self._cell = []
    elif tag == "p" and "id" in attrs:
      self._paragraph = self.paragraphs.setdefault(attrs["id"], [])

  def handle_data(self, data):
    for part in (self._cell, self._paragraph):
      if part is not None:
        part.append(data)

  def handle_endtag(self, tag):
    if tag in ("td", "th") and self._cell is not None:
      self._table[-1].append("".join(self._cell))
      self._cell = None
    elif tag == "table":
      self._table = None
    elif tag == "p":
      self._paragraph = None

  def text(self, paragraph_id):
    return "".join(self.paragraphs[paragraph_id])

  def rows(self, table_id):
    """The table's rows after its header row."""
    return self.tables[table_id][1:]


# Small SavedModels with the pushed models' serving_images interface
# (predict's tests).
COLOR_CLASSES = ["red", "green", "blue"]
PORTRAIT_REFUSED = "image is taller than wide; this model refuses it"


class ColorModel(tf.Module):
  """Classifies an image by its mean colour, or (regression) returns its mean
  red value: the same signature name and outputs as a pushed model.
  refuse_portrait: its `error` output refuses images taller than wide, as a
  pushed model's refuses images over its limit."""

  def __init__(self, regression=False, classes=None, jpeg_only=False,
               refuse_portrait=False):
    super().__init__()
    self.regression = regression
    self.classes = classes or COLOR_CLASSES
    self.jpeg_only = jpeg_only  # unlike a pushed model
    self.refuse_portrait = refuse_portrait

  def _decode(self, image):
    if self.jpeg_only:  # decode_jpeg would read PNG too
      window = tf.concat([[0, 0], tf.image.extract_jpeg_shape(image)[:2]], 0)
      return tf.image.decode_and_crop_jpeg(image, window, channels=3)
    return tf.io.decode_image(image, channels=3, expand_animations=False)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                              name="image_bytes")])
  def serve(self, image_bytes):
    means = tf.map_fn(
        lambda b: tf.reduce_mean(tf.cast(self._decode(b), tf.float32), [0, 1]),
        image_bytes, fn_output_signature=tf.TensorSpec([3], tf.float32))
    if self.regression:
      return {"prediction": means[:, :1]}
    probs = tf.nn.softmax(means / 10.0)
    names = tf.constant(self.classes)
    outputs = {
        "probabilities": probs,
        "class_names": tf.tile(names[tf.newaxis], [tf.shape(probs)[0], 1]),
        "top_class": tf.gather(names, tf.argmax(probs, axis=-1))}
    if self.refuse_portrait:
      shapes = tf.map_fn(lambda b: tf.shape(self._decode(b))[:2], image_bytes,
                         fn_output_signature=tf.TensorSpec([2], tf.int32))
      outputs["error"] = tf.where(shapes[:, 0] > shapes[:, 1],
                                  PORTRAIT_REFUSED, "")
    return outputs


def save_color_model(path, regression=False, signature="serving_images",
                     classes=None, max_pixels=None, jpeg_only=False,
                     refuse_portrait=False):
  """A ColorModel saved with its serve function as `signature`; max_pixels:
  recorded as the pushed models record it."""
  module = ColorModel(regression, classes, jpeg_only, refuse_portrait)
  if max_pixels is not None:
    module.max_pixels = tf.function(
        lambda: tf.constant(max_pixels, tf.int64), input_signature=[])
  tf.saved_model.save(module, str(path), signatures={signature: module.serve})
  return str(path)


class _CopiesOnLoad(tf.saved_model.experimental.TrackableResource):
  """A resource whose initializer, run when the model is loaded, copies the
  file `secret` to `marker`."""

  def __init__(self, secret, marker):
    super().__init__()
    self.secret, self.marker = secret, marker

  def _create_resource(self):
    return tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.string)

  def _initialize(self):
    tf.io.write_file(self.marker, tf.io.read_file(self.secret))


def hostile_model(folder, where):
  """A classifier with the pushed models' interface that also copies
  folder/secret to folder/marker: when loaded (initializer), on every
  serving_images call, or through Python (py_function)."""
  secret, marker = str(folder / "secret"), str(folder / "marker")
  (folder / "secret").write_text("secret")
  module = ColorModel()
  serve = module.serve
  if where == "initializer":
    module.table = _CopiesOnLoad(secret, marker)
  else:
    def copy():
      with open(secret, encoding="utf-8") as src, \
          open(marker, "w", encoding="utf-8") as dst:
        dst.write(src.read())
      return 0

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                name="image_bytes")])
    def serve(image_bytes):  # pylint: disable=function-redefined
      if where == "serving_images":
        tf.io.write_file(marker, tf.io.read_file(secret))
      else:
        tf.py_function(copy, [], tf.int32)
      return module.serve(image_bytes)
  path = str(folder / "model")
  tf.saved_model.save(module, path, signatures={"serving_images": serve})
  return path, folder / "marker"


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_in_fresh_process(code: str, *args: str):
  """`python -c code args` in a new interpreter at the repository root
  (nothing this process imported or patched carries over); its
  CompletedProcess, text output captured, not checked."""
  return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO_ROOT,
                        capture_output=True, text=True, check=False,
                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})

