"""PushDecision's executor, run as TFX runs it, with every artifact on ram://.

The floor comes from the candidate (ModelSelector recorded the one it resolved
from the label vocabulary), the candidate's top-1 from Evaluator_production,
or with nothing in production from the learned-vs-bilinear evaluation.
"""
import json

import pytest
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import standard_artifacts

from components.model_selector.component import FINGERPRINT, FLOOR, SELECTED
from components.production_evaluator.executor import NO_BASELINE, NOT_EVALUATED
from components.push_decision.component import (DECISION, NOT_BLESSED, PUSH,
                                                SAME_AS_PRODUCTION,
                                                WORSE_THAN_PRODUCTION,
                                                PushDecision)
from components.result import recorded
from testing.helpers import (artifact, ram_root, write_evaluation,
                             write_model)


def model_artifact(uri, fp, floor=None, artifact_id=7):
  model = standard_artifacts.Model()
  model.uri, model.id = uri, artifact_id
  write_model(uri)
  model.set_string_custom_property(FINGERPRINT, fp)
  if floor is not None:
    model.set_float_custom_property(FLOOR, floor)
  return model


def decide(candidate_top1, floor=0.34, production=None, table=None,
           push_equal=0, where="local"):
  """production: (fingerprint, top-1) of the model in production, or None:
  then Evaluator_production was skipped (where="local") or evaluated nothing
  (where="vertex"), and the learned-vs-bilinear evaluation has the top-1."""
  root = ram_root("push-decision")
  model = model_artifact(f"{root}/candidate", "fp-candidate", floor)
  model.set_string_custom_property(SELECTED, "learned")
  production_evaluation = artifact(standard_artifacts.ModelEvaluation,
                                   f"{root}/production-eval")
  inputs = {"model": [model], "production_evaluation": [production_evaluation]}
  if production is None:
    learned_vs_bilinear = artifact(standard_artifacts.ModelEvaluation,
                                   f"{root}/eval")
    write_evaluation(learned_vs_bilinear.uri, {"learned": candidate_top1,
                                               "bilinear": 0.01})
    inputs["evaluation"] = [learned_vs_bilinear]
    if where == "local":
      inputs["production_evaluation"] = []
    else:
      production_evaluation.set_string_custom_property(NOT_EVALUATED,
                                                       NO_BASELINE)
  else:
    write_evaluation(production_evaluation.uri,
                     {"candidate": candidate_top1, "production": production[1]},
                     paired={"candidate": table})
    inputs["production_model"] = [
        model_artifact(f"{root}/production", production[0], artifact_id=3)]
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = f"{root}/blessing"
  PushDecision.EXECUTOR_SPEC.executor_class().Do(
      inputs, {"blessing": [blessing]},
      {"tolerance": 0.0, "confidence": 0.95, "push_equal": push_equal})
  return model, blessing


@pytest.mark.parametrize("where", ["local", "vertex"])
def test_the_first_model_above_the_floor_is_pushed(where):
  model, blessing = decide(0.5, where=where)
  assert blessing.get_string_custom_property(DECISION) == PUSH
  assert blessing.get_int_custom_property("blessed") == 1
  # What LatestBlessedModelStrategy follows to the model in production.
  assert blessing.get_int_custom_property("current_model_id") == model.id
  assert blessing.get_string_custom_property("current_model") == model.uri
  assert not blessing.get_string_custom_property("comparison")


@pytest.mark.parametrize("where", ["local", "vertex"])
@pytest.mark.parametrize("top1, floor, decision", [
    (0.34, 0.34, PUSH),          # at the floor is enough, as TFMA's bound
    (0.33, 0.34, NOT_BLESSED),   # just under the recorded floor
    (0.9, 0.95, NOT_BLESSED),
])
def test_the_recorded_floor_decides(top1, floor, decision, where):
  _, blessing = decide(top1, floor=floor, where=where)
  assert blessing.get_string_custom_property(DECISION) == decision
  assert recorded(blessing) == {
      PUSH: "push",
      NOT_BLESSED: "don't push: the candidate is under the floor"}[decision]
  assert blessing.get_int_custom_property("blessed") == int(decision == PUSH)


def test_against_production():
  _, worse = decide(0.5, production=("fp-prod", 0.8), table=(100, 0, 30))
  assert worse.get_string_custom_property(DECISION) == WORSE_THAN_PRODUCTION
  assert recorded(worse) == \
      "don't push: significantly worse than production"
  assert worse.get_int_custom_property("blessed") == 0
  assert json.loads(worse.get_string_custom_property("comparison"))[
      "baseline_only"] == 30
  _, same = decide(0.5, production=("fp-candidate", 0.5), table=(100, 0, 0))
  assert same.get_string_custom_property(DECISION) == SAME_AS_PRODUCTION
  assert recorded(same) == \
      "don't push: the candidate is the model already in production"
  _, again = decide(0.5, production=("fp-candidate", 0.5), table=(100, 0, 0),
                    push_equal=1)
  assert again.get_string_custom_property(DECISION) == PUSH
  assert recorded(again) == "push"


def test_the_production_evaluation_must_match_the_production_model():
  root = ram_root("push-decision-mismatch")
  model = model_artifact(f"{root}/candidate", "fp-candidate", 0.34)
  production = model_artifact(f"{root}/production", "fp-prod", artifact_id=3)
  skipped = artifact(standard_artifacts.ModelEvaluation,
                     f"{root}/production-eval")
  skipped.set_string_custom_property(NOT_EVALUATED, NO_BASELINE)
  run = PushDecision.EXECUTOR_SPEC.executor_class().Do
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = f"{root}/blessing"
  with pytest.raises(ValueError, match="exactly when a model is in production"):
    run({"model": [model], "production_model": [production],
         "production_evaluation": [skipped]}, {"blessing": [blessing]},
        {"tolerance": 0.0, "confidence": 0.95, "push_equal": 0})


def test_a_candidate_without_a_floor_is_refused():
  with pytest.raises(ValueError, match="no 'floor' property"):
    decide(0.5, floor=None)


def test_the_executor_gets_the_evaluator_blessing_translation_on_vertex():
  # kubeflow_v2_run_executor turns current_model_id into the model's Vertex
  # ML Metadata name only for Evaluator executors (see component.py).
  assert issubclass(PushDecision.EXECUTOR_SPEC.executor_class,
                    evaluator_executor.Executor)
