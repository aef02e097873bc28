"""Precise BatchNorm: moving statistics recomputed for the final weights.

During training BatchNorm normalizes with each batch's statistics and keeps an
exponential moving average (momentum 0.99: about the last 100 steps) for
inference. While the weights still move — and the learned resizer's output
moves with them — that average describes weights that no longer exist, and
inference-mode accuracy can sit near chance while training accuracy is fine.
Recalibration ("precise BN", Wu & Johnson, Rethinking "Batch" in BatchNorm)
runs batches of training images through the model in training mode with the
final weights and sets each layer's moving mean and variance to the
population statistics of its inputs over all those images:

  mean = E[x],  variance = E[x^2] - E[x]^2,  over every image and position,

aggregated exactly from each batch's mean and (biased) variance, weighted by
batch size. Only public Keras attributes are used: with momentum 0 a training
step leaves the batch's own statistics in moving_mean / moving_variance, and
with `fused` off that variance is the plain (biased) one of tf.nn.moments
rather than the fused kernel's Bessel-corrected one.
"""
import numpy as np
import tensorflow as tf

from trainer.keras_lib import keras, layers


def batchnorm_layers(model):
  """Every BatchNormalization layer, nested models included."""
  return [m for m in model.submodules
          if isinstance(m, layers.BatchNormalization)]


class Recalibrator:
  """Recomputes a model's BatchNorm statistics; reusable across epochs (the
  step function is traced once)."""

  def __init__(self, model):
    self.model = model
    self.layers = batchnorm_layers(model)
    self._step = None

  def _trace(self):
    saved = [(bn.momentum, bn.fused) for bn in self.layers]
    for bn in self.layers:  # both are read when the step is traced, below
      bn.momentum, bn.fused = 0.0, False
    try:
      @tf.function(reduce_retracing=True)
      def step(images):
        self.model(images, training=True)
        # Read after the update: automatic control dependencies order these
        # reads after the assignments the call made.
        return ([tf.identity(bn.moving_mean) for bn in self.layers],
                [tf.identity(bn.moving_variance) for bn in self.layers])
      step.get_concrete_function(
          tf.TensorSpec([None, *self.model.input_shape[1:]], tf.float32))
    finally:
      for bn, (momentum, fused) in zip(self.layers, saved):
        bn.momentum, bn.fused = momentum, fused
    return step

  def __call__(self, images, max_examples=None):
    """Sets the statistics from `images` (batches of model inputs, or
    (inputs, labels) pairs); returns the number of examples used."""
    if not self.layers:
      return 0
    if self._step is None:
      self._step = self._trace()
    originals = [(bn.moving_mean.numpy(), bn.moving_variance.numpy())
                 for bn in self.layers]
    total = 0
    sums = sq_sums = None
    for batch in images:
      x = batch[0] if isinstance(batch, tuple) else batch
      if max_examples is not None:
        x = x[:max(0, max_examples - total)]
      n = int(tf.shape(x)[0])
      if n == 0:
        break
      means, variances = self._step(tf.cast(x, tf.float32))
      means = [m.numpy().astype(np.float64) for m in means]
      variances = [v.numpy().astype(np.float64) for v in variances]
      if sums is None:
        sums = [n * m for m in means]
        sq_sums = [n * (v + m * m) for m, v in zip(means, variances)]
      else:
        for i, (m, v) in enumerate(zip(means, variances)):
          sums[i] += n * m
          sq_sums[i] += n * (v + m * m)
      total += n
      if max_examples is not None and total >= max_examples:
        break
    if total == 0:  # no data: leave the model as it was
      for bn, (mean, var) in zip(self.layers, originals):
        bn.moving_mean.assign(mean)
        bn.moving_variance.assign(var)
      return 0
    for bn, s, sq in zip(self.layers, sums, sq_sums):
      mean = s / total
      bn.moving_mean.assign(mean.astype(np.float32))
      bn.moving_variance.assign(np.maximum(sq / total - mean * mean, 0.0)
                                .astype(np.float32))
    return total


class PreciseBatchNormEvaluation(keras.callbacks.Callback):
  """At the end of every epoch: recalibrate BatchNorm, then evaluate.

  Replaces fit's own validation, which runs before callbacks and so would
  score the stale moving averages; the val_* values land in the epoch logs
  (History, TensorBoard) as fit's would. Recalibrating does not change
  training: batches in training mode never read the moving statistics.
  """

  def __init__(self, calibration_data, calibration_examples, eval_data):
    super().__init__()
    self.calibration_data = calibration_data
    self.calibration_examples = calibration_examples
    self.eval_data = eval_data
    self._recalibrate = None

  def on_epoch_end(self, epoch, logs=None):
    if self._recalibrate is None:
      self._recalibrate = Recalibrator(self.model)
    if self.calibration_examples:
      self._recalibrate(self.calibration_data, self.calibration_examples)
    if self.eval_data is not None and logs is not None:
      scores = self.model.evaluate(self.eval_data, verbose=0, return_dict=True)
      logs.update({f"val_{k}": v for k, v in scores.items()})
