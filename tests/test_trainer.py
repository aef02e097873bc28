"""Training recipe pieces: augmentation, schedule, backup location."""
import types

import numpy as np
import pytest
import tensorflow as tf

from pipeline.config import PipelineConfig
from trainer.recipe import lr_schedule, optimizer
from trainer.task import (augment, backup_dir, input_dataset,
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
  assert shuffle_buffer_records(cfg) == 64 * 2 ** 20 // (300 * 300 * 3) == 248
  default = PipelineConfig().trainer_config("learned")
  assert default["shuffle_buffer_mb"] == 256
  assert shuffle_buffer_records(default) == 994  # 256 MiB of 270 KB images
  assert shuffle_buffer_records({**default, "input_size": 64}) == 21845
  assert shuffle_buffer_records({"input_size": 10_000,
                                 "shuffle_buffer_mb": 1}) == 1

  requested = []

  class Accessor:  # what input_dataset asks of the Trainer's data accessor
    def tf_dataset_factory(self, file_pattern, options, schema):
      requested.append(options)
      return tf.data.Dataset.from_tensors(
          ({"pixels": tf.constant([b"\0" * 12])}, tf.constant([[0]])))

  fn_args = types.SimpleNamespace(data_accessor=Accessor())
  cfg = {**default, "input_size": 2}
  for training in (True, False):
    ds = input_dataset(fn_args, ["f"], None, 2, cfg, 1, training=training)
    pixels, labels = next(iter(ds))
    assert pixels.shape == (1, 2, 2, 3) and labels.shape == (1, 2)
  assert [o.shuffle for o in requested] == [True, False]
  assert {o.shuffle_buffer_size for o in requested} == {
      256 * 2 ** 20 // 12}
