"""The backbone networks, each mapping [B, H, W, 3] images in [0, 1] to
[B, features]: keras.applications' (behind their own preprocess_input, so
ImageNet weights see the input range they were trained on), a tiny CNN for
tests, and ViT, written here because tf_keras has no ViT and keras-hub needs
Keras 3 (see trainer/keras_lib). trainer/backbones.py names them and builds
them; the custom layers are registered when this module is imported.
"""
import tensorflow as tf

from trainer.keras_lib import keras, layers


class WeightsUnavailableError(RuntimeError):
  """ImageNet weights were asked for but cannot be downloaded."""


def application(name, size, weights, constructor, module):
  """keras.applications' `constructor` (its name) behind the preprocess_input
  of `module` (its name), without its top; weights None or "imagenet"."""
  constructor = getattr(keras.applications, constructor)
  try:
    net = constructor(include_top=False, weights=weights,
                      input_shape=(size, size, 3), pooling="avg")
  except Exception as e:  # Keras raises several types for a failed download.
    if weights != "imagenet":
      raise
    raise WeightsUnavailableError(
        f"could not download ImageNet weights for {name} ({e.__class__.__name__}"
        f": {e}). Run online once to fill ~/.keras/models, or pass "
        "--weights PATH with a local .h5 file, or --weights none.") from None
  inputs = layers.Input((size, size, 3), name="image01")
  x = ApplicationPreprocess(module, name=f"{name}_preprocess")(inputs)
  return keras.Model(inputs, net(x), name=name)


@keras.utils.register_keras_serializable(package="resizer")
class ApplicationPreprocess(layers.Layer):
  """keras.applications' own preprocess_input, on [0, 1] inputs.

  A Lambda closing over the module can't be saved (modules don't pickle);
  this layer stores only the module's name.
  """

  def __init__(self, module, **kwargs):
    super().__init__(**kwargs)
    self.module = module

  def call(self, images):  # keras.applications expects pixels in [0, 255]
    return getattr(keras.applications, self.module).preprocess_input(
        images * 255.0)

  def get_config(self):
    return {**super().get_config(), "module": self.module}


def tiny_cnn(size):
  """A few strided convolutions: enough to learn textures on tiny test data."""
  inputs = layers.Input((size, size, 3), name="image01")
  x = inputs
  for i, filters in enumerate((16, 32, 64)):
    x = layers.Conv2D(filters, 3, strides=1 if i == 0 else 2, padding="same",
                      use_bias=False, name=f"conv{i + 1}")(x)
    x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
    x = layers.ReLU(name=f"relu{i + 1}")(x)
  x = layers.GlobalAveragePooling2D(name="pool")(x)
  return keras.Model(inputs, x, name="tiny_cnn")


@keras.utils.register_keras_serializable(package="resizer")
class ClassToken(layers.Layer):
  """Prepends a learned [CLS] token to the patch sequence."""

  def build(self, input_shape):
    self.token = self.add_weight(name="token", shape=(1, 1, input_shape[-1]),
                                 initializer="zeros")

  def call(self, x):
    token = tf.cast(tf.tile(self.token, [tf.shape(x)[0], 1, 1]), x.dtype)
    return tf.concat([token, x], axis=1)


@keras.utils.register_keras_serializable(package="resizer")
class PositionEmbedding(layers.Layer):
  """Adds a learned position embedding to a fixed-length sequence."""

  def build(self, input_shape):
    self.embedding = self.add_weight(
        name="embedding", shape=(1, input_shape[1], input_shape[2]),
        initializer=keras.initializers.RandomNormal(stddev=0.02))

  def call(self, x):
    return x + tf.cast(self.embedding, x.dtype)


def vit(size, patch=16, dim=384, depth=12, heads=6, mlp_dim=1536, name="vit"):
  """ViT-S/16 (Dosovitskiy et al.) by default: 224 px input -> 197 tokens."""
  if size % patch:
    raise ValueError(f"ViT input size {size} is not a multiple of patch {patch}")
  inputs = layers.Input((size, size, 3), name="image01")
  x = layers.Conv2D(dim, patch, strides=patch, name="patch_embed")(inputs)
  x = layers.Reshape(((size // patch) ** 2, dim), name="patches")(x)
  x = ClassToken(name="cls")(x)
  x = PositionEmbedding(name="pos_embed")(x)
  for i in range(depth):
    y = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln1")(x)
    y = layers.MultiHeadAttention(heads, dim // heads, name=f"block{i}_mha")(y, y)
    x = layers.Add(name=f"block{i}_add1")([x, y])
    y = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln2")(x)
    y = layers.Dense(mlp_dim, activation="gelu", name=f"block{i}_mlp1")(y)
    y = layers.Dense(dim, name=f"block{i}_mlp2")(y)
    x = layers.Add(name=f"block{i}_add2")([x, y])
  x = layers.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
  x = layers.Lambda(lambda t: t[:, 0], name="cls_output")(x)
  return keras.Model(inputs, x, name=name)


def nested_model(model):
  """The one Model among a model's layers (an applications backbone's
  keras.applications model, a classifier's backbone), or None."""
  inner = [l for l in model.layers if isinstance(l, keras.Model)]
  return inner[0] if len(inner) == 1 else None
