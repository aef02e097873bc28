"""The paired gate: exact test, interval, decisions and the reasons given."""
import itertools

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types

from components.model_selector.component import (AHEAD, NOT_SIGNIFICANT,
                                                 UNDER_FLOOR, select)
from components.push_decision.component import (NOT_BLESSED, PUSH,
                                                SAME_AS_PRODUCTION,
                                                WORSE_THAN_PRODUCTION, decide)
from components.results_report.component import explain, results_table
from gate import stats, tfma_metric


@pytest.mark.parametrize("b, c, p", [
    (10, 2, 2 * 79 / 4096),   # P(X <= 2 | 12, 1/2) = (1 + 12 + 66) / 2^12
    (0, 6, 2 / 64),
    (5, 5, 1.0),
    (0, 0, 1.0),
    (30, 10, 0.002221),       # scipy.stats.binomtest(10, 40).pvalue
])
def test_known_tables_give_known_p_values(b, c, p):
  assert stats.mcnemar_exact_p(b, c) == pytest.approx(p, rel=1e-3)
  assert stats.mcnemar_exact_p(c, b) == pytest.approx(p, rel=1e-3)


def test_interval_is_clopper_pearson_mapped_to_the_difference():
  # 0 of 6 discordant pairs favour the candidate: pi in [0, 1 - 0.025^(1/6)].
  c = stats.paired_accuracy(100, 0, 6)
  assert c.difference == pytest.approx(-0.06)
  assert c.lower == pytest.approx(-0.06)
  assert c.upper == pytest.approx((2 * (1 - 0.025 ** (1 / 6)) - 1) * 6 / 100)


def test_interval_excludes_zero_exactly_when_the_test_rejects():
  for n, b, c in itertools.product([60, 500], range(0, 25, 3), range(0, 25, 2)):
    comp = stats.paired_accuracy(n, b, c, confidence=0.95)
    assert (comp.p_value < 0.05) == (comp.lower > 0 or comp.upper < 0), (b, c)
    assert comp.lower <= comp.difference <= comp.upper


def test_identical_predictions_never_name_a_winner():
  for n in (8, 65, 1000):
    comp = stats.paired_accuracy(n, 0, 0)
    assert comp.p_value == 1.0 and comp.lower == comp.upper == 0.0
    assert select(True, comp, 0.0) == ("bilinear", NOT_SIGNIFICANT)
    assert not stats.significantly_worse(comp, 0.0)


def test_a_clear_win_selects_learned_and_a_small_one_does_not():
  clear = stats.paired_accuracy(1000, 90, 30)
  assert clear.p_value < 1e-6 and clear.lower > 0.03
  assert select(True, clear, 0.0) == ("learned", AHEAD)
  assert select(True, clear, 0.05) == ("bilinear", NOT_SIGNIFICANT)  # margin
  assert select(False, clear, 0.0) == ("bilinear", UNDER_FLOOR)
  noisy = stats.paired_accuracy(65, 9, 4)  # +7.7 points on 65 images
  assert noisy.difference > 0.07 and noisy.p_value > 0.05
  assert select(True, noisy, 0.0) == ("bilinear", NOT_SIGNIFICANT)


def test_bad_tables_and_confidence_are_refused():
  with pytest.raises(ValueError, match="inconsistent"):
    stats.paired_accuracy(10, 8, 5)
  with pytest.raises(ValueError, match="confidence"):
    stats.paired_accuracy(10, 1, 1, confidence=1.0)


def test_production_gate_is_non_inferiority():
  worse = stats.paired_accuracy(1000, 20, 80)      # -6 points, clearly
  slightly = stats.paired_accuracy(1000, 40, 50)   # -1 point, not significant
  assert decide("a", "b", True, worse, 0.0, False) == WORSE_THAN_PRODUCTION
  assert decide("a", "b", True, worse, 0.10, False) == PUSH  # tolerated
  assert decide("a", "b", True, slightly, 0.0, False) == PUSH
  assert decide("a", None, True, None, 0.0, False) == PUSH  # first model
  assert decide("a", "a", True, None, 0.0, False) == SAME_AS_PRODUCTION
  assert decide("a", "a", True, None, 0.0, True) == PUSH
  assert decide("a", "b", False, slightly, 0.0, False) == NOT_BLESSED


def test_detectable_difference_and_the_power_note():
  small = stats.paired_accuracy(65, 9, 4)
  assert small.detectable > 0.05
  note = stats.power_note(small)
  assert "65 images" in note and "too small to detect a 5-point" in note
  assert f"{100 * small.detectable:.1f} points" in note
  big = stats.paired_accuracy(5000, 300, 250)
  assert big.detectable < 0.05 and stats.power_note(big) == ""
  # More disagreement between the models needs more images.
  assert stats.detectable_difference(1000, 400, 0.95) > \
      stats.detectable_difference(1000, 100, 0.95)


def _selection(n, b, c, outcome, margin=0.0):
  return {**stats.paired_accuracy(n, b, c).as_dict(), "margin": margin,
          "outcome": outcome}


def test_reason_strings_state_the_decision_and_the_numbers():
  top1 = {"learned": 0.62, "bilinear": 0.60}
  prod_none = {"comparison": None, "production_top1": None}
  sel = _selection(1000, 60, 40, NOT_SIGNIFICANT)
  reason = explain("bilinear", sel, top1, 0.5, 0.0, 0.0, prod_none, "push")
  assert reason.startswith("bilinear pushed: no significant difference")
  assert "+2.0 points, 95% CI" in reason and "p = 0.057" in reason
  assert "1000 eval images" in reason and "cheaper bilinear" in reason
  assert "first model in production" in reason

  sel = _selection(1000, 90, 30, AHEAD)
  reason = explain("learned", sel, top1, 0.5, 0.0, 0.0, prod_none, "push")
  assert reason.startswith("learned pushed: the learned resizer (0.6200) is "
                           "ahead of bilinear (0.6000)")
  assert "p < 0.001" in reason

  prod = {"production_top1": 0.70,
          "comparison": stats.paired_accuracy(1000, 20, 80).as_dict()}
  reason = explain("learned", sel, top1, 0.5, 0.0, 0.01, prod,
                   "worse_than_production")
  assert reason.startswith("nothing pushed:")
  assert "significantly worse than production (0.7000) by more than 1.0 " \
      "points" in reason and "-6.0 points" in reason

  sel = _selection(1000, 30, 90, NOT_SIGNIFICANT)
  reason = explain("bilinear", sel, top1, 0.5, 0.0, 0.0, prod_none, "push")
  assert "bilinear is significantly better" in reason

  low = {"learned": 0.30, "bilinear": 0.31}
  sel = _selection(100, 3, 4, UNDER_FLOOR)
  reason = explain("bilinear", sel, low, 0.34, 0.0, 0.0, prod_none,
                   "not_blessed")
  assert "both under the floor 0.3400" in reason


def test_results_table_shows_both_gates_and_the_power_note():
  sel = _selection(65, 9, 4, NOT_SIGNIFICANT)
  results = {
      "models": {"learned": {"params": 12_000, "top1": 0.7, "train_sample_top1":
                             0.8},
                 "bilinear": {"params": 10_000, "top1": 0.62,
                              "train_sample_top1": None}},
      "pushed": "bilinear", "selection": sel,
      "production": {"comparison": None}, "reason": "because",
      "power_note": stats.power_note(stats.Comparison.from_dict(sel))}
  md = results_table(results)
  assert "| learned | 0.012 | 70.00% | 80.00% |" in md
  assert "| bilinear (pushed) | 0.010 | 62.00% |  |" in md
  assert "| learned vs bilinear | +7.7 | 95% CI" in md
  assert "| candidate vs production | no model in production |" in md
  assert "too small to detect a 5-point difference" in md


def _inputs(label, candidate, baseline):
  return metric_types.StandardMetricInputs(
      labels=np.array([label]),
      predictions={"learned": np.array(candidate, np.float32),
                   "bilinear": np.array(baseline, np.float32)},
      example_weights={"learned": np.array([1.0]),
                       "bilinear": np.array([1.0])})


def test_tfma_paired_metric_counts_the_discordant_examples():
  config = tfma.EvalConfig(model_specs=[
      tfma.ModelSpec(name="learned"),
      tfma.ModelSpec(name="bilinear", is_baseline=True)])
  computations = tfma_metric.PairedAccuracy().computations(
      eval_config=config, model_names=["learned", "bilinear"])
  table_computation, derived = computations
  combiner = table_computation.combiner
  rows = [(0, [.9, .1], [.8, .2]),   # both right
          (1, [.2, .8], [.6, .4]),   # candidate only
          (1, [.3, .7], [.1, .9]),   # both right
          (0, [.4, .6], [.7, .3]),   # baseline only
          (2, [.1, .2, .7], [.5, .3, .2]),  # candidate only
          (2, [.6, .3, .1], [.6, .3, .1])]  # both wrong
  halves = []
  for part in (rows[:3], rows[3:]):  # merged as Beam would
    acc = combiner.create_accumulator()
    for row in part:
      acc = combiner.add_input(acc, _inputs(*row))
    halves.append(acc)
  table = combiner.extract_output(combiner.merge_accumulators(halves))
  values = derived.result(table)
  by_name = {k.name: v for k, v in values.items()}
  assert by_name == {tfma_metric.EXAMPLES: 6, tfma_metric.CANDIDATE_ONLY: 2,
                     tfma_metric.BASELINE_ONLY: 1}
  assert all(k.is_diff and k.model_name == "learned" for k in values)
  # No baseline (nothing in production yet): nothing to compute.
  alone = tfma.EvalConfig(model_specs=[tfma.ModelSpec(name="candidate")])
  assert tfma_metric.PairedAccuracy().computations(
      eval_config=alone, model_names=["candidate"]) == []


def test_tfma_paired_squared_error_sums_and_the_paired_t_test():
  config = tfma.EvalConfig(model_specs=[
      tfma.ModelSpec(name="learned", prediction_key="prediction"),
      tfma.ModelSpec(name="bilinear", prediction_key="prediction",
                     is_baseline=True)])
  computations = tfma_metric.PairedSquaredError().computations(
      eval_config=config, model_names=["learned", "bilinear"])
  rows = [(10.0, 11.0, 13.0), (20.0, 18.0, 20.0), (30.0, 30.0, 36.0),
          (40.0, 43.0, 41.0)]  # (label, learned, bilinear); training mean 25
  by_model = {}
  for sums, derived in zip(computations[::2], computations[1::2]):
    combiner = sums.combiner
    acc = combiner.create_accumulator()
    for label, learned, bilinear in rows:
      acc = combiner.add_input(acc, metric_types.StandardMetricInputs(
          labels=np.array([label]),
          predictions={m: {"prediction": np.array([p], np.float32),
                           "training_mean": np.array([25.0], np.float32)}
                       for m, p in (("learned", learned),
                                    ("bilinear", bilinear))},
          example_weights={"learned": np.array([1.0]),
                           "bilinear": np.array([1.0])}))
    result = derived.result(combiner.extract_output(acc))
    [model] = {k.model_name for k in result}
    by_model[model] = {k.name: v for k, v in result.items()}
  values = by_model["learned"]
  # The baseline gets the constant predictor's error too (the floor of
  # whichever model is selected), and nothing paired.
  assert by_model["bilinear"] == {
      tfma_metric.CONSTANT_SE: values[tfma_metric.CONSTANT_SE]}
  d = [(b - y) ** 2 - (c - y) ** 2 for y, c, b in rows]  # [8, -4, 36, -8]
  assert values[tfma_metric.SQ_EXAMPLES] == 4
  assert values[tfma_metric.SQ_DIFF_SUM] == pytest.approx(sum(d))
  assert values[tfma_metric.SQ_DIFF_SUMSQ] == pytest.approx(
      sum(x * x for x in d))
  assert values[tfma_metric.CONSTANT_SE] == pytest.approx(
      np.mean([(25 - y) ** 2 for y, _, _ in rows]))
  comp = stats.paired_squared_error(4, sum(d), sum(x * x for x in d))
  assert comp.difference == pytest.approx(np.mean(d))  # MSE reduction: 8
  # scipy's paired t-test on the same differences.
  from scipy import stats as scipy_stats  # pylint: disable=import-outside-toplevel
  assert comp.p_value == pytest.approx(
      scipy_stats.ttest_1samp(d, 0.0).pvalue, rel=1e-6)
  assert comp.lower < 0 < comp.upper and comp.metric == "MSE"
  assert stats.describe(comp) == (
      f"MSE 8 lower, 95% CI {comp.lower:+.4g}…{comp.upper:+.4g}, "
      f"p = {comp.p_value:.2g}, 4 eval images")
