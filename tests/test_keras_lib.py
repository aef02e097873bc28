"""trainer/keras_lib.py: tf_keras, and autograph leaving it alone."""
import types

import pytest
from tensorflow.python.autograph.core import config, config_lib
from tensorflow.python.autograph.impl import conversion

from trainer import keras_lib
from trainer.keras_lib import keras


def test_autograph_leaves_tf_keras_alone_as_it_leaves_keras():
  assert conversion.is_allowlisted(keras.Model.train_step)
  assert conversion.is_allowlisted(keras.layers.Conv2D.call)


def test_without_the_rule_tf_keras_would_be_rewritten(monkeypatch):
  monkeypatch.setattr(config, "CONVERSION_RULES", tuple(
      r for r in config.CONVERSION_RULES if not r.matches("tf_keras")))
  assert not conversion.is_allowlisted(keras.Model.train_step)
  keras_lib._leave_tf_keras_alone()  # pylint: disable=protected-access
  assert conversion.is_allowlisted(keras.Model.train_step)


def test_the_projects_own_code_is_still_converted():
  def step(x):  # Python control flow on tensors needs autograph
    return x if x > 0 else -x
  assert not conversion.is_allowlisted(step)


def test_the_rule_is_added_once():
  before = config.CONVERSION_RULES
  keras_lib._leave_tf_keras_alone()  # pylint: disable=protected-access
  assert config.CONVERSION_RULES == before
  assert sum(r.matches("tf_keras") for r in before) == 1


@pytest.mark.parametrize("version, rules", [
    ("2.17.0", config.CONVERSION_RULES),
    ("2.16.2", ()),  # TensorFlow no longer leaves `keras` alone
    ("2.16.2", None),  # or keeps its rules elsewhere
])
def test_a_changed_tensorflow_fails_loudly(version, rules):
  changed = types.SimpleNamespace(CONVERSION_RULES=rules)
  with pytest.raises(RuntimeError, match="CONVERSION_RULES.*_VERIFIED_TF"):
    keras_lib._leave_tf_keras_alone(  # pylint: disable=protected-access
        config=changed, rules=config_lib, version=version)
