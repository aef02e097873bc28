"""Precise BatchNorm: recalibrated statistics are the population statistics."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from trainer.batchnorm import (PreciseBatchNormEvaluation, Recalibrator,
                               batchnorm_layers)
from trainer.keras_lib import keras, layers


def _nested_model():
  """A BatchNorm on the input, and one inside a nested model after a conv."""
  keras.utils.set_random_seed(0)
  inner_in = layers.Input((6, 6, 3))
  conv = layers.Conv2D(4, 3, padding="same", name="conv")
  inner = keras.Model(inner_in, layers.BatchNormalization(name="inner_bn")(
      conv(inner_in)), name="inner")
  inputs = layers.Input((6, 6, 3))
  top_bn = layers.BatchNormalization(name="top_bn")
  outputs = layers.Concatenate()([top_bn(inputs), inner(inputs)])
  return keras.Model(inputs, outputs), top_bn, conv, inner.get_layer("inner_bn")


def _data(n=50, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(3.0, 2.0, (n, 6, 6, 3)).astype("float32")


def test_moving_statistics_equal_a_direct_computation():
  model, top_bn, conv, inner_bn = _nested_model()
  assert {b.name for b in batchnorm_layers(model)} == {"top_bn", "inner_bn"}
  x = _data()
  # Uneven batches (8 x 6 + 2): the aggregation weighs each by its size.
  used = Recalibrator(model)(tf.data.Dataset.from_tensor_slices(x).batch(8))
  assert used == 50
  np.testing.assert_allclose(top_bn.moving_mean, x.mean((0, 1, 2)), rtol=1e-5)
  np.testing.assert_allclose(top_bn.moving_variance, x.var((0, 1, 2)),
                             rtol=1e-4)
  features = conv(x).numpy().astype(np.float64)
  np.testing.assert_allclose(inner_bn.moving_mean, features.mean((0, 1, 2)),
                             rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(inner_bn.moving_variance, features.var((0, 1, 2)),
                             rtol=1e-4)
  # Inference mode now normalizes with exactly those statistics.
  out = model(x, training=False).numpy()[..., :3]
  expected = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-3)
  np.testing.assert_allclose(out, expected, atol=1e-4)


def test_only_max_examples_are_used_and_the_layers_are_left_as_they_were():
  model, top_bn, _, _ = _nested_model()
  x = _data(40)
  recalibrate = Recalibrator(model)
  used = recalibrate(tf.data.Dataset.from_tensor_slices((x, x)).batch(16),
                     max_examples=20)
  assert used == 20
  np.testing.assert_allclose(top_bn.moving_mean, x[:20].mean((0, 1, 2)),
                             rtol=1e-5)
  for bn in batchnorm_layers(model):
    assert bn.momentum == 0.99 and bn.fused
  # Traced once: a second call on other data reuses the step.
  recalibrate(tf.data.Dataset.from_tensor_slices(x[20:] + 10).batch(16))
  np.testing.assert_allclose(top_bn.moving_mean, (x[20:] + 10).mean((0, 1, 2)),
                             rtol=1e-5)


def test_epoch_end_recalibrates_before_scoring_the_eval_data():
  """A model whose inputs sit far from BatchNorm's initial statistics: after
  one short epoch Keras's moving averages still describe the initial ones."""
  keras.utils.set_random_seed(1)
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 2, 64)
  x = (rng.normal(0, 1, (64, 4)) + 40 * labels[:, None] + 200).astype("float32")
  y = keras.utils.to_categorical(labels, 2)
  inputs = layers.Input((4,))
  bn = layers.BatchNormalization()
  model = keras.Model(inputs, layers.Dense(2, activation="softmax")(bn(inputs)))
  model.compile(keras.optimizers.Adam(0.05), "categorical_crossentropy",
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
  train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
  lagging = keras.models.clone_model(model)
  lagging.set_weights(model.get_weights())
  history = model.fit(train, epochs=1, verbose=0, callbacks=[
      PreciseBatchNormEvaluation(train, 64, train)])
  np.testing.assert_allclose(bn.moving_mean, x.mean(0), rtol=1e-4)
  assert history.history["val_accuracy"][0] == pytest.approx(
      model.evaluate(train, verbose=0, return_dict=True)["accuracy"])
  # Without it, after 4 steps at momentum 0.99 Keras's average is still near
  # its initial 0, nowhere near the inputs' mean of about 220.
  lagging.compile(keras.optimizers.Adam(0.05), "categorical_crossentropy")
  lagging.fit(train, epochs=1, verbose=0)
  assert np.abs(lagging.layers[1].moving_mean.numpy()).max() < 0.05 * 220


MIRRORED = r"""
import json
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from trainer.keras_lib import keras, layers
from trainer.batchnorm import PreciseBatchNormEvaluation
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
x = (rng.normal(0, 1, (64, 4)) + 200).astype("float32")
y = keras.utils.to_categorical(rng.integers(0, 2, 64), 2)
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
with strategy.scope():
  inputs = layers.Input((4,))
  bn = layers.BatchNormalization()
  model = keras.Model(inputs, layers.Dense(2, activation="softmax")(bn(inputs)))
  model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
history = model.fit(ds, epochs=2, verbose=0,
                    callbacks=[PreciseBatchNormEvaluation(ds, 64, ds)])
print(json.dumps({"mean": bn.moving_mean.numpy().tolist(),
                  "expected": x.mean(0).tolist(),
                  "val": len(history.history["val_accuracy"])}))
"""


def test_recalibration_under_a_two_replica_mirrored_strategy(tmp_path):
  """Two logical CPUs stand in for two GPUs; the devices must be configured
  before TensorFlow starts, hence a fresh process."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run([sys.executable, "-c", MIRRORED], cwd=root,
                        capture_output=True, text=True, timeout=300,
                        check=True)
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  np.testing.assert_allclose(out["mean"], out["expected"], rtol=1e-5)
  assert out["val"] == 2
