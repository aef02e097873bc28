"""TFX Trainer's module (`run_fn`), for every candidate.

The candidates' Trainers share it and differ only in custom_config's
candidate: its name, resizer and sizes (pipeline/candidates.py). It
rebuilds the typed settings from custom_config (pipeline/config.py, no
defaults here), asks the task (tasks/) for the head, label and loss, and
trains and exports with trainer/training.py and trainer/export.py, then
measures what the exported model costs to serve (trainer/cost.py).
"""
import dataclasses
import json
import math
import os
import tempfile
import time

import tensorflow as tf
import tensorflow_transform as tft

import tasks
from pipeline.config import trainer_settings
from trainer import cost, distribution, tensorboard, training
from trainer.export import export
from trainer.keras_lib import keras


def run_fn(fn_args):
  started = time.perf_counter()
  settings = trainer_settings(dict(fn_args.custom_config))
  task, model_cfg, train = (tasks.get(settings.task), settings.model,
                            settings.train)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  class_names = task.class_names(tft_output)
  spec = training.model_spec(model_cfg, settings.resizer,
                             task.head(len(class_names)), train.seed)
  strategy = distribution.choose_strategy(train.strategy)
  keras.mixed_precision.set_global_policy(
      distribution.precision_policy(strategy, train.precision))

  # batch_size is per replica, as in the seeds; the input pipeline batches
  # globally and the strategy splits each batch across replicas.
  batch_size = int(train.batch_size) * strategy.num_replicas_in_sync
  schema = tft_output.transformed_metadata.schema

  def dataset(files, training_, shuffle=None):
    return training.input_dataset(
        fn_args.data_accessor, files, schema, task, len(class_names),
        spec.input_size, train, batch_size, training_, shuffle,
        settings.stored_size)

  train_ds = dataset(fn_args.train_files, True)
  eval_ds = dataset(fn_args.eval_files, False)
  # Un-augmented, shuffled training batches: BatchNorm recalibration and the
  # inference-mode score on a training sample.
  train_plain_ds = dataset(fn_args.train_files, False, shuffle=True)
  with strategy.scope():
    model = training.compile_model(spec, train, task, settings.task_settings)

  chief = distribution.is_chief(strategy)
  backup = training.backup_dir(fn_args, dict(fn_args.custom_config))
  epochs_dir = os.path.join(backup, training.EPOCHS_DIR)
  # OUT/tensorboard/<run>/<model>, beside every other run's Trainers.
  log_dir = tensorboard.model_dir(
      settings.tensorboard_dir, tensorboard.current_run(fn_args.model_run_dir),
      settings.model_name)
  callbacks = [
      keras.callbacks.TensorBoard(log_dir=log_dir),
      training.EpochRecorder(epochs_dir, train.epochs, task.score,
                             write=chief),
      # Survives preemption: a rerun resumes from the last finished epoch.
      keras.callbacks.BackupAndRestore(backup),
  ]
  fit_started = time.perf_counter()
  # verbose=0: EpochRecorder logs one line per epoch instead.
  history = training.fit(model, train, train_ds, eval_ds, train_plain_ds,
                         callbacks, verbose=0)
  fit_ended = time.perf_counter()
  # Inference mode, as exported: the eval split and a training sample
  # (eval_<short> / train_sample_<short> of the task's score).
  final_eval = training.last_epoch_eval(history, train, task.score)
  if final_eval is None:
    final_eval = model.evaluate(eval_ds, verbose=0,
                                return_dict=True)[task.score]
  final = {
      f"eval_{task.short}": final_eval,
      f"train_sample_{task.short}": model.evaluate(
          train_plain_ds.take(math.ceil(training.TRAIN_SAMPLE / batch_size)),
          verbose=0, return_dict=True)[task.score]}
  scored = time.perf_counter()

  # Every worker must call save (it is collective); only the chief's copy lands.
  serving_dir = fn_args.serving_model_dir if chief else tempfile.mkdtemp()
  export(model, serving_dir, tft_output, class_names, spec.input_size, task,
         settings.task_settings, settings.max_pixels, settings.stored_size)
  saved = time.perf_counter()
  if chief:
    tensorboard.write_hparams(log_dir, settings.hparams(), final,
                              step=train.epochs)
    if spec.resizer == "learned":
      # Rebuilding this beats loading the whole Keras model for one figure.
      model.get_layer("learnable_resizer").save_weights(
          os.path.join(fn_args.model_run_dir, training.RESIZER_WEIGHTS))
    serving_cost = cost.measure(model, serving_dir, spec.input_size,
                                settings.stored_size)
    measured = time.perf_counter()
    info = {
        "candidate": settings.candidate, "stored_size": settings.stored_size,
        "cost": serving_cost,
        "resizer": spec.resizer, "backbone": spec.backbone, "task": task.name,
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
        "history": training.full_history(
            training.read_epoch_records(epochs_dir), history.epoch,
            history.history, train.epochs),
        # Epochs run by this process: fewer than `epochs` after a resume.
        "epochs_run": len(history.epoch),
        "first_epoch": int(history.epoch[0]) if history.epoch else None,
        "precision": keras.mixed_precision.global_policy().name,
        "strategy": type(strategy).__name__,
        "replicas": int(strategy.num_replicas_in_sync),
        **{k: float(v) for k, v in final.items()},
        "bn_recalibration": int(train.bn_recalibration),
        # The training recipe as given (pipeline/config.py TrainConfig).
        "recipe": dataclasses.asdict(train),
        # Where TensorBoard's logs of this Trainer are.
        "tensorboard": log_dir,
        # Where the Trainer's time went (bench/overhead.py prints these).
        "seconds": {"setup": round(fit_started - started, 2),
                    "fit": round(fit_ended - fit_started, 2),
                    "score": round(scored - fit_ended, 2),
                    "export": round(saved - scored, 2),
                    "cost": round(measured - saved, 2)},
    }
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(
        os.path.join(fn_args.model_run_dir, training.MODEL_INFO), "w") as f:
      json.dump(info, f, indent=2)
