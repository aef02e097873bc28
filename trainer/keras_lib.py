"""The one Keras this project uses: tf_keras (Keras 2).

In TF 2.16 the `keras` attribute of tensorflow is Keras 3 or tf_keras depending on import
order (tensorflow_transform sets TF_USE_LEGACY_KERAS=1 when imported). TFT's
TransformFeaturesLayer and TFMA's Keras metrics are tf_keras objects, so the
models are tf_keras models too, imported by name so no import order can flip it.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tf_keras as keras  # noqa: E402  pylint: disable=wrong-import-position

layers = keras.layers

__all__ = ["keras", "layers"]
