"""ModelSelector: where the learned-vs-bilinear gate decides.

The Evaluator scored both models on the same eval examples and kept the paired
table (gate/tfma_metric.py). The learned model is selected when its top-1
clears the floor AND the paired test puts it ahead of bilinear by more than
`min_gain` at `confidence` (the lower end of the interval is above min_gain):
McNemar's exact test on top-1, or for regression a paired t-test on squared
errors, whose floor is "better than predicting the training mean". Otherwise bilinear — the cheaper model — goes on to the production
gate, which applies the floor to it. The floor (`floor`, else just above
chance) is resolved here, at run time, from the Transform graph's label
vocabulary (gate/floor.py), and recorded on the output with the comparison.
"""
import hashlib
import json
import os

import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import io_utils
from tfx.v1.dsl.components import (InputArtifact, OutputArtifact, Parameter,
                                   component)

from gate import floor as top1_floor
from gate import stats, tfma_metric

SELECTED = "selected"        # custom property: "learned" | "bilinear"
FINGERPRINT = "fingerprint"  # custom property: sha256 of the model's files
COMPARISON = "comparison"    # custom property: JSON of the gate's evidence
FLOOR = "floor"              # custom property: the floor both gates use
                             # (top-1; regression: the mean predictor's RMSE)
NUM_CLASSES = "num_classes"  # custom property: classes the floor was set from
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


def select(above_floor, comparison, min_gain):
  """(selected model, outcome) from the floor check and the paired test."""
  if not above_floor:
    return "bilinear", UNDER_FLOOR
  if stats.superior(comparison, min_gain):
    return "learned", AHEAD
  return "bilinear", NOT_SIGNIFICANT


def read_comparison(evaluation_uri, model_name, confidence,
                    task="classification"):
  """The paired Comparison of `model_name` against the evaluation's baseline:
  McNemar's exact test on top-1, or for regression a paired t-test on the
  per-example squared errors."""
  if task == "regression":
    v = tfma_metric.load_values(evaluation_uri, model_name)
    if tfma_metric.SQ_EXAMPLES not in v:
      raise RuntimeError(f"{evaluation_uri}: no PairedSquaredError sums for "
                         f"{model_name!r}; the Evaluator must run with a "
                         "baseline and gate.tfma_metric's metric")
    return stats.paired_squared_error(
        v[tfma_metric.SQ_EXAMPLES], v[tfma_metric.SQ_DIFF_SUM],
        v[tfma_metric.SQ_DIFF_SUMSQ], confidence=confidence)
  table = tfma_metric.load_table(evaluation_uri, model_name)
  if table is None:
    raise RuntimeError(
        f"{evaluation_uri}: no PairedAccuracy table for {model_name!r}; the "
        "Evaluator must run with a baseline and gate.tfma_metric's metric")
  return stats.paired_accuracy(*table, confidence=confidence)


def regression_rmse(evaluation_uri, model_name):
  """(RMSE of `model_name`, RMSE of predicting the training mean), in the
  target's units, on the eval split."""
  v = tfma_metric.load_values(evaluation_uri, model_name)
  return v[tfma_metric.MSE] ** 0.5, v[tfma_metric.CONSTANT_SE] ** 0.5


@component
def ModelSelector(
    learned_model: InputArtifact[standard_artifacts.Model],
    bilinear_model: InputArtifact[standard_artifacts.Model],
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    transform_graph: InputArtifact[standard_artifacts.TransformGraph],
    model: OutputArtifact[standard_artifacts.Model],
    min_gain: Parameter[float] = 0.0,
    confidence: Parameter[float] = 0.95,
    production_model: InputArtifact[standard_artifacts.Model] = None,
    floor: Parameter[float] = None,
    task: Parameter[str] = "classification"):
  """floor: absolute top-1 floor; None: just above chance (1/classes).
  Regression: an RMSE the model must stay below; None: that of predicting
  the training mean."""
  if task == "regression":  # the floor is a ceiling on RMSE
    rmse, mean_rmse = regression_rmse(evaluation.uri, "learned")
    threshold = mean_rmse if floor is None else floor
    clears, num_classes = rmse < threshold, 0
  else:
    threshold, num_classes = top1_floor.resolve(floor, transform_graph.uri)
    learned_top1 = top1_floor.overall_top1(evaluation.uri)["learned"]
    clears = top1_floor.clears(learned_top1, threshold)
  comparison = read_comparison(evaluation.uri, "learned", confidence, task)
  name, outcome = select(clears, comparison, min_gain)
  chosen = learned_model if name == "learned" else bilinear_model
  io_utils.copy_dir(chosen.uri, model.uri)
  model.set_string_custom_property(SELECTED, name)
  model.set_string_custom_property(FINGERPRINT, fingerprint(model.uri))
  model.set_string_custom_property(COMPARISON, json.dumps(
      {**comparison.as_dict(), "margin": min_gain, "outcome": outcome}))
  model.set_float_custom_property(FLOOR, threshold)
  # A TFX conditional can test a property of an artifact, not whether a
  # channel (the resolver's) is empty: record it here, on an artifact that
  # always exists.
  model.set_int_custom_property(IN_PRODUCTION,
                                int(production_model is not None))
  model.set_int_custom_property(NUM_CLASSES, num_classes)
