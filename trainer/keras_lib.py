"""The one Keras this project uses: tf_keras (Keras 2).

In TF 2.16 the `keras` attribute of tensorflow is Keras 3 or tf_keras depending on import
order (tensorflow_transform sets TF_USE_LEGACY_KERAS=1 when imported). TFT's
TransformFeaturesLayer and TFMA's Keras metrics are tf_keras objects, so the
models are tf_keras models too, imported by name so no import order can flip it.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# pylint: disable=wrong-import-position
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from tensorflow.python.autograph.core import \
    config as _autograph_config  # noqa: E402
from tensorflow.python.autograph.core import \
    config_lib as _autograph_rules  # noqa: E402

layers = keras.layers

__all__ = ["keras", "layers"]

# Autograph leaves the `keras` package alone (its code is graph-safe) but
# not `tf_keras`, the same code under a new name: every process that trains
# would rewrite tf_keras' whole train step, layer by layer, before the first
# batch. The rule list is TensorFlow's private autograph config, the only
# place that says which modules are left alone; this is its one use, checked
# against the TensorFlow it was written for.
_VERIFIED_TF = "2.16."


def _leave_tf_keras_alone(config=_autograph_config, rules=_autograph_rules,
                          version=tf.__version__):
  current = getattr(config, "CONVERSION_RULES", None)
  if (not version.startswith(_VERIFIED_TF) or not isinstance(current, tuple)
      or not any(isinstance(r, rules.DoNotConvert) and
                 r.matches("keras.engine") for r in current)):
    raise RuntimeError(
        "trainer/keras_lib.py: TensorFlow's autograph CONVERSION_RULES are "
        f"not as in TensorFlow {_VERIFIED_TF}x (this is {version}); re-check "
        "that adding DoNotConvert('tf_keras') still keeps autograph out of "
        "tf_keras, then update _VERIFIED_TF.")
  if not any(isinstance(r, rules.DoNotConvert) and r.matches("tf_keras.src")
             for r in current):
    config.CONVERSION_RULES = (rules.DoNotConvert("tf_keras"),) + current


_leave_tf_keras_alone()
