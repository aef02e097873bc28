"""The report figures read artifacts through TensorFlow's filesystems.

On Vertex the artifact URIs are gs://, which Python's glob can't list; here
TensorFlow's in-memory ram:// filesystem stands in for it (no network).
"""
import io
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.results_report import figures
from tests.helpers import jpeg_bytes
from trainer import features
from trainer.model import ModelSpec, build_model
from trainer.preprocessing import decode_and_resize

SIZE = 32
COLORS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


def _ram_root():
  return f"ram://figures-{uuid.uuid4().hex}"


def _write_examples(uri, images):
  """ExampleGen's layout: <uri>/Split-eval/*.gz, gzipped tf.Examples."""
  split = os.path.join(uri, "Split-eval")
  tf.io.gfile.makedirs(split)
  with tf.io.TFRecordWriter(os.path.join(split, "data_tfrecord-00000.gz"),
                            options="GZIP") as writer:
    for label, encoded in images:
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[encoded])),
          features.LABEL: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[label.encode()])),
      })).SerializeToString())


def _examples(uri):
  class Examples:  # what resized_grid reads of the Examples artifact
    pass
  examples = Examples()
  examples.uri = uri
  return examples


def _read_png(path):
  with tf.io.gfile.GFile(path, "rb") as f:
    return np.asarray(Image.open(io.BytesIO(f.read())).convert("RGB"))


@pytest.fixture(scope="module")
def learned_model_uri():
  """A learned-resizer model saved where the Trainer puts it, on ram://."""
  uri = os.path.join(_ram_root(), "Trainer_learned", "model", "1")
  model = build_model(ModelSpec(num_classes=3, input_size=SIZE,
                                target_size=SIZE // 2))
  model.save(os.path.join(uri, "Format-Serving"), save_format="tf",
             save_traces=False)
  return uri


def test_resized_grid_reads_ram_uris(learned_model_uri):
  root = _ram_root()
  images = [(name, jpeg_bytes((40, 30), color))
            for name, color in COLORS.items()]
  _write_examples(os.path.join(root, "examples"), images)
  path = os.path.join(root, "report", "resized.png")
  tf.io.gfile.makedirs(os.path.dirname(path))
  figures.resized_grid(_examples(os.path.join(root, "examples")),
                       learned_model_uri, {"target_size": SIZE // 2}, SIZE,
                       path)
  grid = _read_png(path)
  assert grid.shape == (figures.HEADER + 3 * SIZE, 3 * SIZE, 3)
  # The "original" column holds each eval image, one per class, in order.
  for row, (_, encoded) in enumerate(images):
    expected = decode_and_resize(tf.constant(encoded), SIZE).numpy()
    top = figures.HEADER + row * SIZE
    np.testing.assert_allclose(grid[top:top + SIZE, :SIZE], expected, atol=1)


def test_no_eval_examples_gives_a_message_figure(learned_model_uri):
  root = _ram_root()
  _write_examples(os.path.join(root, "examples"), [])  # an empty split
  path = os.path.join(root, "resized.png")
  figures.resized_grid(_examples(os.path.join(root, "examples")),
                       learned_model_uri, {"target_size": SIZE // 2}, SIZE,
                       path)
  grid = _read_png(path)
  # A fixed-size note instead of a crash, with dark text on white.
  assert grid.shape == (figures.EMPTY_SIZE[1], figures.EMPTY_SIZE[0], 3)
  assert (grid < 128).any() and (grid == 255).mean() > 0.5
