"""The learnable resizer of Talebi & Milanfar, arXiv 2103.09950 (Fig. 2).

A naive (bilinear by default) resize of the input is refined by a small CNN:
two convolutions at the input resolution, a resizing bottleneck, `r` residual
blocks at the target resolution, a projection with a skip connection, and a
final 3-channel convolution added to the naively resized image. At n=16 filters
and r=1 block it has 12,163 parameters (12,035 trainable).

Unlike the reference notebooks, the residual blocks are chained (block i feeds
block i+1); the notebooks start every block from the bottleneck, so only the
last one reaches the output.
"""
# pylint: disable=import-outside-toplevel
# Importing this module loads no TensorFlow: the CLI reads the choices.

INTERPOLATIONS = ("bilinear", "bicubic", "area", "nearest")


def conv_block(x, filters, kernel_size, activation=True, name=None):
  """Conv (no bias: BatchNorm follows) -> BatchNorm -> optional LeakyReLU(0.2)."""
  from trainer.keras_lib import layers
  x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False,
                    name=f"{name}_conv")(x)
  x = layers.BatchNormalization(name=f"{name}_bn")(x)
  if activation:
    x = layers.LeakyReLU(0.2, name=f"{name}_act")(x)
  return x


def residual_block(x, filters, name):
  from trainer.keras_lib import layers
  shortcut = x
  x = conv_block(x, filters, 3, name=f"{name}_a")
  x = conv_block(x, filters, 3, activation=False, name=f"{name}_b")
  return layers.Add(name=f"{name}_add")([shortcut, x])


def learnable_resizer(target_size, filters=16, num_res_blocks=1,
                      interpolation="bilinear", name="learnable_resizer"):
  """Returns a Keras model mapping [B, H, W, 3] images to [B, *target_size, 3]."""
  from trainer.keras_lib import keras, layers
  if interpolation not in INTERPOLATIONS:
    raise ValueError(f"interpolation={interpolation!r}: choose one of "
                     f"{', '.join(INTERPOLATIONS)}")
  if num_res_blocks < 1 or filters < 1:
    raise ValueError("the resizer needs filters >= 1 and num_res_blocks >= 1")
  height, width = target_size
  inputs = layers.Input(shape=[None, None, 3], name="image")
  naive = layers.Resizing(height, width, interpolation=interpolation,
                          name="naive_resize")(inputs)

  # Full-resolution feature extraction: 7x7 conv without BatchNorm, then 1x1.
  x = layers.Conv2D(filters, 7, padding="same", name="stem_conv7")(inputs)
  x = layers.LeakyReLU(0.2, name="stem_act7")(x)
  x = layers.Conv2D(filters, 1, padding="same", name="stem_conv1")(x)
  x = layers.LeakyReLU(0.2, name="stem_act1")(x)
  x = layers.BatchNormalization(name="stem_bn")(x)

  # Resizing bottleneck, then residual blocks at the target resolution.
  bottleneck = layers.Resizing(height, width, interpolation=interpolation,
                               name="bottleneck_resize")(x)
  x = bottleneck
  for i in range(num_res_blocks):
    x = residual_block(x, filters, name=f"res{i + 1}")

  x = conv_block(x, filters, 3, activation=False, name="projection")
  x = layers.Add(name="skip_add")([bottleneck, x])
  x = layers.Conv2D(3, 7, padding="same", name="to_rgb")(x)
  outputs = layers.Add(name="resized")([naive, x])
  return keras.Model(inputs, outputs, name=name)
