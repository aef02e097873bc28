"""ModelSelector: where the learned-vs-bilinear gate decides.

The Evaluator scored both models on the same eval examples and kept the paired
table (gate/tfma_metric.py); its blessing says only whether the learned model's
top-1 clears the floor. The learned model is selected when it clears the floor
AND the exact paired test puts it ahead of bilinear by more than `min_gain`
at `confidence` (the lower end of the interval is above min_gain). Otherwise
bilinear — the cheaper model — goes on to the production gate, which applies
the floor to it. The comparison and the reason are recorded on the output.
"""
import hashlib
import json
import os

import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import io_utils
from tfx.v1.dsl.components import (InputArtifact, OutputArtifact, Parameter,
                                   component)

from gate import stats, tfma_metric

SELECTED = "selected"        # custom property: "learned" | "bilinear"
FINGERPRINT = "fingerprint"  # custom property: sha256 of the model's files
COMPARISON = "comparison"    # custom property: JSON of the gate's evidence
# custom property: 1 when a model is in production (the resolver found one),
# else 0; the pipeline runs Evaluator_production only when it is 1.
IN_PRODUCTION = "in_production"
# Why the selection came out as it did (COMPARISON["outcome"]).
AHEAD, NOT_SIGNIFICANT, UNDER_FLOOR = "ahead", "not_significant", "under_floor"


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


def select(above_floor, comparison, min_gain):
  """(selected model, outcome) from the floor check and the paired test."""
  if not above_floor:
    return "bilinear", UNDER_FLOOR
  if stats.superior(comparison, min_gain):
    return "learned", AHEAD
  return "bilinear", NOT_SIGNIFICANT


def read_comparison(evaluation_uri, model_name, confidence):
  table = tfma_metric.load_table(evaluation_uri, model_name)
  if table is None:
    raise RuntimeError(
        f"{evaluation_uri}: no PairedAccuracy table for {model_name!r}; the "
        "Evaluator must run with a baseline and gate.tfma_metric's metric")
  return stats.paired_accuracy(*table, confidence=confidence)


@component
def ModelSelector(
    learned_model: InputArtifact[standard_artifacts.Model],
    learned_blessing: InputArtifact[standard_artifacts.ModelBlessing],
    bilinear_model: InputArtifact[standard_artifacts.Model],
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    model: OutputArtifact[standard_artifacts.Model],
    production_model: InputArtifact[standard_artifacts.Model] = None,
    min_gain: Parameter[float] = 0.0,
    confidence: Parameter[float] = 0.95):
  comparison = read_comparison(evaluation.uri, "learned", confidence)
  name, outcome = select(is_blessed(learned_blessing), comparison, min_gain)
  chosen = learned_model if name == "learned" else bilinear_model
  io_utils.copy_dir(chosen.uri, model.uri)
  model.set_string_custom_property(SELECTED, name)
  model.set_string_custom_property(FINGERPRINT, fingerprint(model.uri))
  model.set_string_custom_property(COMPARISON, json.dumps(
      {**comparison.as_dict(), "margin": min_gain, "outcome": outcome}))
  # A TFX conditional can test a property of an artifact, not whether a
  # channel (the resolver's) is empty: record it here, on an artifact that
  # always exists.
  model.set_int_custom_property(IN_PRODUCTION, int(production_model is not None))
