"""ModelSelector: the learned model if the Evaluator blessed it, else bilinear.

TFX's Pusher takes one model channel; this picks which Trainer's model goes on
to the production gate. The learned model's blessing (from the Evaluator with
bilinear as baseline) already encodes "top-1 above the floor and at least the
minimum gain over bilinear". When it fails, bilinear is the candidate, and the
production Evaluator applies the floor to it, so when both are under the floor
nothing is pushed.
"""
import hashlib
import os

import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import io_utils
from tfx.v1.dsl.components import InputArtifact, OutputArtifact, component

SELECTED = "selected"        # custom property: "learned" | "bilinear"
FINGERPRINT = "fingerprint"  # custom property: sha256 of the model's files


def fingerprint(model_dir):
  """Content hash of a model folder: equal models hash equal wherever they are."""
  digest = hashlib.sha256()
  for dirpath, _, files in sorted(tf.io.gfile.walk(model_dir)):
    for name in sorted(files):
      path = os.path.join(dirpath, name)
      digest.update(os.path.relpath(path, model_dir).encode())
      with tf.io.gfile.GFile(path, "rb") as f:
        digest.update(f.read())
  return digest.hexdigest()


def is_blessed(blessing):
  return blessing.get_int_custom_property("blessed") == 1


@component
def ModelSelector(
    learned_model: InputArtifact[standard_artifacts.Model],
    learned_blessing: InputArtifact[standard_artifacts.ModelBlessing],
    bilinear_model: InputArtifact[standard_artifacts.Model],
    model: OutputArtifact[standard_artifacts.Model]):
  chosen, name = ((learned_model, "learned") if is_blessed(learned_blessing)
                  else (bilinear_model, "bilinear"))
  io_utils.copy_dir(chosen.uri, model.uri)
  model.set_string_custom_property(SELECTED, name)
  model.set_string_custom_property(FINGERPRINT, fingerprint(model.uri))
