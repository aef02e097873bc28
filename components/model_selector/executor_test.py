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

from components.model_selector.component import (AHEAD, CANDIDATES,
                                                 COMPARISON, FINGERPRINT,
                                                 FLOOR, NUM_CLASSES,
                                                 NOT_SIGNIFICANT, SELECTED,
                                                 UNDER_FLOOR, ModelSelector,
                                                 fingerprint, result_line)
from components.candidate_inputs import model_key, run_key
from components.result import recorded
from gate import stats
from testing.helpers import (artifact, cost_record, ram_root,
                             write_evaluation, write_file, write_label_vocab,
                             write_model)
from trainer.training import MODEL_INFO

CLEAR_WIN = (100, 45, 5)  # learned right on 45 images bilinear got wrong, 5 vice versa


# The learned model costs more to serve than bilinear, as at the same sizes.
COSTS = {"learned": 2.0e9, "bilinear": 1.0e9}


def run_selector(learned_top1, classes=("a", "b", "c", "d"), table=CLEAR_WIN,
                 bilinear_top1=0.3, **exec_properties):
  root = ram_root("model-selector")
  inputs = {}
  for name in ("learned", "bilinear"):
    model = artifact(standard_artifacts.Model, f"{root}/{name}")
    write_model(model.uri, {"saved_model.pb": name.encode()})
    run = artifact(standard_artifacts.ModelRun, f"{root}/runs/{name}")
    write_file(os.path.join(run.uri, MODEL_INFO), json.dumps(
        {"cost": cost_record(COSTS[name])}).encode())
    inputs[model_key(name)], inputs[run_key(name)] = [model], [run]
  evaluation = artifact(standard_artifacts.ModelEvaluation, f"{root}/eval")
  write_evaluation(evaluation.uri, {"learned": learned_top1,
                                    "bilinear": bilinear_top1},
                   pairs={("learned", "bilinear"): table})
  graph = artifact(standard_artifacts.TransformGraph, f"{root}/transform")
  write_label_vocab(graph.uri, classes)
  model = artifact(standard_artifacts.Model, f"{root}/selected")
  executor = ModelSelector.EXECUTOR_SPEC.executor_class()
  executor.Do({**inputs, "evaluation": [evaluation],
               "transform_graph": [graph]},
              {"model": [model]},
              {"min_gain": 0.0, "confidence": 0.95, "cost": "flops",
               CANDIDATES: json.dumps(["learned", "bilinear"]),
               **exec_properties})
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


@pytest.mark.parametrize("classes, top1, bilinear, outcome", [
    # Four classes in the vocabulary: chance is 0.25.
    (("a", "b", "c", "d"), 0.26, 0.255, AHEAD),
    (("a", "b", "c", "d"), 0.25, 0.2, UNDER_FLOOR),
    # Two classes: 0.45 is under chance, whatever the data folder said.
    (("a", "b"), 0.45, 0.3, UNDER_FLOOR),
])
def test_default_floor_is_above_chance_for_the_vocabulary(classes, top1,
                                                          bilinear, outcome):
  model = run_selector(top1, classes=classes, bilinear_top1=bilinear)
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


def run_sweep(scores, costs, pairs, n=200, **exec_properties):
  """ModelSelector over candidates {name: top-1}, {name: GFLOPs}, known
  tables {(a, b): (a_only, b_only)}."""
  root = ram_root("model-selector-sweep")
  inputs = {}
  for name in scores:
    model = artifact(standard_artifacts.Model, f"{root}/models/{name}")
    write_model(model.uri, {"saved_model.pb": name.encode()})
    run = artifact(standard_artifacts.ModelRun, f"{root}/runs/{name}")
    write_file(os.path.join(run.uri, MODEL_INFO), json.dumps(
        {"cost": cost_record(costs[name] * 1e9, latency_ms=costs[name])}
    ).encode())
    inputs[model_key(name)], inputs[run_key(name)] = [model], [run]
  evaluation = artifact(standard_artifacts.ModelEvaluation, f"{root}/eval")
  write_evaluation(evaluation.uri, scores, pairs={
      pair: (n, *table) for pair, table in pairs.items()})
  graph = artifact(standard_artifacts.TransformGraph, f"{root}/transform")
  write_label_vocab(graph.uri, ("a", "b"))
  model = artifact(standard_artifacts.Model, f"{root}/selected")
  ModelSelector.EXECUTOR_SPEC.executor_class().Do(
      {**inputs, "evaluation": [evaluation], "transform_graph": [graph]},
      {"model": [model]},
      {"min_gain": 0.0, "confidence": 0.95, "cost": "flops",
       CANDIDATES: json.dumps(list(scores)), **exec_properties})
  return model


SWEEP_SCORES = {"learned_300_150": 0.80, "bilinear_300_150": 0.78,
                "bilinear_300_75": 0.70}
SWEEP_COSTS = {"learned_300_150": 4.0, "bilinear_300_150": 2.0,
               "bilinear_300_75": 0.5}
# bilinear_150 is 2 points behind learned (not significant on 200), the 75 px
# one 10 points behind (significant).
SWEEP_PAIRS = {("learned_300_150", "bilinear_300_150"): (12, 8),
               ("learned_300_150", "bilinear_300_75"): (24, 4),
               ("bilinear_300_150", "bilinear_300_75"): (20, 4)}


def test_three_candidates_push_the_cheapest_not_behind_the_best():
  model = run_sweep(SWEEP_SCORES, SWEEP_COSTS, SWEEP_PAIRS)
  assert model.get_string_custom_property(SELECTED) == "bilinear_300_150"
  assert _saved_model_pb(model) == b"bilinear_300_150"
  record = json.loads(model.get_string_custom_property(COMPARISON))
  decision = record["sweep"]
  assert (record["outcome"], decision["best"]) == ("costlier",
                                                   "learned_300_150")
  assert decision["comparisons"]["bilinear_300_150"]["difference"] == \
      pytest.approx(-0.02)
  assert decision["comparisons"]["bilinear_300_75"]["difference"] == \
      pytest.approx(-0.10)
  assert decision["dropped"]["bilinear_300_75"].startswith("behind the best")
  assert "difference" not in record  # not the pair's learned-vs-bilinear
  line = recorded(model)
  assert line.startswith("bilinear_300_150 (chose bilinear_300_150 (2 GFLOPs "
                         "per image), the cheapest not behind the best, "
                         "learned_300_150"), line


def test_a_budget_and_the_latency_cost_reach_the_gate():
  model = run_sweep(SWEEP_SCORES, SWEEP_COSTS, SWEEP_PAIRS, cost="latency",
                    max_gflops=1.0)
  record = json.loads(model.get_string_custom_property(COMPARISON))
  assert model.get_string_custom_property(SELECTED) == "bilinear_300_75"
  assert record["outcome"] == "within_budget" and record["cost"] == "latency"
  assert record["budgets"] == {"max_gflops": 1.0, "max_latency_ms": None}
  assert "ms per image at batch 1" in record["sweep"]["reason"]


def test_a_candidate_without_its_run_is_refused_by_name():
  with pytest.raises(ValueError, match="'bilinear_300_75' has 0 artifacts "
                     "in its input 'run_bilinear_300_75'"):
    root = ram_root("model-selector-missing")
    model = artifact(standard_artifacts.Model, f"{root}/selected")
    ModelSelector.EXECUTOR_SPEC.executor_class().Do(
        {"model_bilinear_300_75": [model]}, {"model": [model]},
        {CANDIDATES: json.dumps(["bilinear_300_75"])})
