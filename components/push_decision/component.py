"""PushDecision: where the production gate decides.

A candidate replaces the model in production unless it is significantly worse
than production by more than `tolerance` — a non-inferiority check on the
paired metric of Evaluator_production (both models on the same eval
examples): blocked when the upper end of the interval of (candidate -
production) is below -tolerance. Its score must also clear the floor
ModelSelector resolved and recorded on the model. TFX
has no check that the candidate *is* the production model (a rerun that reuses
cached training would push a second copy), so this adds one, by content
fingerprint.
"""
import json

from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.v1.dsl.components import (InputArtifact, OutputArtifact, Parameter,
                                   component)

import tasks
from components import result, tfx_internals
from components.model_selector.component import (COMPARISON, FINGERPRINT,
                                                 FLOOR, SELECTED,
                                                 read_comparison, score)
from components.production_evaluator.executor import evaluated
from gate import stats, sweep

DECISION = "decision"  # custom property on the output blessing
PUSH, NOT_BLESSED, SAME_AS_PRODUCTION, WORSE_THAN_PRODUCTION, OVER_BUDGET = (
    "push", "not_blessed", "same_as_production", "worse_than_production",
    "over_budget")
# Each decision as the step's result.
DECISIONS = {PUSH: "push",
             NOT_BLESSED: "don't push: the candidate is under the floor",
             SAME_AS_PRODUCTION: "don't push: the candidate is the model "
                                 "already in production",
             WORSE_THAN_PRODUCTION: "don't push: significantly worse than "
                                    "production",
             OVER_BUDGET: "don't push: no candidate is within the budget"}


def decide(candidate_fp, production_fp, above_floor, comparison, tolerance,
           push_equal, within_budget=True):
  """comparison: candidate vs production, or None with nothing in production."""
  if not above_floor:
    return NOT_BLESSED
  if not within_budget:
    return OVER_BUDGET
  if production_fp and candidate_fp == production_fp and not push_equal:
    return SAME_AS_PRODUCTION
  if comparison is not None and stats.significantly_worse(comparison,
                                                          tolerance):
    return WORSE_THAN_PRODUCTION
  return PUSH


def clears_floor(model, evaluation_uri, model_name, task):
  """The candidate's score in `evaluation_uri` (as `model_name`) against the
  floor ModelSelector recorded, as the task compares them."""
  return tasks.named(task).clears(score(evaluation_uri, model_name, task),
                                model.get_float_custom_property(FLOOR))


@component
def PushDecision(
    model: InputArtifact[standard_artifacts.Model],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    production_evaluation: InputArtifact[
        standard_artifacts.ModelEvaluation] = None,
    production_model: InputArtifact[standard_artifacts.Model] = None,
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation] = None,
    tolerance: Parameter[float] = 0.0,
    confidence: Parameter[float] = 0.95,
    push_equal: Parameter[int] = 0,
    task: Parameter[str] = ""):
  """production_evaluation: Evaluator_production's, which evaluates only
  with a model in production (evaluated()); without it the floor is checked
  on the candidate's score in the learned-vs-bilinear `evaluation` (the same
  eval examples)."""
  if not model.has_custom_property(FLOOR):
    raise ValueError(f"{model.uri}: no {FLOOR!r} property; the candidate must "
                     "come from ModelSelector")
  production_evaluation = evaluated(production_evaluation)
  if bool(production_model) != (production_evaluation is not None):
    raise ValueError(
        "Evaluator_production's evaluation must exist exactly when a model is "
        f"in production (model: {production_model and production_model.uri}, "
        f"evaluation: {production_evaluation and production_evaluation.uri})")
  if production_evaluation is not None:
    clears = clears_floor(model, production_evaluation.uri, "candidate", task)
  elif evaluation is not None:
    clears = clears_floor(model, evaluation.uri,
                          model.get_string_custom_property(SELECTED), task)
  else:
    raise ValueError("PushDecision needs Evaluator_production's or the "
                     "learned-vs-bilinear evaluation to check the floor")
  comparison = (read_comparison(production_evaluation.uri, "candidate",
                                confidence, task) if production_model else None)
  decision = decide(
      model.get_string_custom_property(FINGERPRINT),
      production_model.get_string_custom_property(FINGERPRINT)
      if production_model else None,
      clears, comparison, tolerance, bool(push_equal),
      json.loads(model.get_string_custom_property(COMPARISON) or "{}").get(
          "outcome") != sweep.OVER_BUDGET)
  blessing.set_int_custom_property("blessed", int(decision == PUSH))
  # Read by LatestBlessedModelStrategy to find the model now in production.
  blessing.set_int_custom_property("current_model_id", model.id)
  blessing.set_string_custom_property("current_model", model.uri)
  blessing.set_string_custom_property(DECISION, decision)
  result.record(blessing, DECISIONS[decision])
  if comparison is not None:
    blessing.set_string_custom_property(COMPARISON, json.dumps(
        {**comparison.as_dict(), "margin": -tolerance}))


class Executor(PushDecision.EXECUTOR_SPEC.executor_class,
               tfx_internals.EvaluatorTypedExecutor):
  """PushDecision's executor, typed as an Evaluator executor for Vertex.

  On Vertex, TFX's entrypoint (kubeflow_v2_run_executor) hands executors
  hashed integer artifact ids, and turns a blessing's `current_model_id` back
  into the model's Vertex ML Metadata name only for Evaluator executors. The
  compiled ProductionModelResolver looks the production model up by that
  name, so without it no model would ever be found there. Do() is
  PushDecision's function; locally ids are MLMD's and nothing changes.
  """


PushDecision.EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
