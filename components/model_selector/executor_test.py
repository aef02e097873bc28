"""ModelSelector's executor, run as TFX runs it, with every artifact on ram://.

The floor is resolved at run time from the Transform graph's label vocabulary
(on Vertex the data folder can't be listed when compiling), and recorded on
the selected model for PushDecision and the report.
"""
import json
import os

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from components.model_selector.component import (AHEAD, COMPARISON,
                                                 FINGERPRINT, FLOOR,
                                                 NUM_CLASSES, NOT_SIGNIFICANT,
                                                 SELECTED, UNDER_FLOOR,
                                                 ModelSelector, fingerprint,
                                                 result_line)
from components.result import recorded
from gate import stats
from testing.helpers import (artifact, ram_root, write_evaluation,
                             write_label_vocab, write_model)

CLEAR_WIN = (100, 45, 5)  # learned right on 45 images bilinear got wrong, 5 vice versa


def run_selector(learned_top1, classes=("a", "b", "c", "d"), table=CLEAR_WIN,
                 **exec_properties):
  root = ram_root("model-selector")
  learned = artifact(standard_artifacts.Model, f"{root}/learned")
  bilinear = artifact(standard_artifacts.Model, f"{root}/bilinear")
  write_model(learned.uri, {"saved_model.pb": b"learned"})
  write_model(bilinear.uri, {"saved_model.pb": b"bilinear"})
  evaluation = artifact(standard_artifacts.ModelEvaluation, f"{root}/eval")
  write_evaluation(evaluation.uri, {"learned": learned_top1, "bilinear": 0.2},
                   paired={"learned": table})
  graph = artifact(standard_artifacts.TransformGraph, f"{root}/transform")
  write_label_vocab(graph.uri, classes)
  model = artifact(standard_artifacts.Model, f"{root}/selected")
  executor = ModelSelector.EXECUTOR_SPEC.executor_class()
  executor.Do({"learned_model": [learned], "bilinear_model": [bilinear],
               "evaluation": [evaluation], "transform_graph": [graph]},
              {"model": [model]},
              {"min_gain": 0.0, "confidence": 0.95, **exec_properties})
  return model


def _saved_model_pb(model):
  with tf.io.gfile.GFile(os.path.join(model.uri, "Format-Serving",
                                      "saved_model.pb"), "rb") as f:
    return f.read()


def test_selects_and_copies_the_learned_model_on_ram():
  model = run_selector(0.7)
  assert model.get_string_custom_property(SELECTED) == "learned"
  assert _saved_model_pb(model) == b"learned"
  assert model.get_string_custom_property(FINGERPRINT) == fingerprint(
      model.uri)
  comparison = json.loads(model.get_string_custom_property(COMPARISON))
  assert comparison["outcome"] == AHEAD and comparison["n"] == 100


@pytest.mark.parametrize("classes, top1, outcome", [
    # Four classes in the vocabulary: chance is 0.25.
    (("a", "b", "c", "d"), 0.26, AHEAD),
    (("a", "b", "c", "d"), 0.25, UNDER_FLOOR),
    # Two classes: 0.45 is under chance, whatever the data folder said.
    (("a", "b"), 0.45, UNDER_FLOOR),
])
def test_default_floor_is_above_chance_for_the_vocabulary(classes, top1,
                                                          outcome):
  model = run_selector(top1, classes=classes)
  comparison = json.loads(model.get_string_custom_property(COMPARISON))
  assert comparison["outcome"] == outcome
  expected = "learned" if outcome == AHEAD else "bilinear"
  assert model.get_string_custom_property(SELECTED) == expected
  assert _saved_model_pb(model) == expected.encode()
  assert model.get_float_custom_property(FLOOR) == pytest.approx(
      1 / len(classes) + 1e-6)
  assert model.get_int_custom_property(NUM_CLASSES) == len(classes)


def test_a_configured_floor_wins_over_chance():
  model = run_selector(0.7, floor=0.75)
  assert model.get_string_custom_property(SELECTED) == "bilinear"
  assert json.loads(model.get_string_custom_property(COMPARISON))[
      "outcome"] == UNDER_FLOOR
  assert model.get_float_custom_property(FLOOR) == 0.75
  model = run_selector(0.7, floor=0.0, table=(100, 5, 5))
  assert model.get_string_custom_property(SELECTED) == "bilinear"
  assert json.loads(model.get_string_custom_property(COMPARISON))[
      "outcome"] == NOT_SIGNIFICANT
  assert model.get_float_custom_property(FLOOR) == 0.0


def test_the_selection_and_its_evidence_are_the_step_s_result():
  ahead = recorded(run_selector(0.7))
  # 45 vs 5 of 100 images: 40 points ahead.
  assert ahead.startswith("learned (the learned resizer is ahead; +40.0 "
                          "points, 95% CI +"), ahead
  assert ahead.endswith(", 100 eval images)"), ahead
  under = recorded(run_selector(0.7, floor=0.75))
  assert under.startswith("bilinear (the learned model is under the floor; "
                          "+40.0 points"), under


def test_the_result_line_names_the_outcome_and_states_the_test():
  comparison = stats.Comparison.from_dict(
      {"n": 1000, "candidate_only": 40, "baseline_only": 25,
       "difference": 0.015, "lower": -0.012, "upper": 0.042, "p_value": 0.31,
       "confidence": 0.95, "detectable": 0.03,
       "test": "exact McNemar (paired, two-sided)"})
  assert result_line("bilinear", NOT_SIGNIFICANT, comparison) == (
      "bilinear (no significant difference; +1.5 points, 95% CI "
      "-1.2…+4.2, p = 0.31, 1000 eval images)")
