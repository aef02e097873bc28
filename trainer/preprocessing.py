"""TF Transform: the one graph that prepares images for training and serving.

Images are decoded, resized to the resizer's input size and stored as raw
uint8 RGB bytes (H*W*3 bytes an image, never float lists). Class names become
integer ids through a vocabulary that is exported with the model, so training
and serving share one mapping and one decode/resize. A regression target is
z-scored (after log1p for counts, when asked) with the training split's mean
and deviation, constants of this graph: the served model applies the inverse
and answers in the target's own units.
"""
import tensorflow as tf
import tensorflow_transform as tft

from trainer import features

TARGET_TRANSFORMS = ("none", "log1p")  # applied before the z-score


def decode_and_resize(encoded, size):
  """Encoded JPEG/PNG bytes (scalar) -> [size, size, 3] uint8 RGB."""
  image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
  # Antialiasing keeps detail honest when large photos are shrunk to the
  # resizer's input size; the resize under study happens later, in the model.
  image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
  return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def pixels_to_bytes(image):
  """[H, W, 3] uint8 -> scalar string of exactly H*W*3 raw bytes.

  serialize_tensor writes a TensorProto whose last field is the raw
  tensor_content, so the raw bytes are its trailing H*W*3 bytes.
  """
  n = tf.size(image)
  serialized = tf.io.serialize_tensor(image)
  return tf.strings.substr(serialized, tf.strings.length(serialized) - n, n)


def bytes_to_pixels(raw, size):
  """[B] strings of raw bytes -> [B, size, size, 3] uint8."""
  return tf.reshape(tf.io.decode_raw(raw, tf.uint8), [-1, size, size, 3])


def _dense_1d(tensor):
  if isinstance(tensor, tf.SparseTensor):
    tensor = tf.sparse.to_dense(tensor, default_value="")
  return tf.reshape(tensor, [-1])


def forward_target(target, transform):
  return tf.math.log1p(target) if transform == "log1p" else target


def inverse_target(value, transform):
  return tf.math.expm1(value) if transform == "log1p" else value


def class_names(tft_output):
  """The class names of a Transform output, in label-id order."""
  return [c.decode() if isinstance(c, bytes) else c
          for c in tft_output.vocabulary_by_name(features.LABEL_VOCAB)]


def preprocessing_fn(inputs, custom_config):
  """TFX Transform entry point; custom_config carries `input_size`, `task`
  and, for regression, `target_transform`."""
  size = int(custom_config["input_size"])
  encoded = _dense_1d(inputs[features.IMAGE])
  pixels = tf.map_fn(lambda e: pixels_to_bytes(decode_and_resize(e, size)),
                     encoded, fn_output_signature=tf.TensorSpec([], tf.string))
  outputs = {features.PIXELS: pixels}
  if custom_config.get("task", "classification") == "regression":
    outputs.update(_target_features(inputs, tf.shape(encoded)[0],
                                    custom_config.get("target_transform",
                                                      "none")))
  elif features.LABEL in inputs:  # absent when serving raw images
    outputs[features.LABEL_ID] = tft.compute_and_apply_vocabulary(
        _dense_1d(inputs[features.LABEL]), vocab_filename=features.LABEL_VOCAB)
  return outputs


def _target_features(inputs, batch, transform):
  """Transform traces this once with every schema feature; serving with the
  image alone keeps the outputs that need no target: the constants."""
  raw = tf.reshape(tf.cast(_dense_1d(inputs[features.TARGET]), tf.float32),
                   [-1])
  forward = forward_target(raw, transform)
  mean = tft.mean(forward)
  std = tf.sqrt(tf.maximum(tft.var(forward), 1e-12))
  return {features.TARGET_RAW: raw,
          features.TARGET_NORM: (forward - mean) / std,
          features.TARGET_MEAN: tf.fill([batch], mean),
          features.TARGET_STD: tf.fill([batch], std)}
