"""Training, whatever the task: the input pipeline, the fit with its schedule
and BatchNorm recalibration, and the records a resumed Trainer keeps.

The TFX Trainer's entry point (pipeline/trainer_module.py run_fn) wires these
to the typed config and the task (tasks/): what differs between tasks (the
label, the head, the loss) comes in as the task object.
"""
import hashlib
import json
import logging
import os
import time

import tensorflow as tf
from tfx_bsl.public import tfxio

from trainer import features, recipe
from trainer.batchnorm import PreciseBatchNormEvaluation, Recalibrator
from trainer.keras_lib import keras
from trainer.model import ModelSpec, build_model
from trainer.preprocessing import model_pixels

MODEL_INFO = "model_info.json"  # written to the Trainer's model_run dir
TRAIN_SAMPLE = 512  # training images scored in inference mode for the report
EPOCHS_DIR = "epochs"  # in the backup dir: one JSON of logs per finished epoch
# In the model_run dir: the learned resizer alone, a TF checkpoint the report
# draws with, and its settings in MODEL_INFO.
RESIZER_WEIGHTS = "resizer/weights"
# One INFO line per epoch; `resizer-pipeline run` shows it under the Trainer's
# name (pipeline/progress.py).
progress_log = logging.getLogger("resizer.progress")


def augment(pixels, mode, seed):
  """Training-time augmentation of [B, S, S, 3] float pixels."""
  if mode in ("flip", "flip_crop"):
    pixels = tf.image.random_flip_left_right(pixels, seed=seed)
  if mode == "flip_crop":  # pad by 1/8 with edge pixels, crop back at random
    size = pixels.shape[1]
    pad = max(1, size // 8)
    padded = tf.pad(pixels, [[0, 0], [pad, pad], [pad, pad], [0, 0]],
                    mode="SYMMETRIC")
    # Per image: random_crop on the whole batch would shift every image alike.
    pixels = tf.map_fn(
        lambda image: tf.image.random_crop(image, [size, size, 3], seed=seed),
        padded)
  return pixels


def shuffle_buffer_records(train, input_size):
  """Records in a shuffle buffer of train.shuffle_buffer_mb MiB: a
  transformed example is input_size^2 x 3 raw bytes."""
  image_bytes = int(input_size) ** 2 * 3
  buffer_bytes = int(train.shuffle_buffer_mb) * 2 ** 20
  return max(1, buffer_bytes // image_bytes)


def input_dataset(data_accessor, file_pattern, schema, task, num_classes,
                  input_size, train, batch_size, training, shuffle=None,
                  stored_size=None):
  """Batches of (float pixels, the task's label); training adds
  augmentation and shuffling (shuffle=True alone: shuffled, not augmented).
  stored_size: the side Transform stored the images at (default: the
  model's input)."""
  stored_size = input_size if stored_size is None else stored_size
  options = tfxio.TensorFlowDatasetOptions(
      batch_size=batch_size, label_key=task.label_key, num_epochs=1,
      shuffle=training if shuffle is None else shuffle,
      shuffle_buffer_size=shuffle_buffer_records(train, stored_size),
      shuffle_seed=int(train.seed))
  ds = data_accessor.tf_dataset_factory(file_pattern, options, schema)
  mode = train.augment if training else "none"

  def prepare(feats, label):
    pixels = model_pixels(feats[features.PIXELS], stored_size, input_size)
    pixels = augment(pixels, mode, int(train.seed))
    return pixels, task.prepare_label(label, num_classes)

  return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
      tf.data.AUTOTUNE)


def backup_dir(fn_args, cfg):
  """Where BackupAndRestore keeps its checkpoint between runs.

  A rerun after a kill is a new Trainer execution with new output folders, so
  the backup is keyed on what is trained (inputs and config) instead.
  """
  key = hashlib.sha256(json.dumps(
      [fn_args.transform_output, fn_args.train_files, cfg],
      sort_keys=True, default=str).encode()).hexdigest()[:16]
  trainer_root = os.path.dirname(os.path.dirname(fn_args.model_run_dir))
  return os.path.join(trainer_root, "backup", key)


class EpochRecorder(keras.callbacks.Callback):
  """Keeps each finished epoch's logs beside the BackupAndRestore checkpoint
  and logs a progress line.

  A resumed fit's History starts at the epoch it resumed from; these files
  keep the killed run's epochs (read back by `full_history`). One file per
  epoch, not an appended CSV: GCS has no append. Put it before
  BackupAndRestore: an epoch is recorded before it is checkpointed, so a kill
  between the two only records an epoch that the resumed run repeats.
  """

  def __init__(self, folder, epochs, score, write=True):
    super().__init__()
    self.folder, self.epochs, self.write = folder, int(epochs), write
    self.score = score
    self._started = None

  def on_epoch_begin(self, epoch, logs=None):
    self._started = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    logs = {k: float(v) for k, v in (logs or {}).items()}
    if self.write:
      tf.io.gfile.makedirs(self.folder)
      with tf.io.gfile.GFile(os.path.join(self.folder, f"{epoch:05d}.json"),
                             "w") as f:
        json.dump({"epoch": int(epoch), "logs": logs}, f)
    progress_log.info("%s", epoch_line(
        epoch, self.epochs, logs, time.perf_counter() - (self._started or 0),
        self.score))


def epoch_line(epoch, epochs, logs, seconds, score):
  """'epoch 4/10 loss 0.610 accuracy 0.712 val_accuracy 0.680 — 3.2 s':
  the loss and the task's score (Keras's name), train and eval."""
  shown = [f"{k} {logs[k]:.3f}" for k in
           ("loss", score, "val_loss", f"val_{score}") if k in logs]
  return f"epoch {epoch + 1}/{epochs} " + " ".join(shown) + \
      f" — {seconds:.1f} s"


def read_epoch_records(folder):
  """{epoch: logs} recorded by EpochRecorder (empty when there are none)."""
  records = {}
  if not tf.io.gfile.isdir(folder):
    return records
  for name in tf.io.gfile.listdir(folder):
    if name.endswith(".json"):
      with tf.io.gfile.GFile(os.path.join(folder, name)) as f:
        record = json.load(f)
      records[int(record["epoch"])] = record["logs"]
  return records


def full_history(records, epochs_run, history, epochs):
  """{metric: [value per epoch]} from epoch 0 on, across a resume.

  `epochs_run`/`history`: this fit's History.epoch and .history, which start
  where the fit resumed (nothing when it resumed after its last epoch). The
  epochs before that come from the killed run's `records`; records from that
  epoch on are ignored: this run redid them, or they are left from an older
  run with the same backup key.
  """
  resumed_at = epochs_run[0] if epochs_run else int(epochs)
  earlier = [records[e] for e in range(resumed_at) if e in records]
  if len(earlier) != resumed_at:
    missing = [e + 1 for e in range(resumed_at) if e not in records]
    logging.warning("training history lacks epochs %s (not recorded before "
                    "the resume)", missing)
  keys = list(history) or sorted({k for r in earlier for k in r})
  # None where an earlier epoch lacks a metric keeps every list aligned.
  return {k: [r.get(k) for r in earlier] +
          [float(v) for v in history.get(k, [])] for k in keys}


def model_spec(model, resizer, head, seed):
  """The ModelSpec of a ModelConfig (pipeline/config.py) for `resizer`, with
  the task's head."""
  return ModelSpec(
      head=head, input_size=int(model.input_size),
      target_size=int(model.target_size), backbone=model.backbone,
      resizer=resizer, filters=int(model.filters),
      res_blocks=int(model.res_blocks), interpolation=model.interpolation,
      weights=model.weights or None, seed=int(seed))


def compile_model(spec, train, task, task_settings):
  """The model of `spec`, compiled with the optimizer of `train` and the
  task's loss and metrics."""
  model = build_model(spec)
  task.compile(model, recipe.optimizer(train), task_settings)
  return model


def fit(model, train, train_ds, eval_ds, calibration_ds, callbacks=(),
        verbose=2):
  """Trains with the recipe of a TrainConfig; with bn_recalibration > 0,
  every epoch ends by recomputing BatchNorm statistics from that many
  training images and evaluating with them, and so does the model that is
  returned."""
  examples = int(train.bn_recalibration)
  schedule = keras.callbacks.LearningRateScheduler(recipe.lr_schedule(train))
  if not examples:  # Keras's moving averages, scored by fit's validation
    return model.fit(train_ds, epochs=int(train.epochs),
                     validation_data=eval_ds, verbose=verbose,
                     callbacks=[schedule, *callbacks])
  # First: the val_* values it adds must be in the logs other callbacks see.
  precise = PreciseBatchNormEvaluation(calibration_ds, examples, eval_ds)
  history = model.fit(train_ds, epochs=int(train.epochs), verbose=verbose,
                      callbacks=[precise, schedule, *callbacks])
  if float(train.ema):  # fit's end swapped in the averaged weights
    Recalibrator(model)(calibration_ds, examples)
  return history


def last_epoch_eval(history, train, score):
  """The last epoch's eval score when it scored the model as returned by
  fit (recalibrated, or Keras's moving averages), so the eval split is not
  run through the model once more; None when it did not: EMA swaps the
  averaged weights in after it, or this process ran no epoch (a resume of a
  finished run)."""
  values = history.history.get(f"val_{score}")
  if float(train.ema) or not history.epoch or not values:
    return None
  return float(values[-1])
