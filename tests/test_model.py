"""The model as the paper and the seeds define it."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import tasks
from trainer.model import ModelSpec, build_model
from trainer.resizer import learnable_resizer

CLASSIFICATION = tasks.get("classification")


def _trainable(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_resizer_has_paper_parameter_count():
  resizer = learnable_resizer((150, 150), filters=16, num_res_blocks=1)
  assert resizer.count_params() == 12_163
  assert _trainable(resizer) == 12_035


def test_resizer_output_has_target_size():
  resizer = learnable_resizer((32, 32))
  out = resizer(tf.random.uniform((2, 64, 64, 3)))
  assert out.shape == (2, 32, 32, 3)


def test_residual_blocks_are_chained_and_all_on_the_gradient_path():
  one = learnable_resizer((16, 16), num_res_blocks=1)
  two = learnable_resizer((16, 16), num_res_blocks=2)
  block = 2 * (3 * 3 * 16 * 16) + 2 * 4 * 16  # two convs + two BatchNorms
  assert two.count_params() - one.count_params() == block
  images = tf.random.uniform((2, 32, 32, 3))
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(two(images, training=True) ** 2)
  grads = dict(zip([w.name for w in two.trainable_weights],
                   tape.gradient(loss, two.trainable_weights)))
  for name in ("res1_a_conv", "res1_b_conv", "res2_a_conv", "res2_b_conv"):
    grad = next(g for n, g in grads.items() if n.startswith(name))
    assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0, name


def test_densenet121_parameter_counts_match_the_seed():
  counts = {r: build_model(ModelSpec(head=CLASSIFICATION.head(2),
                                     input_size=300, target_size=150,
                                     backbone="densenet121",
                                     resizer=r)).count_params()
            for r in ("learned", "bilinear")}
  assert counts == {"learned": 7_051_717, "bilinear": 7_039_554}


def test_both_models_start_from_identical_classifier_weights():
  spec = dict(head=CLASSIFICATION.head(3), input_size=64, target_size=32,
              backbone="tiny_cnn", seed=7)
  learned = build_model(ModelSpec(resizer="learned", **spec))
  bilinear = build_model(ModelSpec(resizer="bilinear", **spec))
  a = learned.get_layer("classifier").get_weights()
  b = bilinear.get_layer("classifier").get_weights()
  assert len(a) == len(b) > 0
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  other = build_model(ModelSpec(resizer="bilinear", **{**spec, "seed": 8}))
  assert not np.array_equal(other.get_layer("classifier").get_weights()[0], a[0])


def test_output_is_float32_probabilities():
  model = build_model(ModelSpec(head=CLASSIFICATION.head(4), input_size=64,
                                target_size=32))
  probs = model(tf.random.uniform((3, 64, 64, 3), 0, 255)).numpy()
  assert probs.dtype == np.float32 and probs.shape == (3, 4)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(resizer="nearest"), "resizer="),
    (dict(num_classes=1), "at least 2 classes"),
    (dict(target_size=64), "must be below input size"),
])
def test_bad_model_specs_are_refused(kwargs, message):
  spec = {**dict(num_classes=3, input_size=64, target_size=32), **kwargs}
  with pytest.raises(ValueError, match=message):
    ModelSpec(head=CLASSIFICATION.head(spec.pop("num_classes")), **spec)


def test_vit_regression_head_trains_with_a_float32_output():
  """The ViT variant's task (512 -> 224, a score) at a tiny size: one linear
  float32 output under mixed precision, trained with the regression loss,
  both variants from the same initial weights."""
  from trainer.keras_lib import keras  # pylint: disable=import-outside-toplevel
  from pipeline.config import TrainConfig  # pylint: disable=import-outside-toplevel
  from trainer.training import compile_model  # pylint: disable=import-outside-toplevel
  regression = tasks.get("regression")
  spec = ModelSpec(head=regression.head(1), input_size=64, target_size=32,
                   backbone="vit_tiny")
  keras.mixed_precision.set_global_policy("mixed_float16")
  try:  # float16 inside, float32 out (float16 training is slow on CPU)
    out = build_model(spec)(np.zeros((4, 64, 64, 3), "float32"))
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert out.dtype == tf.float32 and out.shape == (4, 1)
  model = compile_model(spec, TrainConfig(learning_rate=3e-3, epochs=6),
                        regression, regression.Settings(loss="huber"))
  bilinear = build_model(dataclasses.replace(spec, resizer="bilinear"))
  np.testing.assert_array_equal(
      model.get_layer("classifier").get_weights()[0],
      bilinear.get_layer("classifier").get_weights()[0])
  rng = np.random.default_rng(0)
  x = rng.uniform(0, 255, (24, 64, 64, 3)).astype("float32")
  y = (x.mean(axis=(1, 2, 3)) / 127.5 - 1.0)[:, None]  # brightness, z-ish
  history = model.fit(x, y, epochs=6, batch_size=8, verbose=0)
  assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
  assert set(history.history) >= {"rmse", "mae"}
