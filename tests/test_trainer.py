"""Training recipe pieces: augmentation, schedule, backup location."""
import types

import numpy as np
import pytest
import tensorflow as tf

from trainer.recipe import lr_schedule
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
