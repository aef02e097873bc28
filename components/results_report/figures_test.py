"""The report figures read artifacts through TensorFlow's filesystems.

On Vertex the artifact URIs are gs://, which Python's glob can't list; here
TensorFlow's in-memory ram:// filesystem stands in for it (no network).
"""
import io
import os
import uuid

import matplotlib.axes
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tasks
from components.results_report import figures
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


def _info(spec, resizer="learned"):
  """What model_info.json holds of a candidate that the figure reads."""
  return {"resizer": resizer, "input_size": spec.input_size,
          "target_size": spec.target_size,
          "resizer_config": {"filters": spec.filters,
                             "num_res_blocks": spec.res_blocks,
                             "interpolation": spec.interpolation}}


SPEC = ModelSpec(head=CLASSIFICATION.head(3), input_size=SIZE,
                 target_size=SIZE // 2)
INFO = _info(SPEC)
# A second learned candidate: a smaller input (an antialiased downscale of
# the stored pixels) to a smaller target.
SMALL_SPEC = ModelSpec(head=CLASSIFICATION.head(3), input_size=SIZE // 2,
                       target_size=SIZE // 4)
SMALL_INFO = _info(SMALL_SPEC)


def _trained(spec, seed):
  """A learned-resizer model, its resizer's weights moved off their initial
  values, saved where the Trainer puts it on ram://, with the resizer's own
  checkpoint in the model_run (as run_fn writes them)."""
  root = _ram_root()
  model = build_model(spec)
  resizer = model.get_layer("learnable_resizer")
  rng = np.random.default_rng(seed)
  resizer.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype)
                       for w in resizer.get_weights()])
  uri = os.path.join(root, "Trainer_learned", "model", "1")
  model.save(os.path.join(uri, "Format-Serving"), save_format="tf",
             save_traces=False)
  run = os.path.join(root, "Trainer_learned", "model_run", "1")
  resizer.save_weights(os.path.join(run, RESIZER_WEIGHTS))
  return {"model": model, "uri": uri, "run": run}


@pytest.fixture(scope="module")
def learned():
  return _trained(SPEC, 0)


@pytest.fixture(scope="module")
def small():
  return _trained(SMALL_SPEC, 1)


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


def _grid(root, candidates, stored=SIZE):
  """resized.png of the COLORS eval images (one per class) on ram://: the
  decoded grid and the eval images at the stored size."""
  images = [(name, _textured_png(color, seed))
            for seed, (name, color) in enumerate(COLORS.items())]
  _write_examples(os.path.join(root, "examples"), images)
  path = os.path.join(root, "report", "resized.png")
  tf.io.gfile.makedirs(os.path.dirname(path))
  figures.resized_grid(_examples(os.path.join(root, "examples")), candidates,
                       stored, path)
  stored_pixels = np.stack([decode_and_resize(tf.constant(encoded),
                                              stored).numpy()
                            for _, encoded in images])
  return _read_png(path), stored_pixels


def _textured_png(color, seed, size=(40, 30)):
  """A colour with noise on it, so that a downscale changes its pixels."""
  noise = np.random.default_rng(seed).integers(-25, 26, (size[1], size[0], 3))
  pixels = np.clip(np.array(color) + noise, 0, 255).astype(np.uint8)
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, format="PNG")
  return buf.getvalue()


def _column(grid, c, size=SIZE):
  """Column c of the grid under its title, as [rows, size, size, 3]."""
  body = grid[figures.HEADER:, c * size:(c + 1) * size]
  return body.reshape(-1, size, size, 3)


def _as_tiles(batch, size=SIZE):
  """What the grid shows of [N, h, w, 3] floats in [0, 1]."""
  return np.stack([np.asarray(Image.fromarray(
      (np.asarray(x) * 255).round().astype(np.uint8)).resize(
          (size, size), Image.NEAREST)) for x in batch])


def _input(stored_pixels, size):
  """A candidate's input in [0, 1]: the stored pixels' antialiased
  downscale."""
  pixels = tf.constant(stored_pixels, tf.float32)
  if size != stored_pixels.shape[1]:
    pixels = tf.image.resize(pixels, [size, size], antialias=True)
  return pixels / 255.0


def _min_max(x):
  x = np.asarray(x)
  low = x.min(axis=(1, 2, 3), keepdims=True)
  return (x - low) / (x.max(axis=(1, 2, 3), keepdims=True) - low)


def _bilinear(pixels, target):
  return tf.image.resize(pixels, [target, target], method="bilinear")


def test_resized_grid_reads_ram_uris(learned):
  root = _ram_root()
  candidates = [("learned", learned["uri"], learned["run"], INFO),
                ("bilinear", "ram://unused", "ram://unused",
                 _info(SPEC, "bilinear"))]
  grid, stored = _grid(root, candidates)
  assert grid.shape == (figures.HEADER + 3 * SIZE, 3 * SIZE, 3)
  # The "original" column holds each eval image, one per class, in order.
  np.testing.assert_allclose(_column(grid, 0), stored, atol=1)
  unit = _input(stored, SIZE)
  np.testing.assert_allclose(_column(grid, 1),
                             _as_tiles(_bilinear(unit, SIZE // 2)), atol=1)
  resizer = learned["model"].get_layer("learnable_resizer")
  np.testing.assert_allclose(_column(grid, 2),
                             _as_tiles(_min_max(resizer(unit))), atol=2)


def test_the_default_pair_keeps_its_titles(learned):
  candidates = [("learned", learned["uri"], learned["run"], INFO),
                ("bilinear", "", "", _info(SPEC, "bilinear"))]
  assert figures.grid_titles(candidates) == [
      "original", "bilinear", "learned (min-max)"]


def test_two_learned_candidates_each_get_their_columns(learned, small):
  root = _ram_root()
  candidates = [("learned_32_16", learned["uri"], learned["run"], INFO),
                ("bilinear_32_16", "", "", _info(SPEC, "bilinear")),
                ("learned_16_8", small["uri"], small["run"], SMALL_INFO)]
  assert figures.grid_titles(candidates) == [
      "original", "bilinear 32->16", "learned_32_16 32->16 (min-max)",
      "bilinear 16->8", "learned_16_8 16->8 (min-max)"]
  grid, stored = _grid(root, candidates)
  # Every column is as wide as the stored size, one row per eval image.
  assert grid.shape == (figures.HEADER + 3 * SIZE, 5 * SIZE, 3)
  np.testing.assert_allclose(_column(grid, 0), stored, atol=1)
  for c, (spec, trained) in enumerate(((SPEC, learned), (SMALL_SPEC, small))):
    unit = _input(stored, spec.input_size)
    np.testing.assert_allclose(
        _column(grid, 1 + 2 * c),
        _as_tiles(_bilinear(unit, spec.target_size)), atol=1)
    resizer = trained["model"].get_layer("learnable_resizer")
    np.testing.assert_allclose(_column(grid, 2 + 2 * c),
                               _as_tiles(_min_max(resizer(unit))), atol=2)
  # The small candidate's input is a downscale, not the stored pixels.
  assert np.abs(_column(grid, 3).astype(int) - _as_tiles(_bilinear(
      _input(stored, SIZE), SIZE // 4)).astype(int)).max() > 0


def test_no_learned_candidate_shows_bilinear_at_each_target():
  root = _ram_root()
  candidates = [("bilinear_32_16", "", "", _info(SPEC, "bilinear")),
                ("bilinear_16_8", "", "", _info(SMALL_SPEC, "bilinear"))]
  assert figures.grid_titles(candidates) == [
      "original", "bilinear 32->16", "bilinear 16->8"]
  grid, stored = _grid(root, candidates)
  assert grid.shape == (figures.HEADER + 3 * SIZE, 3 * SIZE, 3)
  for c, spec in enumerate((SPEC, SMALL_SPEC)):
    expected = _bilinear(_input(stored, spec.input_size), spec.target_size)
    np.testing.assert_allclose(_column(grid, 1 + c), _as_tiles(expected),
                               atol=1)


def test_no_eval_examples_gives_a_message_figure(learned):
  root = _ram_root()
  _write_examples(os.path.join(root, "examples"), [])  # an empty split
  path = os.path.join(root, "resized.png")
  figures.resized_grid(_examples(os.path.join(root, "examples")),
                       [("learned", learned["uri"], learned["run"], INFO)],
                       SIZE, path)
  grid = _read_png(path)
  # A fixed-size note instead of a crash, with dark text on white.
  assert grid.shape == (figures.EMPTY_SIZE[1], figures.EMPTY_SIZE[0], 3)
  assert (grid < 128).any() and (grid == 255).mean() > 0.5


POINTS = [{"name": "bilinear_32_16", "cost": 1.0, "score": 0.60,
           "lower": 0.50, "upper": 0.66},
          {"name": "learned_32_16", "cost": 3.0, "score": 0.72,
           "lower": None, "upper": None},
          {"name": "learned_64_16", "cost": 5.0, "score": 0.65,
           "lower": 0.58, "upper": 0.70}]


def test_pareto_draws_every_candidate_and_marks_the_chosen(monkeypatch):
  drawn, labels, lines = [], {}, []
  def spy(method, record):
    original = getattr(matplotlib.axes.Axes, method)
    def wrapper(self, *args, **kwargs):
      record(args, kwargs)
      return original(self, *args, **kwargs)
    monkeypatch.setattr(matplotlib.axes.Axes, method, wrapper)
  spy("errorbar", lambda a, k: drawn.append((a[0], a[1], k["yerr"],
                                             k["color"])))
  spy("annotate", lambda a, k: labels.update({a[0]: a[1]}))
  spy("plot", lambda a, k: lines.append((list(a[0]), list(a[1]))))
  path = os.path.join(_ram_root(), "pareto.png")
  figures.pareto(POINTS, "learned_32_16", ["bilinear_32_16", "learned_32_16"],
                 "GFLOPs per image", "top-1", path)

  # One point per candidate at (cost, score), its bars the interval's ends,
  # its name beside it; the chosen one in its own colour.
  assert [(x, y) for x, y, _, _ in drawn] == [(p["cost"], p["score"])
                                              for p in POINTS]
  assert drawn[0][2] == [[pytest.approx(0.10)], [pytest.approx(0.06)]]
  assert drawn[1][2] is None  # the best has no interval to itself
  assert [c for _, _, _, c in drawn] == ["tab:blue", "tab:red", "tab:blue"]
  assert labels == {p["name"]: (p["cost"], p["score"]) for p in POINTS}
  assert ([1.0, 3.0], [0.60, 0.72]) in lines  # the front, cheapest first
  image = _read_png(path)
  assert image.shape[0] > 100 and image.shape[1] > 100
  red = (image[..., 0] > 180) & (image[..., 1] < 80) & (image[..., 2] < 80)
  assert red.sum() > 20  # the chosen point and its ring are drawn
