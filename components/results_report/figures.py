"""The report's figures: resized eval images and training curves.

Artifact URIs may be gs:// (Vertex), so they are read only through
tf.io.gfile, never Python's glob/open.
"""
import io
import logging
import os

import matplotlib

matplotlib.use("Agg")  # no display on pipeline workers
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from tfx.utils import path_utils  # noqa: E402

from trainer import features  # noqa: E402
from trainer.keras_lib import keras  # noqa: E402
from trainer.preprocessing import (  # noqa: E402
    decode_and_resize, model_pixels, pixels_to_bytes)
from trainer.resizer import learnable_resizer  # noqa: E402
from trainer.training import RESIZER_WEIGHTS  # noqa: E402

HEADER = 18       # px of column titles above the grid
COLUMNS = ("original", "bilinear", "learned (min-max)")
MAX_ROWS = 6
EMPTY_SIZE = (480, 40)  # (width, height) of the note shown instead of a grid


def eval_images(examples_uri, input_size, max_rows=MAX_ROWS):
  """Up to max_rows eval images as [N, S, S, 3] uint8: one per class first.

  N is 0 when the eval split has no examples.
  """
  files = sorted(tf.io.gfile.glob(
      os.path.join(examples_uri, "Split-eval", "*")))
  if not files:  # TFRecordDataset([]) would fail on an empty string list
    return np.zeros((0, input_size, input_size, 3), np.uint8)
  firsts, rest, seen = [], [], set()
  for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(
      64):
    feats = tf.train.Example.FromString(record.numpy()).features.feature
    # One per class first; examples of a numeric target have no class.
    label = (feats[features.LABEL].bytes_list.value[0]
             if features.LABEL in feats else None)
    (rest if label in seen else firsts).append(
        feats[features.IMAGE].bytes_list.value[0])
    seen.add(label)
  chosen = (firsts + rest)[:max_rows]
  if not chosen:
    return np.zeros((0, input_size, input_size, 3), np.uint8)
  return np.stack([decode_and_resize(tf.constant(b), input_size).numpy()
                   for b in chosen])


def trained_resizer(learned_model_uri, learned_run_uri, info):
  """The learned resizer alone, rebuilt from its settings and checkpoint in
  the Trainer's model_run; from the whole Keras model for runs older than
  that checkpoint (a cached Trainer)."""
  weights = os.path.join(learned_run_uri, RESIZER_WEIGHTS)
  if "resizer_config" in info and tf.io.gfile.exists(weights + ".index"):
    target = info["target_size"]
    resizer = learnable_resizer((target, target), **info["resizer_config"])
    resizer.load_weights(weights).assert_existing_objects_matched()
    return resizer
  model = keras.models.load_model(
      path_utils.serving_model_path(learned_model_uri), compile=False)
  return model.get_layer("learnable_resizer")


def grid_titles(candidates):
  """The column titles of resized.png for `candidates` ([(name, model_uri,
  run_uri, info)]): original, then per learned candidate its bilinear and
  learned output, or bilinear at each target when none is learned."""
  learned = _learned(candidates)
  if [c[0] for c in learned] == ["learned"]:
    return list(COLUMNS)  # the default pair keeps its titles
  titles = ["original"]
  if not learned:
    return titles + [f"bilinear {i}->{t}" for i, t in _sizes(candidates)]
  for name, _, _, info in learned:
    sizes = f"{info['input_size']}->{info['target_size']}"
    titles += [f"bilinear {sizes}", f"{name} {sizes} (min-max)"]
  return titles


def _learned(candidates):
  return [c for c in candidates if c[3].get("resizer") == "learned"]


def _sizes(candidates):
  """The distinct (input, target) sizes of the candidates, in order."""
  return list(dict.fromkeys((c[3]["input_size"], c[3]["target_size"])
                            for c in candidates))


def _model_input(images, stored, size):
  """Eval images decoded at the stored size -> a candidate's input in
  [0, 1], downscaled exactly as in training and serving."""
  raw = tf.stack([pixels_to_bytes(tf.constant(image)) for image in images])
  return model_pixels(raw, stored, size) / 255.0


def _min_max(images):
  # The learned resizer's output is not an image in [0, 1] (the paper's
  # Fig. 1 shows the same); scale each one to its own range to show structure.
  low = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
  high = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
  return (images - low) / tf.maximum(high - low, 1e-6)


def resized_grid(examples, candidates, stored_size, path):
  """Rows of eval images: original | per learned candidate, bilinear at its
  target | its learned resizer's output; with no learned candidate, bilinear
  at each candidate's target. candidates: [(name, model_uri, run_uri,
  info)], info the candidate's model_info.json; stored_size: the size
  Transform stores the pixels at (the largest input)."""
  images = eval_images(examples.uri, stored_size)
  if not len(images):
    # A report without this figure beats a failed ResultsReport: say why.
    message = (f"no eval examples to show in "
               f"{os.path.join(examples.uri, 'Split-eval')}")
    logging.warning("resized.png: %s", message)
    note = Image.new("RGB", EMPTY_SIZE, "white")
    ImageDraw.Draw(note).text((5, 5), "resized.png: no eval examples",
                              fill="black")
    _save(note, path)
    return
  columns = [tf.constant(images, tf.float32) / 255.0]
  learned = _learned(candidates)
  if not learned:
    for size, target in _sizes(candidates):
      columns.append(tf.image.resize(_model_input(images, stored_size, size),
                                     [target, target], method="bilinear"))
  for _, model_uri, run_uri, info in learned:
    pixels = _model_input(images, stored_size, info["input_size"])
    target = info["target_size"]
    columns.append(tf.image.resize(pixels, [target, target],
                                   method="bilinear"))
    resizer = trained_resizer(model_uri, run_uri, info)
    columns.append(_min_max(resizer(pixels, training=False)))

  size = stored_size
  grid = Image.new("RGB", (len(columns) * size, HEADER + len(images) * size),
                   "white")
  draw = ImageDraw.Draw(grid)
  for c, title in enumerate(grid_titles(candidates)):
    draw.text((c * size + 3, 3), title, fill="black")
  for c, batch in enumerate(columns):
    for r, image in enumerate(batch.numpy()):
      tile = Image.fromarray((image * 255).round().astype(np.uint8))
      # Small images are shown with nearest-neighbour so their pixels show.
      grid.paste(tile.resize((size, size), Image.NEAREST),
                 (c * size, HEADER + r * size))
  _save(grid, path)


def training_curves(infos, score, path):
  """Loss and the task's score (Keras's name: accuracy, or the RMSE of the
  normalised target) per epoch, train and eval, for both models."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
  for ax, metric in zip(axes, ("loss", score)):
    for name, info in infos.items():
      history = info["history"]
      epochs = range(1, len(history[metric]) + 1)
      line, = ax.plot(epochs, history[metric], "o-", label=f"{name} train")
      if f"val_{metric}" in history:
        ax.plot(epochs, history[f"val_{metric}"], "o--", color=line.get_color(),
                label=f"{name} eval")
    ax.set_xlabel("epoch")
    ax.set_title(metric)
    ax.legend()
  _save_figure(fig, path)


def eval_targets_and_predictions(examples_uri, model_uris, limit=1000):
  """(true targets [N], {name: predictions [N]}) on up to `limit` eval
  examples, through each pushed-style model's serving_default signature."""
  files = sorted(tf.io.gfile.glob(
      os.path.join(examples_uri, "Split-eval", "*")))
  records = [] if not files else [
      r.numpy() for r in tf.data.TFRecordDataset(
          files, compression_type="GZIP").take(limit)]
  truth = np.array([tf.train.Example.FromString(r).features.feature[
      features.TARGET].float_list.value[0] for r in records], np.float32)
  predictions = {}
  for name, uri in model_uris.items():
    serve = tf.saved_model.load(path_utils.serving_model_path(uri)).signatures[
        "serving_default"]
    predictions[name] = np.concatenate([
        serve(examples=tf.constant(records[i:i + 64]))["prediction"].numpy()
        for i in range(0, len(records), 64)]) if records else np.zeros(0)
  return truth, predictions


def predicted_vs_true(truth, predictions, path):
  """A numeric target: one scatter per model, the diagonal is a perfect
  model."""
  fig, axes = plt.subplots(1, len(predictions), figsize=(5 * len(predictions),
                                                         4.6), dpi=100)
  low = min([truth.min(initial=0)] + [p.min(initial=0)
                                      for p in predictions.values()])
  high = max([truth.max(initial=1)] + [p.max(initial=1)
                                       for p in predictions.values()])
  for ax, (name, predicted) in zip(np.atleast_1d(axes), predictions.items()):
    ax.scatter(truth, predicted, s=8, alpha=0.6)
    ax.plot([low, high], [low, high], "k--", linewidth=1)
    rmse = float(np.sqrt(np.mean((predicted - truth) ** 2))) if len(truth) \
        else float("nan")
    ax.set_title(f"{name} (RMSE {rmse:.3g}, {len(truth)} eval images)")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
  _save_figure(fig, path)


def pareto(points, chosen, front, cost_label, score_label, path):
  """pareto.png: each candidate's score against its cost, with the interval
  of its difference to the best (the paired test's), the non-dominated
  front joined and the chosen candidate marked. points: [{name, cost,
  score, lower, upper}] (lower/upper: score bounds, None for the best)."""
  fig, ax = plt.subplots(figsize=(7, 4.6), dpi=100)
  by_name = {p["name"]: p for p in points}
  for p in points:
    bars = None
    if p.get("lower") is not None:
      bars = [[p["score"] - p["lower"]], [p["upper"] - p["score"]]]
    ax.errorbar(p["cost"], p["score"], yerr=bars, fmt="o", capsize=4,
                color="tab:red" if p["name"] == chosen else "tab:blue")
    ax.annotate(p["name"], (p["cost"], p["score"]), textcoords="offset points",
                xytext=(6, 6), fontsize=8)
  line = [by_name[n] for n in front]
  ax.plot([p["cost"] for p in line], [p["score"] for p in line], "--",
          color="gray", linewidth=1, label="non-dominated front")
  ax.scatter([by_name[chosen]["cost"]], [by_name[chosen]["score"]], s=180,
             facecolors="none", edgecolors="tab:red", linewidths=2,
             label=f"chosen: {chosen}")
  ax.set_xlabel(cost_label)
  ax.set_ylabel(f"{score_label} (bars: interval of the difference to the "
                "best)")
  ax.legend(loc="best", fontsize=8)
  _save_figure(fig, path)


def _save_figure(fig, path):
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png")
  plt.close(fig)
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(buf.getvalue())


def _save(image, path):
  buf = io.BytesIO()
  image.save(buf, format="PNG")
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(buf.getvalue())


def predicted_figure(examples_uri, model_uris, report_dir):
  """predicted.png: each model's predictions against the true targets."""
  truth, predictions = eval_targets_and_predictions(examples_uri, model_uris)
  predicted_vs_true(truth, predictions,
                    os.path.join(report_dir, "predicted.png"))


# The figures a task asks for by name (tasks/ Task.figures), beside the
# common ones: (examples URI, {model: URI}, report folder) -> written.
FIGURES = {"predicted": predicted_figure}
