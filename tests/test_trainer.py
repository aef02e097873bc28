"""Training recipe pieces: augmentation, schedule, backup location."""
import types

import numpy as np
import pytest
import tensorflow as tf

from trainer.recipe import lr_schedule, optimizer
from trainer.task import augment, backup_dir


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
  cfg = {"learning_rate": 0.1, "epochs": 10, "schedule": "cosine"}
  lr = lr_schedule(cfg)
  assert lr(0) == pytest.approx(0.1)
  assert lr(5) == pytest.approx(0.05)
  assert lr(9) < 0.01
  assert lr_schedule({**cfg, "schedule": "constant"})(9) == 0.1


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
  cfg = {"learning_rate": 0.1, "epochs": 10, "schedule": "cosine",
         "warmup_epochs": 3}
  lr = lr_schedule(cfg)
  assert [lr(e) for e in range(3)] == pytest.approx([0.025, 0.05, 0.075])
  assert lr(3) == pytest.approx(0.1)  # the decay starts at the base rate
  assert lr(3) > lr(6) > lr(9) > 0
  # More warm-up than epochs: the last epoch still trains.
  assert lr_schedule({**cfg, "epochs": 1})(0) > 0


def test_step_schedule_is_the_papers():
  lr = lr_schedule({"learning_rate": 0.1, "epochs": 10, "schedule": "step"})
  assert [lr(e) for e in range(5)] == pytest.approx(
      [0.1, 0.1, 0.094, 0.094, 0.1 * 0.94 ** 2])


def test_unknown_recipe_choices_are_refused_and_ema_is_keras_own():
  with pytest.raises(ValueError, match="schedule='linear'"):
    lr_schedule({"epochs": 2, "schedule": "linear"})
  with pytest.raises(ValueError, match="optimizer='rmsprop'"):
    optimizer({"optimizer": "rmsprop"})
  averaged = optimizer({"optimizer": "sgd", "ema": 0.9, "learning_rate": 0.1})
  assert averaged.use_ema and averaged.ema_momentum == 0.9
  assert not optimizer({"optimizer": "adam"}).use_ema


def test_crops_are_drawn_per_image():
  # Identical, mirror-symmetric images (so flips change nothing): a
  # batch-wide crop would leave them identical.
  image = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3))
  image = (image + image[:, :, ::-1]) / 2
  batch = tf.constant(np.repeat(image, 8, axis=0), tf.float32)
  out = augment(batch, "flip_crop", 3).numpy()
  assert out.shape == (8, 32, 32, 3)
  assert len({o.tobytes() for o in out}) > 1
