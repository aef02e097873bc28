"""ModelSelector: where the learned-vs-bilinear gate decides.

The Evaluator scored both models on the same eval examples and kept the paired
metric (gate/tfma_metric.py). The learned model is selected when its score
clears the floor AND the task's paired test (tasks/: McNemar's exact test on
top-1, a paired t-test on squared errors) puts it ahead of bilinear by more
than `min_gain` at `confidence` (the lower end of the interval is above
min_gain). Otherwise bilinear — the cheaper model — goes on to the production
gate, which applies the floor to it. The floor (`floor`, else the task's
default, e.g. just above chance from the Transform graph's label vocabulary)
is resolved here, at run time, and recorded on the output with the
comparison.
"""
import hashlib
import json
import os

import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import io_utils
from tfx.v1.dsl.components import (InputArtifact, OutputArtifact, Parameter,
                                   component)

import tasks
from components import result
from gate import stats, tfma_metric

SELECTED = "selected"        # custom property: "learned" | "bilinear"
FINGERPRINT = "fingerprint"  # custom property: sha256 of the model's files
COMPARISON = "comparison"    # custom property: JSON of the gate's evidence
FLOOR = "floor"              # custom property: the floor both gates use
                             # (the task's: a top-1, an RMSE)
NUM_CLASSES = "num_classes"  # custom property: classes the floor was set from
# custom property: 1 when a model is in production (the resolver found one),
# else 0; the pipeline runs Evaluator_production only when it is 1.
IN_PRODUCTION = "in_production"
# Why the selection came out as it did (COMPARISON["outcome"]).
AHEAD, NOT_SIGNIFICANT, UNDER_FLOOR = "ahead", "not_significant", "under_floor"
OUTCOMES = {AHEAD: "the learned resizer is ahead",
            NOT_SIGNIFICANT: "no significant difference",
            UNDER_FLOOR: "the learned model is under the floor"}


def score(evaluation_uri, model_name, task):
  """The task's headline score of `model_name` in a TFMA evaluation."""
  value = tasks.named(task).score_of(
      tfma_metric.load_values(evaluation_uri, model_name))
  if value is None:
    raise RuntimeError(f"{evaluation_uri}: no score of {model_name!r} in the "
                       "TFMA evaluation")
  return value


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


def result_line(name, outcome, comparison):
  """'learned (the learned resizer is ahead; +4.0 points, 95% CI ..., p =
  ..., 100 eval images)': the step's result."""
  return f"{name} ({OUTCOMES[outcome]}; {stats.describe(comparison)})"


def read_comparison(evaluation_uri, model_name, confidence,
                    task=""):
  """The paired Comparison of `model_name` against the evaluation's baseline,
  by the task's paired test (tasks/)."""
  return tasks.named(task).compare(evaluation_uri, model_name, confidence)


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
    task: Parameter[str] = ""):
  """floor: the task's floor (its --floor help); None: its default."""
  kind = tasks.named(task)
  threshold, num_classes = kind.floor(floor, evaluation.uri,
                                      transform_graph.uri)
  clears = kind.clears(score(evaluation.uri, "learned", task), threshold)
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
  result.record(model, result_line(name, outcome, comparison))
