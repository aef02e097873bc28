"""Transform's image encoding: compact raw bytes that round-trip exactly."""
import numpy as np
import tensorflow as tf

from tests.helpers import jpeg_bytes
from trainer.preprocessing import (bytes_to_pixels, decode_and_resize,
                                   pixels_to_bytes)


def test_pixels_round_trip_through_raw_bytes():
  image = tf.constant(np.random.default_rng(0).integers(0, 256, (8, 8, 3)),
                      tf.uint8)
  raw = pixels_to_bytes(image)
  assert len(raw.numpy()) == 8 * 8 * 3  # exactly one byte a channel value
  back = bytes_to_pixels(tf.stack([raw, raw]), 8)
  assert back.shape == (2, 8, 8, 3)
  np.testing.assert_array_equal(back[1].numpy(), image.numpy())


def test_decode_and_resize_any_size_to_rgb_square():
  image = decode_and_resize(tf.constant(jpeg_bytes((40, 30), (200, 30, 30))), 16)
  assert image.shape == (16, 16, 3) and image.dtype == tf.uint8
  np.testing.assert_allclose(image.numpy().reshape(-1, 3).mean(0),
                             (200, 30, 30), atol=6)
