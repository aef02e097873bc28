"""In-process training harness for the evidence benchmarks (stability, gate
calibration, seeds): the Trainer's own model, recipe and BatchNorm
recalibration, and the pipeline's own gate code, without the DAG's fixed cost.

Images are decoded and resized once with Transform's decode_and_resize and
kept in memory; a subset keeps each <split>/<class> folder's share.

Each trained model is scored after every epoch twice on the same weights:
with Keras's moving averages ("raw": what the pipeline exported before) and
with recalibrated BatchNorm statistics ("precise"). Training itself is the
same either way — batches in training mode never read the moving statistics —
so the raw statistics are put back after each precise score.
"""
import os
import time

import numpy as np
import tensorflow as tf
from scipy import stats as scipy_stats

from common import DEFAULT_DATA, image_files

import tasks
from gate import costs, stats, sweep
from pipeline.config import PipelineConfig, trainer_settings
from trainer import recipe, training
from trainer.batchnorm import Recalibrator, batchnorm_layers
from trainer.keras_lib import keras
from trainer.preprocessing import decode_and_resize

CALIBRATION = PipelineConfig().train.bn_recalibration


def load_split(data, split, size, per_class):
  """(uint8 images [N, size, size, 3], int labels [N], class names)."""
  files = [f for f in image_files(data) if f.split("/")[0] == split]
  classes = sorted({f.split("/")[1] for f in files})
  chosen = []
  for label in classes:
    members = [f for f in files if f.split("/")[1] == label]
    chosen += members[:per_class] if per_class else members
  decode = tf.function(lambda b: decode_and_resize(b, size))
  images = np.stack([decode(tf.io.read_file(os.path.join(data, f))).numpy()
                     for f in chosen])
  labels = np.array([classes.index(f.split("/")[1]) for f in chosen])
  return images, labels, classes


# The benchmarks' base recipe: the pipeline's defaults (Adam 1e-3, label
# smoothing 0.1, flip augmentation) with a constant learning rate.
BASE = {"schedule": "constant", "warmup_epochs": 0}
# name -> changes to the base recipe
RECIPES = {
    "constant": {},
    "cosine": {"schedule": "cosine", "warmup_epochs": 1},
    # The paper's: SGD momentum 0.9, x0.94 every 2 epochs, smoothing 0.1.
    "step": {"optimizer": "sgd", "schedule": "step", "learning_rate": 0.05},
    "cosine_ema": {"schedule": "cosine", "warmup_epochs": 1, "ema": 0.9},
}


def add_harness_args(parser):
  """Data subset, model and recipe flags shared by the evidence benchmarks."""
  parser.add_argument("--data", default=DEFAULT_DATA)
  parser.add_argument("--train-per-class", type=int, default=300)
  parser.add_argument("--eval-per-class", type=int, default=200)
  parser.add_argument("--backbone", default="tiny_cnn")
  parser.add_argument("--input-size", type=int, default=64)
  parser.add_argument("--target-size", type=int, default=32)
  parser.add_argument("--epochs", type=int, default=12)
  parser.add_argument("--batch-size", type=int, default=32)
  parser.add_argument("--learning-rate", type=float, default=1e-3,
                      help="(the step recipe sets its own)")


def load_data(args):
  """((train images, labels), (eval images, labels), class names)."""
  x, y, classes = load_split(args.data, "train", args.input_size,
                             args.train_per_class)
  ex, ey, _ = load_split(args.data, "validation", args.input_size,
                         args.eval_per_class)
  return (x, y), (ex, ey), classes


def recipe_config(args, resizer, seed, recipe, **overrides):
  """What a Trainer of one benchmark model is given (config.TrainerSettings):
  the pipeline's typed config with the benchmark's model flags, the recipe's
  changes and `overrides` (TrainConfig fields)."""
  config = PipelineConfig()
  config.model.backbone = args.backbone
  config.model.input_size, config.model.target_size = (args.input_size,
                                                       args.target_size)
  config.train.epochs, config.train.batch_size = args.epochs, args.batch_size
  config.train.learning_rate, config.train.seed = args.learning_rate, seed
  for name, value in {**BASE, **RECIPES[recipe], **overrides}.items():
    setattr(config.train, name, value)
  return trainer_settings(config.trainer_config(resizer))


class _DualScore(keras.callbacks.Callback):
  """Per epoch: eval top-1 with the moving averages, then with recalibrated
  statistics; the moving averages are restored so training goes on as it
  would without recalibration."""

  def __init__(self, calibration, eval_ds):
    super().__init__()
    self.calibration, self.eval_ds = calibration, eval_ds
    self.raw, self.precise = [], []
    self._recalibrate = None  # traced once, on the first epoch's model

  def on_epoch_end(self, epoch, logs=None):
    self.raw.append(_top1(self.model, self.eval_ds))
    saved = [(b.moving_mean.numpy(), b.moving_variance.numpy())
             for b in batchnorm_layers(self.model)]
    self._recalibrate = self._recalibrate or Recalibrator(self.model)
    self._recalibrate(self.calibration, CALIBRATION)
    self.precise.append(_top1(self.model, self.eval_ds))
    for b, (mean, var) in zip(batchnorm_layers(self.model), saved):
      b.moving_mean.assign(mean)
      b.moving_variance.assign(var)


def _top1(model, ds):
  return model.evaluate(ds, verbose=0, return_dict=True)["accuracy"]


def correct(model, images, labels, batch_size):
  probs = model.predict(images.astype("float32"), batch_size=batch_size,
                        verbose=0)
  return np.argmax(probs, -1) == labels


def train(settings, train_set, eval_set, num_classes, initial_classifier=None):
  """Trains one model (recipe_config's settings); returns its per-epoch
  scores and per-example correctness on the eval split, raw and
  recalibrated, and seconds."""
  (x, y), (ex, ey) = train_set, eval_set
  recipe_ = settings.train
  seed, batch = int(recipe_.seed), int(recipe_.batch_size)
  onehot = keras.utils.to_categorical
  train_ds = (tf.data.Dataset.from_tensor_slices((x, onehot(y, num_classes)))
              .shuffle(len(x), seed=seed).batch(batch)
              .map(lambda a, b: (training.augment(tf.cast(a, tf.float32),
                                                  recipe_.augment, seed), b))
              .prefetch(2))
  plain = (tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=seed)
           .batch(batch).map(lambda a: tf.cast(a, tf.float32)))
  eval_ds = tf.data.Dataset.from_tensor_slices(
      (ex.astype("float32"), onehot(ey, num_classes))).batch(batch)
  task = tasks.get(settings.task)
  spec = training.model_spec(settings.model, settings.resizer,
                             task.head(num_classes), seed)
  model = training.compile_model(spec, recipe_, task, settings.task_settings)
  if initial_classifier is not None:  # warm start: a trained backbone + head
    model.get_layer("classifier").set_weights(initial_classifier)
  scores = _DualScore(plain, eval_ds)
  start = time.perf_counter()
  model.fit(train_ds, epochs=int(recipe_.epochs), verbose=0, callbacks=[
      keras.callbacks.LearningRateScheduler(recipe.lr_schedule(recipe_)),
      scores])
  if float(recipe_.ema):
    scores.raw[-1] = _top1(model, eval_ds)  # the averaged weights
  seconds = time.perf_counter() - start
  raw = correct(model, ex, ey, batch)
  Recalibrator(model)(plain, CALIBRATION)
  precise = correct(model, ex, ey, batch)
  if float(recipe_.ema):
    scores.precise[-1] = float(precise.mean())
  return {"raw_curve": scores.raw, "precise_curve": scores.precise,
          "raw_correct": raw, "precise_correct": precise,
          "seconds": seconds, "model": model}


def sweep_decision(correct, flops, tolerance, confidence):
  """(the sweep gate's Decision, its entries) for models scored on the same
  eval images: correct maps name -> per-example correctness, flops name ->
  FLOPs per image; every model clears the floor."""
  field = costs.COSTS["flops"][0]
  entries = [sweep.Entry(name=n, score=float(np.mean(correct[n])),
                         cost={field: flops[n]}, clears_floor=True)
             for n in correct]

  def compare(a, b):
    return stats.paired_accuracy(*table(correct[a], correct[b]),
                                 confidence=confidence)
  return sweep.decide(entries, compare, tolerance=tolerance,
                      confidence=confidence, cost="flops"), entries


def t_interval(values, confidence=0.95):
  """(mean, half-width) of a t-interval over seeds; half-width None for one."""
  values = np.asarray(values, float)
  if len(values) < 2:
    return float(values.mean()), None
  half = (scipy_stats.t.ppf(1 - (1 - confidence) / 2, len(values) - 1)
          * values.std(ddof=1) / np.sqrt(len(values)))
  return float(values.mean()), float(half)


def table(candidate_correct, baseline_correct):
  """(n, candidate only, baseline only): what gate.tfma_metric counts."""
  c, b = np.asarray(candidate_correct), np.asarray(baseline_correct)
  return len(c), int(np.sum(c & ~b)), int(np.sum(b & ~c))


def tail_std(curve, k=5):
  return float(np.std(np.asarray(curve[-k:]) * 100))
