"""Training recipe pieces: augmentation, schedule, backup location, the
history across a resume."""
import dataclasses
import logging
import os
import re
import types

import numpy as np
import pytest
import tensorflow as tf

import tasks
from pipeline.config import PipelineConfig, TrainConfig, trainer_settings
from trainer.keras_lib import keras
from trainer.recipe import lr_schedule, optimizer
from trainer.training import (EPOCHS_DIR, EpochRecorder, augment, backup_dir,
                              epoch_line, full_history, input_dataset,
                              last_epoch_eval, read_epoch_records,
                              shuffle_buffer_records)


def test_augmentation_changes_training_images_only():
  images = tf.constant(np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)),
                       tf.float32)
  np.testing.assert_array_equal(augment(images, "none", 1).numpy(), images)
  for mode in ("flip", "flip_crop"):
    out = augment(images, mode, 1)
    assert out.shape == images.shape
  crops = [augment(images, "flip_crop", s).numpy() for s in range(4)]
  assert any(not np.array_equal(c, images.numpy()) for c in crops)


def test_cosine_schedule_decays_from_the_base_rate():
  cfg = TrainConfig(learning_rate=0.1, epochs=10, schedule="cosine",
                    warmup_epochs=0)
  lr = lr_schedule(cfg)
  assert lr(0) == pytest.approx(0.1)
  assert lr(5) == pytest.approx(0.05)
  assert lr(9) < 0.01
  assert lr_schedule(dataclasses.replace(cfg, schedule="constant"))(9) == 0.1


def test_backup_dir_is_keyed_on_inputs_and_config_not_on_the_execution():
  def args(run_id, train_files):
    return types.SimpleNamespace(
        transform_output="/p/Transform/transform_graph/5",
        train_files=train_files,
        model_run_dir=f"/p/Trainer_learned/model_run/{run_id}")
  cfg = {"epochs": 3, "resizer": "learned"}
  first = backup_dir(args(7, ["/p/t/Split-train/*"]), cfg)
  assert first == backup_dir(args(12, ["/p/t/Split-train/*"]), cfg)
  assert first.startswith("/p/Trainer_learned/backup/")
  assert first != backup_dir(args(7, ["/p/other/*"]), cfg)
  assert first != backup_dir(args(7, ["/p/t/Split-train/*"]),
                             {**cfg, "epochs": 4})


def test_cosine_warm_up_rises_linearly_then_decays_from_the_base_rate():
  cfg = TrainConfig(learning_rate=0.1, epochs=10, schedule="cosine",
                    warmup_epochs=3)
  lr = lr_schedule(cfg)
  assert [lr(e) for e in range(3)] == pytest.approx([0.025, 0.05, 0.075])
  assert lr(3) == pytest.approx(0.1)  # the decay starts at the base rate
  assert lr(3) > lr(6) > lr(9) > 0
  # More warm-up than epochs: the last epoch still trains.
  assert lr_schedule(dataclasses.replace(cfg, epochs=1))(0) > 0


def test_step_schedule_is_the_papers():
  lr = lr_schedule(TrainConfig(learning_rate=0.1, epochs=10, schedule="step"))
  assert [lr(e) for e in range(5)] == pytest.approx(
      [0.1, 0.1, 0.094, 0.094, 0.1 * 0.94 ** 2])


def test_unknown_recipe_choices_are_refused_and_ema_is_keras_own():
  with pytest.raises(ValueError, match="schedule='linear'"):
    lr_schedule(TrainConfig(epochs=2, schedule="linear"))
  with pytest.raises(ValueError, match="optimizer='rmsprop'"):
    optimizer(TrainConfig(optimizer="rmsprop"))
  averaged = optimizer(TrainConfig(optimizer="sgd", ema=0.9,
                                   learning_rate=0.1))
  assert averaged.use_ema and averaged.ema_momentum == 0.9
  assert not optimizer(TrainConfig(optimizer="adam")).use_ema


def test_crops_are_drawn_per_image():
  # Identical, mirror-symmetric images (so flips change nothing): a
  # batch-wide crop would leave them identical.
  image = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3))
  image = (image + image[:, :, ::-1]) / 2
  batch = tf.constant(np.repeat(image, 8, axis=0), tf.float32)
  out = augment(batch, "flip_crop", 3).numpy()
  assert out.shape == (8, 32, 32, 3)
  assert len({o.tobytes() for o in out}) > 1


def test_shuffle_buffer_is_sized_in_memory_not_records(tmp_path):
  """tfx_bsl's default buffer is 10,000 records: ~2.7 GB of 300 px images per
  Trainer. The buffer holds --shuffle-buffer-mb of transformed images."""
  from pipeline import cli  # pylint: disable=import-outside-toplevel

  data = tmp_path / "data"
  for name in ("a", "b"):
    (data / name).mkdir(parents=True)
  args = cli.build_parser().parse_args(
      ["run", "--data", str(data), "--output", str(tmp_path / "out"),
       "--shuffle-buffer-mb", "64"])
  cfg = cli.config_from_args(args).trainer_config("learned")
  assert cfg["shuffle_buffer_mb"] == 64  # CLI -> config -> custom_config
  settings = trainer_settings(cfg)  # what the Trainer rebuilds
  assert shuffle_buffer_records(settings.train, settings.model.input_size) \
      == 64 * 2 ** 20 // (300 * 300 * 3) == 248
  default = trainer_settings(PipelineConfig().trainer_config("learned"))
  assert default.train.shuffle_buffer_mb == 256
  # 256 MiB of 300 px images (300 x 300 x 3 bytes each)
  assert shuffle_buffer_records(default.train, 300) == 994
  assert shuffle_buffer_records(default.train, 64) == 21845
  assert shuffle_buffer_records(TrainConfig(shuffle_buffer_mb=1), 10_000) == 1

  requested = []

  class Accessor:  # what input_dataset asks of the Trainer's data accessor
    def tf_dataset_factory(self, file_pattern, options, schema):
      requested.append(options)
      return tf.data.Dataset.from_tensors(
          ({"pixels": tf.constant([b"\0" * 12])}, tf.constant([[0]])))

  classification = tasks.get("classification")
  for training in (True, False):
    ds = input_dataset(Accessor(), ["f"], None, classification, 2, 2,
                       default.train, 1, training=training)
    pixels, labels = next(iter(ds))
    assert pixels.shape == (1, 2, 2, 3) and labels.shape == (1, 2)
  assert [o.shuffle for o in requested] == [True, False]
  assert {o.shuffle_buffer_size for o in requested} == {
      256 * 2 ** 20 // 12}

class _Killed(Exception):
  pass


class _KillAfterCheckpoint(keras.callbacks.Callback):
  """Raises at the end of `epoch`, after the callbacks before it (the
  recorder, BackupAndRestore) have run: a preemption right after a checkpoint."""

  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch

  def on_epoch_end(self, epoch, logs=None):
    if epoch == self.epoch:
      raise _Killed()


def _tiny_fit(backup, epochs, extra=(), seed=0):
  keras.utils.set_random_seed(seed)
  x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
  y = (x[:, 0] > 0).astype("float32")
  model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
  model.compile("sgd", "binary_crossentropy", metrics=["accuracy"])
  callbacks = [EpochRecorder(os.path.join(backup, EPOCHS_DIR), epochs,
                             "accuracy"),
               keras.callbacks.BackupAndRestore(backup), *extra]
  return model.fit(x, y, epochs=epochs, batch_size=8, verbose=0,
                   validation_data=(x, y), callbacks=callbacks)


def test_history_covers_the_killed_runs_epochs_after_a_resume(tmp_path,
                                                               caplog):
  backup = str(tmp_path / "backup")
  with pytest.raises(_Killed):
    _tiny_fit(backup, 5, [_KillAfterCheckpoint(2)])
  killed = read_epoch_records(os.path.join(backup, EPOCHS_DIR))
  assert sorted(killed) == [0, 1, 2]
  with caplog.at_level(logging.INFO, logger="resizer.progress"):
    resumed = _tiny_fit(backup, 5)
  assert resumed.epoch == [3, 4]  # BackupAndRestore resumed after epoch 3
  history = full_history(read_epoch_records(os.path.join(backup, EPOCHS_DIR)),
                         resumed.epoch, resumed.history, 5)
  assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
  for key, values in history.items():
    assert len(values) == 5, key
    assert values[:3] == [killed[e][key] for e in range(3)]
    assert values[3:] == pytest.approx(resumed.history[key])
  # One progress line per epoch of the resumed run, numbered from 1.
  lines = [r.getMessage() for r in caplog.records
           if r.name == "resizer.progress"]
  assert [l.split(" loss ")[0] for l in lines] == ["epoch 4/5", "epoch 5/5"]
  assert re.fullmatch(r"epoch 5/5 loss \d\.\d{3} accuracy \d\.\d{3} "
                      r"val_loss \d\.\d{3} val_accuracy \d\.\d{3} — \d+\.\d s",
                      lines[-1]), lines[-1]


def test_full_history_ignores_records_from_the_resumed_epoch_on():
  records = {e: {"loss": 10.0 + e} for e in range(6)}  # an older, longer run
  assert full_history(records, [2, 3], {"loss": [0.5, 0.4]}, 4) == {
      "loss": [10.0, 11.0, 0.5, 0.4]}
  # Resumed after its last epoch: fit ran nothing, the records are all.
  assert full_history(records, [], {}, 3) == {"loss": [10.0, 11.0, 12.0]}
  # A record lost before the resume leaves a visible gap, not a shift.
  assert full_history({0: {"loss": 1.0, "lr": 0.1}, 1: {"loss": 0.9}}, [2],
                      {"loss": [0.8], "lr": [0.3]}, 3) == {
                          "loss": [1.0, 0.9, 0.8], "lr": [0.1, None, 0.3]}
  # The progress line: epochs counted from 1, three decimals, seconds.
  assert epoch_line(3, 10, {"loss": 0.61, "accuracy": 0.7123}, 3.21,
                    "accuracy") == \
      "epoch 4/10 loss 0.610 accuracy 0.712 — 3.2 s"


def test_the_last_epochs_eval_is_reused_only_for_the_model_fit_returned():
  model = keras.Sequential([keras.layers.Dense(2, activation="softmax")])
  model.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
  x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
  y = keras.utils.to_categorical(np.arange(32) % 2, 2)
  history = model.fit(x, y, epochs=2, validation_data=(x, y), verbose=0)
  direct = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
  assert last_epoch_eval(history, TrainConfig(ema=0.0), "accuracy") == \
      pytest.approx(direct)
  # EMA swaps the averaged weights in after the last epoch's eval.
  assert last_epoch_eval(history, TrainConfig(ema=0.99), "accuracy") is None
  # A resumed run that had nothing left to train.
  history.epoch, history.history = [], {}
  assert last_epoch_eval(history, TrainConfig(ema=0.0), "accuracy") is None
