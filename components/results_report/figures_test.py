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

import tasks
from components.results_report import figures
from testing.helpers import jpeg_bytes
from trainer import features
from trainer.model import ModelSpec, build_model
from trainer.preprocessing import decode_and_resize
from trainer.training import RESIZER_WEIGHTS

CLASSIFICATION = tasks.get("classification")


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


SPEC = ModelSpec(head=CLASSIFICATION.head(3), input_size=SIZE,
                 target_size=SIZE // 2)
INFO = {"target_size": SIZE // 2,
        "resizer_config": {"filters": SPEC.filters,
                           "num_res_blocks": SPEC.res_blocks,
                           "interpolation": SPEC.interpolation}}


@pytest.fixture(scope="module")
def learned():
  """A learned-resizer model, its resizer's weights moved off their initial
  values, saved where the Trainer puts it on ram://, with the resizer's own
  checkpoint in the model_run (as run_fn writes them)."""
  root = _ram_root()
  model = build_model(SPEC)
  resizer = model.get_layer("learnable_resizer")
  rng = np.random.default_rng(0)
  resizer.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype)
                       for w in resizer.get_weights()])
  uri = os.path.join(root, "Trainer_learned", "model", "1")
  model.save(os.path.join(uri, "Format-Serving"), save_format="tf",
             save_traces=False)
  run = os.path.join(root, "Trainer_learned", "model_run", "1")
  resizer.save_weights(os.path.join(run, RESIZER_WEIGHTS))
  return {"model": model, "uri": uri, "run": run}


def test_the_resizer_from_its_checkpoint_is_the_trained_one(learned):
  pixels = tf.random.stateless_uniform([2, SIZE, SIZE, 3], [1, 2])
  trained = learned["model"].get_layer("learnable_resizer")(pixels).numpy()
  rebuilt = figures.trained_resizer("ram://nowhere", learned["run"], INFO)
  np.testing.assert_allclose(rebuilt(pixels).numpy(), trained, atol=1e-5)
  # An older run without the checkpoint: the layer of the whole saved model.
  whole = figures.trained_resizer(learned["uri"], _ram_root(), INFO)
  np.testing.assert_allclose(whole(pixels).numpy(), trained, atol=1e-5)
  fresh = build_model(SPEC).get_layer("learnable_resizer")(pixels).numpy()
  assert np.abs(fresh - trained).max() > 1e-2  # the weights did move


def test_resized_grid_reads_ram_uris(learned):
  root = _ram_root()
  images = [(name, jpeg_bytes((40, 30), color))
            for name, color in COLORS.items()]
  _write_examples(os.path.join(root, "examples"), images)
  path = os.path.join(root, "report", "resized.png")
  tf.io.gfile.makedirs(os.path.dirname(path))
  figures.resized_grid(_examples(os.path.join(root, "examples")),
                       learned["uri"], learned["run"], INFO, SIZE, path)
  grid = _read_png(path)
  assert grid.shape == (figures.HEADER + 3 * SIZE, 3 * SIZE, 3)
  # The "original" column holds each eval image, one per class, in order.
  for row, (_, encoded) in enumerate(images):
    expected = decode_and_resize(tf.constant(encoded), SIZE).numpy()
    top = figures.HEADER + row * SIZE
    np.testing.assert_allclose(grid[top:top + SIZE, :SIZE], expected, atol=1)


def test_no_eval_examples_gives_a_message_figure(learned):
  root = _ram_root()
  _write_examples(os.path.join(root, "examples"), [])  # an empty split
  path = os.path.join(root, "resized.png")
  figures.resized_grid(_examples(os.path.join(root, "examples")),
                       learned["uri"], learned["run"], INFO, SIZE, path)
  grid = _read_png(path)
  # A fixed-size note instead of a crash, with dark text on white.
  assert grid.shape == (figures.EMPTY_SIZE[1], figures.EMPTY_SIZE[0], 3)
  assert (grid < 128).any() and (grid == 255).mean() > 0.5
