"""Transform's image encoding: compact raw bytes that round-trip exactly."""
import numpy as np
import tensorflow as tf

from testing.helpers import jpeg_bytes
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


def test_regression_target_is_z_scored_and_served_back_in_its_units():
  """Transform's analyzers, run on a tiny dataset with tft_beam, and the
  inverse the served model applies (tasks/regression.py)."""
  import tempfile  # pylint: disable=import-outside-toplevel

  import tensorflow_transform.beam as tft_beam  # pylint: disable=import-outside-toplevel
  from tensorflow_transform.tf_metadata import (  # pylint: disable=import-outside-toplevel
      dataset_metadata, schema_utils)

  from trainer import features  # pylint: disable=import-outside-toplevel
  from pipeline.transform_module import preprocessing_fn  # pylint: disable=import-outside-toplevel
  from tasks.regression import inverse_target  # pylint: disable=import-outside-toplevel
  counts = [0.0, 3.0, 8.0, 24.0]
  raw = [{features.IMAGE: [jpeg_bytes((8, 8), (10 * i, 0, 0))],
          features.TARGET: [c]} for i, c in enumerate(counts)]
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec({
          features.IMAGE: tf.io.FixedLenFeature([1], tf.string),
          features.TARGET: tf.io.FixedLenFeature([1], tf.float32)}))
  with tft_beam.Context(temp_dir=tempfile.mkdtemp()):
    (out, _), _ = ((raw, metadata) | tft_beam.AnalyzeAndTransformDataset(
        lambda x: preprocessing_fn(x, {"input_size": 4, "task": "regression",
                                       "target_transform": "log1p"})))
  logs = np.log1p(counts)
  z = np.array([o[features.TARGET_NORM] for o in out])
  np.testing.assert_allclose(z, (logs - logs.mean()) / logs.std(), rtol=1e-4)
  assert [o[features.TARGET_RAW] for o in out] == counts
  # The served model's inverse: a normalised prediction back to counts.
  back = inverse_target(z * out[0][features.TARGET_STD]
                        + out[0][features.TARGET_MEAN], "log1p").numpy()
  np.testing.assert_allclose(back, counts, rtol=1e-4, atol=1e-4)
