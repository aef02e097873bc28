"""PushDecision: where the production gate decides.

A candidate replaces the model in production unless it is significantly worse
than production by more than `tolerance` — a non-inferiority check on the
paired table of Evaluator_production (both models on the same eval examples):
blocked when the upper end of the interval of (candidate - production) top-1 is
below -tolerance. It must also clear the floor: Evaluator_production's
blessing, or, when nothing is in production and that Evaluator did not run,
the candidate's top-1 in the learned-vs-bilinear `evaluation` against `floor`
(the same threshold TFMA applies). TFX has no check that the candidate *is*
the production model (a rerun that reuses cached training would push a second
copy), so this adds one, by content fingerprint.
"""
import json

import tensorflow_model_analysis as tfma
from tfx.types import standard_artifacts
from tfx.v1.dsl.components import (InputArtifact, OutputArtifact, Parameter,
                                   component)

from components.model_selector.component import (COMPARISON, FINGERPRINT,
                                                 SELECTED, is_blessed,
                                                 read_comparison)
from gate import stats

TOP1 = "sparse_categorical_accuracy"  # TFMA's name for SparseCategoricalAccuracy

DECISION = "decision"  # custom property on the output blessing
PUSH, NOT_BLESSED, SAME_AS_PRODUCTION, WORSE_THAN_PRODUCTION = (
    "push", "not_blessed", "same_as_production", "worse_than_production")


def decide(candidate_fp, production_fp, above_floor, comparison, tolerance,
           push_equal):
  """comparison: candidate vs production, or None with nothing in production."""
  if not above_floor:
    return NOT_BLESSED
  if production_fp and candidate_fp == production_fp and not push_equal:
    return SAME_AS_PRODUCTION
  if comparison is not None and stats.significantly_worse(comparison,
                                                          tolerance):
    return WORSE_THAN_PRODUCTION
  return PUSH


def overall_top1(evaluation_uri, model_name):
  """TFMA's overall top-1 of one model of an evaluation (None if absent)."""
  for metrics in tfma.load_metrics(evaluation_uri):
    if metrics.slice_key.single_slice_keys:
      continue
    for kv in metrics.metric_keys_and_values:
      if (kv.key.name == TOP1 and kv.key.model_name == model_name
          and not kv.key.is_diff):
        return kv.value.double_value.value
  return None


def above_floor(production_blessing, evaluation, selected, floor):
  """Whether the candidate clears the floor; see the module docstring."""
  if production_blessing is not None:
    return is_blessed(production_blessing)
  if evaluation is None:
    raise ValueError("PushDecision needs Evaluator_production's blessing or "
                     "the learned-vs-bilinear evaluation to check the floor")
  top1 = overall_top1(evaluation.uri, selected)
  if top1 is None:
    raise ValueError(f"{evaluation.uri}: no overall {TOP1} for {selected!r}")
  return top1 >= floor  # TFMA's lower_bound passes a value equal to it


@component
def PushDecision(
    model: InputArtifact[standard_artifacts.Model],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    production_blessing: InputArtifact[standard_artifacts.ModelBlessing] = None,
    production_evaluation: InputArtifact[
        standard_artifacts.ModelEvaluation] = None,
    production_model: InputArtifact[standard_artifacts.Model] = None,
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation] = None,
    floor: Parameter[float] = 0.0,
    tolerance: Parameter[float] = 0.0,
    confidence: Parameter[float] = 0.95,
    push_equal: Parameter[int] = 0):
  if production_model and production_evaluation is None:
    raise ValueError("a model is in production but Evaluator_production's "
                     "evaluation is missing")
  comparison = (read_comparison(production_evaluation.uri, "candidate",
                                confidence) if production_model else None)
  decision = decide(
      model.get_string_custom_property(FINGERPRINT),
      production_model.get_string_custom_property(FINGERPRINT)
      if production_model else None,
      above_floor(production_blessing, evaluation,
                  model.get_string_custom_property(SELECTED), floor),
      comparison, tolerance, bool(push_equal))
  blessing.set_int_custom_property("blessed", int(decision == PUSH))
  # Read by LatestBlessedModelStrategy to find the model now in production.
  blessing.set_int_custom_property("current_model_id", model.id)
  blessing.set_string_custom_property("current_model", model.uri)
  blessing.set_string_custom_property(DECISION, decision)
  if comparison is not None:
    blessing.set_string_custom_property(COMPARISON, json.dumps(
        {**comparison.as_dict(), "margin": -tolerance}))
