"""What a candidate costs (trainer/cost.py), and the stored -> input
downscale every candidate with a smaller input takes (trainer/preprocessing)."""
import os

import numpy as np
import pytest
import tensorflow as tf

from trainer import cost
from trainer.keras_lib import keras, layers
from trainer.model import Head, ModelSpec, build_model
from trainer.preprocessing import model_pixels, pixels_to_bytes

HEAD = Head(units=2, activation="softmax", name="probabilities")


def test_flops_are_counted_from_the_graph_two_per_multiply_add():
  inputs = keras.Input((16, 16, 3))
  model = keras.Model(inputs, layers.Conv2D(4, 3, padding="same",
                                            use_bias=False)(inputs))
  assert cost.flops_per_image(model, 16) == 2 * 3 * 3 * 3 * 4 * 16 * 16


def test_the_learned_resizer_costs_more_flops_and_a_smaller_target_less():
  def flops(resizer, size, target):
    spec = ModelSpec(head=HEAD, input_size=size, target_size=target,
                     backbone="tiny_cnn", resizer=resizer, seed=0)
    return cost.flops_per_image(build_model(spec), size)
  bilinear, learned = flops("bilinear", 64, 32), flops("learned", 64, 32)
  assert learned > bilinear > 0
  assert flops("bilinear", 64, 16) < bilinear
  assert flops("learned", 48, 32) < learned  # the resizer runs at the input


class _Served(tf.Module):
  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve(self, image_bytes):
    images = tf.map_fn(
        lambda b: tf.cast(tf.io.decode_jpeg(b, channels=3), tf.float32),
        image_bytes, fn_output_signature=tf.TensorSpec([None, None, 3],
                                                       tf.float32))
    return {"mean": tf.reduce_mean(images, axis=[1, 2, 3])}


def test_latency_size_and_machine_of_an_exported_signature(tmp_path):
  module = _Served()
  folder = str(tmp_path / "model")
  tf.saved_model.save(module, folder, signatures={
      cost.SIGNATURE: module.serve})
  latency = cost.latency_ms(folder, 40)
  assert set(latency) == {1, 32} and all(v > 0 for v in latency.values())
  on_disk = sum(os.path.getsize(os.path.join(d, f))
                for d, _, files in os.walk(folder) for f in files)
  assert cost.folder_bytes(folder) == on_disk
  assert "cores" in cost.machine()
  image = tf.io.decode_jpeg(cost.sample_jpeg(40))
  assert image.shape == (40, 40, 3)


def test_a_smaller_input_is_an_antialiased_downscale_of_the_stored_pixels():
  rng = np.random.default_rng(0)
  stored = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
  raw = tf.stack([pixels_to_bytes(tf.constant(i)) for i in stored])
  same = model_pixels(raw, 8, 8)
  np.testing.assert_array_equal(same.numpy(), stored.astype(np.float32))
  half = model_pixels(raw, 8, 4).numpy()
  assert half.shape == (2, 4, 4, 3)
  as_float = stored.astype(np.float32)
  np.testing.assert_allclose(half, tf.image.resize(
      as_float, [4, 4], "bilinear", antialias=True).numpy(), atol=1e-4)
  # Antialiased: not the point samples a plain bilinear halving takes.
  assert np.abs(half - tf.image.resize(as_float, [4, 4], "bilinear").numpy()
                ).max() > 5


@pytest.mark.parametrize("size", [4, 8])
def test_the_input_dataset_feeds_the_candidates_input_size(size):
  from pipeline.config import TrainConfig  # pylint: disable=import-outside-toplevel
  import tasks  # pylint: disable=import-outside-toplevel
  from trainer.training import input_dataset  # pylint: disable=import-outside-toplevel

  class Accessor:
    def tf_dataset_factory(self, file_pattern, options, schema):
      return tf.data.Dataset.from_tensors(
          ({"pixels": tf.constant([b"\1" * (8 * 8 * 3)])}, tf.constant([[0]])))
  ds = input_dataset(Accessor(), ["f"], None, tasks.get("classification"), 2,
                     size, TrainConfig(), 1, training=False, stored_size=8)
  pixels, _ = next(iter(ds))
  assert pixels.shape == (1, size, size, 3)
  np.testing.assert_allclose(pixels.numpy(), 1.0, atol=1e-5)
