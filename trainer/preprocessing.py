"""The image half of the Transform graph: one decode and resize that training
and serving share.

Images are decoded, resized to the resizer's input size and stored as raw
uint8 RGB bytes (H*W*3 bytes an image, never float lists). The Transform entry
point (pipeline/transform_module.py) adds the task's target features
(tasks/).
"""
import tensorflow as tf

from trainer import features


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


def model_pixels(raw, stored, size):
  """[B] strings of raw pixels stored at `stored` -> [B, size, size, 3]
  float32, the model's input: a candidate with a smaller input takes an
  antialiased downscale of the same stored pixels, in training and serving
  alike."""
  pixels = tf.cast(bytes_to_pixels(raw, stored), tf.float32)
  if int(stored) == int(size):
    return pixels
  return tf.image.resize(pixels, [size, size], method="bilinear",
                         antialias=True)


def dense_1d(tensor):
  """A [B] or [B, 1] feature, sparse or dense, as a dense [B] tensor."""
  if isinstance(tensor, tf.SparseTensor):
    tensor = tf.sparse.to_dense(tensor, default_value="")
  return tf.reshape(tensor, [-1])


def image_pixels(encoded, size):
  """[B] encoded images -> [B] strings of their raw pixels at `size`."""
  return tf.map_fn(lambda e: pixels_to_bytes(decode_and_resize(e, size)),
                   dense_1d(encoded),
                   fn_output_signature=tf.TensorSpec([], tf.string))


def class_names(tft_output):
  """The class names of a Transform output's label vocabulary, in label-id
  order."""
  return [c.decode() if isinstance(c, bytes) else c
          for c in tft_output.vocabulary_by_name(features.LABEL_VOCAB)]
