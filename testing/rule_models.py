"""Rule-based served models whose answers are known in advance, and eval
examples they answer, for tests that run the real TFX Evaluator / TFMA.

Each eval image carries its label (or target) and its index i in one pixel,
and a model of a given quality level is right on a known set of i
(classification) or off by a known error (regression). So every paired table
and every score is known before TFMA runs.
"""
import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image
from tfx.types import artifact_utils, standard_artifacts

from testing.helpers import artifact
from trainer import features

N = 84  # eval examples: a multiple of the 3 classes and of the 4 residues
CLASSES = ("a", "b", "c")
# Classification: the residues of i % 4 on which a model is right.
RIGHT = {"best": (0, 1, 2, 3), "good": (1, 2, 3), "weak": (0, 2),
         "poor": (0,), "worst": ()}
# Regression: error scale; a model is off by scale * (1 + i % 3), sign by i.
ERROR = {"best": 0.0, "good": 1.0, "weak": 3.0, "poor": 30.0, "worst": 45.0}
TRAINING_MEAN = 100.0  # the constant predictor the regression floor uses


def target(i):
  return 20 + (i * 37) % 160  # spread over 20..179 around the mean


def value_of(task, i):
  """What example i's pixel carries: its class id, or its target."""
  return i % len(CLASSES) if task == "classification" else target(i)


def top1(level):
  return len(RIGHT[level]) / 4


def squared_errors(level):
  """A regression model's squared error on each eval example."""
  return [(ERROR[level] * (1 + i % 3)) ** 2 for i in range(N)]


def rmse(level):
  return float(np.sqrt(np.mean(squared_errors(level))))


def paired_table(a, b):
  """(examples, only a right, only b right) of two classification levels."""
  right = {level: [i % 4 in RIGHT[level] for i in range(N)]
           for level in (a, b)}
  pairs = list(zip(right[a], right[b]))
  return (N, sum(x and not y for x, y in pairs),
          sum(y and not x for x, y in pairs))


def paired_sums(a, b):
  """(examples, sum of d, sum of d^2), d = b's squared error - a's, of two
  regression levels."""
  d = [y - x for x, y in zip(squared_errors(a), squared_errors(b))]
  return N, float(sum(d)), float(sum(v * v for v in d))


MEAN_RMSE = float(np.sqrt(np.mean([(target(i) - TRAINING_MEAN) ** 2
                                   for i in range(N)])))


def _png(value, index):
  buf = io.BytesIO()
  pixels = np.zeros((2, 2, 3), np.uint8)
  pixels[0, 0] = (value, index, 0)
  Image.fromarray(pixels).save(buf, format="PNG")
  return buf.getvalue()


def write_examples(uri, task):
  """An Examples artifact with N eval examples (and an empty train split)."""
  examples = artifact(standard_artifacts.Examples, uri)
  examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
  for split, count in (("train", 0), ("eval", N)):
    folder = os.path.join(uri, f"Split-{split}")
    tf.io.gfile.makedirs(folder)
    with tf.io.TFRecordWriter(os.path.join(folder, "data.gz"),
                              options="GZIP") as writer:
      for i in range(count):
        value = value_of(task, i)
        feature = {features.IMAGE: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[_png(value, i)]))}
        if task == "classification":
          feature[features.LABEL] = tf.train.Feature(bytes_list=(
              tf.train.BytesList(value=[CLASSES[value].encode()])))
        else:
          feature[features.TARGET] = tf.train.Feature(
              float_list=tf.train.FloatList(value=[float(value)]))
        writer.write(tf.train.Example(features=tf.train.Features(
            feature=feature)).SerializeToString())
  return examples


class RuleModel(tf.Module):
  """A served model whose answer on example i follows its level's rule."""

  def __init__(self, task, level):
    super().__init__()
    self.task = task
    self.right = tf.constant(RIGHT[level] or (-1,), tf.int64)
    self.scale = tf.constant(ERROR[level], tf.float32)
    self.names = tf.constant(CLASSES)

  def _pixel(self, examples):
    images = tf.io.parse_example(examples, {
        features.IMAGE: tf.io.FixedLenFeature([], tf.string)})[features.IMAGE]
    pixel = tf.map_fn(
        lambda b: tf.cast(tf.io.decode_png(b, channels=3)[0, 0], tf.int64),
        images, fn_output_signature=tf.TensorSpec([3], tf.int64))
    return pixel[:, 0], pixel[:, 1]  # (value, index)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve(self, examples):
    value, index = self._pixel(examples)
    if self.task == "regression":
      sign = tf.where(index % 2 == 0, -1.0, 1.0)
      error = sign * self.scale * tf.cast(1 + index % 3, tf.float32)
      prediction = tf.cast(value, tf.float32) + error
      return {"prediction": prediction,
              "training_mean": tf.fill(tf.shape(prediction), TRAINING_MEAN)}
    right = tf.reduce_any(tf.equal((index % 4)[:, None], self.right[None]),
                          axis=1)
    k = len(CLASSES)
    predicted = tf.where(right, value, (value + 1) % k)
    probabilities = tf.one_hot(predicted, k, on_value=0.7, off_value=0.15)
    return {"probabilities": probabilities,
            "class_names": tf.tile(self.names[None], [tf.size(value), 1]),
            "top_class": tf.gather(self.names, predicted)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def transform(self, examples):
    value, _ = self._pixel(examples)
    if self.task == "regression":
      return {features.TARGET_RAW: tf.cast(value, tf.float32)}
    return {features.LABEL_ID: value}


def save_model(path, task, level):
  """Saves the level's RuleModel with the pipeline's signatures at `path`."""
  module = RuleModel(task, level)
  tf.saved_model.save(module, path, signatures={
      "serving_default": module.serve,
      "transform_features": module.transform})
  return path
