"""TFX Trainer entry point (`run_fn`) for both resizer variants.

The two Trainers share this module and differ only in custom_config["resizer"].
"""
import hashlib
import json
import logging
import math
import os
import tempfile
import time

import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from trainer import distribution, features, image_header, recipe
from trainer.batchnorm import PreciseBatchNormEvaluation, Recalibrator
from trainer.keras_lib import keras
from trainer.model import ModelSpec, build_model
from trainer.preprocessing import bytes_to_pixels, inverse_target
from trainer.preprocessing import class_names as vocabulary

MODEL_INFO = "model_info.json"  # written to the Trainer's model_run dir
TRAIN_SAMPLE = 512  # training images scored in inference mode for the report
EPOCHS_DIR = "epochs"  # in the backup dir: one JSON of logs per finished epoch
# In the model_run dir: the learned resizer alone, a TF checkpoint of 12k
# weights the report draws with, and its settings in MODEL_INFO.
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


def is_regression(cfg):
  return cfg.get("task", "classification") == "regression"


def shuffle_buffer_records(cfg):
  """Records in a shuffle buffer of cfg["shuffle_buffer_mb"] MiB.

  A transformed example is input_size^2 x 3 raw bytes (about 270 KB at 300
  px): tfx_bsl's default buffer of 10,000 records would hold ~2.7 GB.
  """
  image_bytes = int(cfg["input_size"]) ** 2 * 3
  buffer_bytes = int(cfg.get("shuffle_buffer_mb", 256)) * 2 ** 20
  return max(1, buffer_bytes // image_bytes)


def input_dataset(fn_args, file_pattern, schema, num_classes, cfg, batch_size,
                  training, shuffle=None):
  """Batches of (float pixels, one-hot labels, or [B, 1] normalised targets
  for regression); training adds augmentation and shuffling (shuffle=True
  alone: shuffled, not augmented)."""
  regression = is_regression(cfg)
  options = tfxio.TensorFlowDatasetOptions(
      batch_size=batch_size,
      label_key=features.TARGET_NORM if regression else features.LABEL_ID,
      num_epochs=1, shuffle=training if shuffle is None else shuffle,
      shuffle_buffer_size=shuffle_buffer_records(cfg),
      shuffle_seed=int(cfg["seed"]))
  ds = fn_args.data_accessor.tf_dataset_factory(file_pattern, options, schema)
  size = int(cfg["input_size"])
  mode = cfg.get("augment", "flip") if training else "none"

  def prepare(feats, label):
    pixels = tf.cast(bytes_to_pixels(feats[features.PIXELS], size), tf.float32)
    pixels = augment(pixels, mode, int(cfg["seed"]))
    if regression:
      return pixels, tf.reshape(tf.cast(label, tf.float32), [-1, 1])
    return pixels, tf.one_hot(tf.reshape(label, [-1]), num_classes)

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

  def __init__(self, folder, epochs, write=True):
    super().__init__()
    self.folder, self.epochs, self.write = folder, int(epochs), write
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
        epoch, self.epochs, logs, time.perf_counter() - (self._started or 0)))


def epoch_line(epoch, epochs, logs, seconds):
  """'epoch 4/10 loss 0.610 accuracy 0.712 val_accuracy 0.680 — 3.2 s'."""
  shown = [f"{k} {logs[k]:.3f}" for k in
           ("loss", "accuracy", "rmse", "val_loss", "val_accuracy", "val_rmse")
           if k in logs]
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


def model_spec_from_config(cfg, num_classes):
  return ModelSpec(
      num_classes=num_classes, input_size=int(cfg["input_size"]),
      target_size=int(cfg["target_size"]), backbone=cfg["backbone"],
      resizer=cfg["resizer"], filters=int(cfg.get("filters", 16)),
      res_blocks=int(cfg.get("res_blocks", 1)),
      interpolation=cfg.get("interpolation", "bilinear"),
      weights=cfg.get("weights") or None, seed=int(cfg["seed"]),
      task=cfg.get("task", "classification"))


def max_pixels(cfg):
  """The most pixels the served model decodes an image to: the pipeline's
  --max-pixels (custom_config["max_pixels"])."""
  value = cfg.get("max_pixels")
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ValueError(f"custom_config max_pixels={value!r}: give the positive "
                     "pixel limit of the pipeline's --max-pixels "
                     "(PipelineConfig.trainer_config sets it)")
  return value


def _serving_signatures(model, tft_output, class_names, size, cfg):
  """serving_default (tf.Examples), transform_features (for TFMA) and
  serving_images (raw image bytes): all through the same Transform graph.
  Classification answers probabilities, class_names and top_class;
  regression answers `prediction` in the target's own units.

  Each image's header is read first (trainer/image_header.py): one that
  can't be read, or that would decode to more than max_pixels pixels, is
  never decoded. A tiny blank image takes its place so the rest of the batch
  is answered, its `error` output says why (the others' is ""), and its
  answers are NaN (top_class "")."""
  model.tft_layer = tft_output.transform_features_layer()
  raw_spec = tft_output.raw_feature_spec()
  image_spec = {features.IMAGE: raw_spec[features.IMAGE]}
  regression = is_regression(cfg)
  label = features.TARGET if regression else features.LABEL
  labeled_spec = {k: raw_spec[k] for k in (features.IMAGE, label)}
  names = tf.constant(class_names or [""])
  target_transform = cfg.get("target_transform", "none")
  limit = max_pixels(cfg)
  # Recorded on the model for clients (pipeline/predict.py checks files
  # against it before sending them).
  model.max_pixels = tf.function(lambda: tf.constant(limit, tf.int64),
                                 input_signature=[])
  placeholder = tf.io.encode_png(tf.zeros([1, 1, 3], tf.uint8)).numpy()

  # The model's forward pass is traced once and both predicting signatures
  # call that one function: inlining `model(...)` into each would trace the
  # whole network twice and store two copies of its graph in the SavedModel.
  # autograph=False: nothing here branches on a tensor, and converting every
  # Keras layer's call made up most of the export's time (bench/RESULTS.md).
  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None, size, size, 3], tf.float32, "pixels")])
  def forward(pixels):
    return model(pixels, training=False)

  def guarded(raw):
    """raw features with every refused image replaced, and the errors."""
    images = raw[features.IMAGE]
    encoded = tf.reshape(images, [-1])
    error = image_header.refusals(image_header.read(encoded), limit)
    safe = tf.where(tf.equal(error, ""), encoded, placeholder)
    return {**raw, features.IMAGE: tf.reshape(safe, tf.shape(images))}, error

  def predict(raw):
    raw, error = guarded(raw)
    transformed = model.tft_layer(raw)
    refused = tf.not_equal(error, "")

    def nan_if_refused(values):  # values: [B] or [B, classes]
      mask = tf.reshape(refused, [-1] + [1] * (values.shape.rank - 1))
      return tf.where(mask, tf.constant(float("nan"), values.dtype), values)

    pixels = tf.cast(bytes_to_pixels(transformed[features.PIXELS], size),
                     tf.float32)
    outputs = forward(pixels)
    if regression:  # back from the z-score, then from log1p if it was used
      mean = transformed[features.TARGET_MEAN]
      value = outputs[:, 0] * transformed[features.TARGET_STD] + mean
      # training_mean: the constant predictor the floor is measured against
      # (gate/tfma_metric.py), in the same units.
      return {"prediction": nan_if_refused(
                  inverse_target(value, target_transform)),
              "training_mean": inverse_target(mean, target_transform),
              "error": error}
    batch = tf.shape(outputs)[0]
    return {
        "probabilities": nan_if_refused(outputs),
        "class_names": tf.tile(names[tf.newaxis], [batch, 1]),
        "top_class": tf.where(
            refused, "", tf.gather(names, tf.argmax(outputs, axis=-1))),
        "error": error,
    }

  @tf.function(autograph=False,
               input_signature=[tf.TensorSpec([None], tf.string, "examples")])
  def serve_examples(examples):
    return predict(tf.io.parse_example(examples, image_spec))

  @tf.function(autograph=False,
               input_signature=[tf.TensorSpec([None], tf.string, "examples")])
  def transform_features(examples):
    raw, error = guarded(tf.io.parse_example(examples, labeled_spec))
    return {**model.tft_layer(raw), "error": error}

  @tf.function(autograph=False,
               input_signature=[tf.TensorSpec([None], tf.string, "image_bytes")])
  def serve_images(image_bytes):
    return predict({features.IMAGE: image_bytes[:, tf.newaxis]})

  return {"serving_default": serve_examples,
          "transform_features": transform_features,
          "serving_images": serve_images}


def export(model, serving_dir, tft_output, class_names, spec, cfg):
  """Saves the model with its serving signatures: what the Pusher pushes."""
  signatures = _serving_signatures(model, tft_output, class_names,
                                   spec.input_size, cfg)
  # save_traces=False: Keras would otherwise trace every layer's call for its
  # own loader, which slows the save and every load (TFMA, ResultsReport)
  # several times over. The signatures are what serving and TFMA run;
  # keras.models.load_model rebuilds layers from their configs (custom ones
  # are registered).
  model.save(serving_dir, save_format="tf", signatures=signatures,
             save_traces=False)


def score_name(cfg):
  """The per-epoch score in the history: top-1, or RMSE of the normalised
  target (in standard deviations of the training targets)."""
  return "rmse" if is_regression(cfg) else "accuracy"


def compile_model(spec, cfg):
  """The model of `spec`, compiled with the recipe of `cfg`."""
  model = build_model(spec)
  if spec.task == "regression":
    model.compile(optimizer=recipe.optimizer(cfg), loss=recipe.loss(cfg),
                  metrics=[keras.metrics.RootMeanSquaredError(name="rmse"),
                           keras.metrics.MeanAbsoluteError(name="mae")])
    return model
  model.compile(
      optimizer=recipe.optimizer(cfg),
      loss=keras.losses.CategoricalCrossentropy(
          label_smoothing=float(cfg.get("label_smoothing", 0.1))),
      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
  return model


def fit(model, cfg, train_ds, eval_ds, calibration_ds, callbacks=(),
        verbose=2):
  """Trains with the recipe's schedule; with bn_recalibration > 0, every
  epoch ends by recomputing BatchNorm statistics from that many training
  images and evaluating with them, and so does the model that is returned."""
  examples = int(cfg.get("bn_recalibration", 0))
  schedule = keras.callbacks.LearningRateScheduler(recipe.lr_schedule(cfg))
  if not examples:  # Keras's moving averages, scored by fit's validation
    return model.fit(train_ds, epochs=int(cfg["epochs"]),
                     validation_data=eval_ds, verbose=verbose,
                     callbacks=[schedule, *callbacks])
  # First: the val_* values it adds must be in the logs other callbacks see.
  precise = PreciseBatchNormEvaluation(calibration_ds, examples, eval_ds)
  history = model.fit(train_ds, epochs=int(cfg["epochs"]), verbose=verbose,
                      callbacks=[precise, schedule, *callbacks])
  if float(cfg.get("ema", 0)):  # fit's end swapped in the averaged weights
    Recalibrator(model)(calibration_ds, examples)
  return history


def last_epoch_eval(history, cfg, score):
  """The last epoch's eval score when it scored the model as returned by
  fit (recalibrated, or Keras's moving averages), so the eval split is not
  run through the model once more; None when it did not: EMA swaps the
  averaged weights in after it, or this process ran no epoch (a resume of a
  finished run)."""
  values = history.history.get(f"val_{score}")
  if float(cfg.get("ema", 0)) or not history.epoch or not values:
    return None
  return float(values[-1])


def run_fn(fn_args):
  started = time.perf_counter()
  cfg = dict(fn_args.custom_config)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  class_names = [] if is_regression(cfg) else vocabulary(tft_output)
  spec = model_spec_from_config(cfg, len(class_names) or 1)
  strategy = distribution.choose_strategy(cfg.get("strategy", "auto"))
  keras.mixed_precision.set_global_policy(
      distribution.precision_policy(strategy, cfg.get("precision", "auto")))

  # batch_size is per replica, as in the seeds; the input pipeline batches
  # globally and the strategy splits each batch across replicas.
  batch_size = int(cfg["batch_size"]) * strategy.num_replicas_in_sync
  schema = tft_output.transformed_metadata.schema
  train_ds = input_dataset(fn_args, fn_args.train_files, schema, len(class_names),
                           cfg, batch_size, training=True)
  eval_ds = input_dataset(fn_args, fn_args.eval_files, schema, len(class_names),
                          cfg, batch_size, training=False)
  # Un-augmented, shuffled training batches: BatchNorm recalibration and the
  # inference-mode score on a training sample.
  train_plain_ds = input_dataset(fn_args, fn_args.train_files, schema,
                                 len(class_names), cfg, batch_size,
                                 training=False, shuffle=True)
  with strategy.scope():
    model = compile_model(spec, cfg)

  chief = distribution.is_chief(strategy)
  backup = backup_dir(fn_args, cfg)
  epochs_dir = os.path.join(backup, EPOCHS_DIR)
  callbacks = [
      keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
      EpochRecorder(epochs_dir, cfg["epochs"], write=chief),
      # Survives preemption: a rerun resumes from the last finished epoch.
      keras.callbacks.BackupAndRestore(backup),
  ]
  fit_started = time.perf_counter()
  # verbose=0: EpochRecorder logs one line per epoch instead.
  history = fit(model, cfg, train_ds, eval_ds, train_plain_ds, callbacks,
                verbose=0)
  fit_ended = time.perf_counter()
  # Inference mode, as exported: the eval split and a training sample
  # (eval_top1 / train_sample_top1, or eval_rmse / train_sample_rmse).
  score, short = score_name(cfg), ("rmse" if is_regression(cfg) else "top1")
  final_eval = last_epoch_eval(history, cfg, score)
  if final_eval is None:
    final_eval = model.evaluate(eval_ds, verbose=0, return_dict=True)[score]
  final = {
      f"eval_{short}": final_eval,
      f"train_sample_{short}": model.evaluate(
          train_plain_ds.take(math.ceil(TRAIN_SAMPLE / batch_size)),
          verbose=0, return_dict=True)[score]}
  scored = time.perf_counter()

  # Every worker must call save (it is collective); only the chief's copy lands.
  serving_dir = fn_args.serving_model_dir if chief else tempfile.mkdtemp()
  export(model, serving_dir, tft_output, class_names, spec, cfg)
  saved = time.perf_counter()
  if chief:
    if spec.resizer == "learned":
      # Rebuilding this beats loading the whole Keras model for one figure.
      model.get_layer("learnable_resizer").save_weights(
          os.path.join(fn_args.model_run_dir, RESIZER_WEIGHTS))
    info = {
        "resizer": spec.resizer, "backbone": spec.backbone, "task": spec.task,
        "resizer_config": {"filters": spec.filters,
                           "num_res_blocks": spec.res_blocks,
                           "interpolation": spec.interpolation},
        "input_size": spec.input_size, "target_size": spec.target_size,
        "params": int(model.count_params()),
        "trainable_params": int(sum(int(tf.size(w)) for w in
                                    model.trainable_weights)),
        "class_names": class_names,
        # Every epoch from the first, including those of a killed run that
        # this one resumed (history.history alone starts at the resume).
        "history": full_history(read_epoch_records(epochs_dir), history.epoch,
                                history.history, cfg["epochs"]),
        # Epochs run by this process: fewer than `epochs` after a resume.
        "epochs_run": len(history.epoch),
        "first_epoch": int(history.epoch[0]) if history.epoch else None,
        "precision": keras.mixed_precision.global_policy().name,
        "strategy": type(strategy).__name__,
        "replicas": int(strategy.num_replicas_in_sync),
        **{k: float(v) for k, v in final.items()},
        "bn_recalibration": int(cfg.get("bn_recalibration", 0)),
        # Where the Trainer's time went (bench/overhead.py prints these).
        "seconds": {"setup": round(fit_started - started, 2),
                    "fit": round(fit_ended - fit_started, 2),
                    "score": round(scored - fit_ended, 2),
                    "export": round(saved - scored, 2)},
    }
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, MODEL_INFO),
                           "w") as f:
      json.dump(info, f, indent=2)
