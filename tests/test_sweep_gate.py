"""The gate over K candidates (gate/sweep.py) and the candidates' spelling
(pipeline/candidates.py), on known paired tables."""
import itertools

import numpy as np
import pytest

from components.model_selector.component import (AHEAD, NOT_SIGNIFICANT,
                                                 UNDER_FLOOR, select)
from gate import stats, sweep
from pipeline import candidates


def _cost(gflops, latency_ms=1.0):
  return {"flops_per_image": gflops * 1e9, "latency_ms_batch1": latency_ms}


# --- candidates ---------------------------------------------------------------

def test_candidates_parse_both_spellings_and_name_by_resizer_and_size():
  parsed = candidates.parse(
      ["bilinear:150", "learned:300-150", "learned:300-112", "bilinear:112"],
      input_size=300)
  assert [(c.resizer, c.input_size, c.target_size, c.name) for c in parsed] == [
      ("bilinear", 300, 150, "bilinear_300_150"),
      ("learned", 300, 150, "learned_300_150"),
      ("learned", 300, 112, "learned_300_112"),
      ("bilinear", 300, 112, "bilinear_300_112")]
  assert candidates.stored_size(candidates.parse(
      ["learned:400-200", "bilinear:120"], input_size=300)) == 400


def test_the_default_pair_keeps_todays_names():
  pair = candidates.default_pair(300, 150)
  assert [(c.name, c.resizer, c.input_size, c.target_size) for c in pair] == [
      ("learned", "learned", 300, 150), ("bilinear", "bilinear", 300, 150)]
  # One of each resizer: the resizer alone names it, whatever the sizes.
  assert [c.name for c in candidates.parse(
      ["learned:300-112", "bilinear:150"], 300)] == ["learned", "bilinear"]


@pytest.mark.parametrize("items, words", [
    (["learned:300-150", "cubic:150"], ["'cubic:150'", "unknown resizer",
                                        "RESIZER:SIZE or RESIZER:INPUT-TARGET"]),
    (["learned:300x150", "bilinear:150"], ["'learned:300x150'",
                                           "RESIZER:INPUT-TARGET"]),
    (["learned", "bilinear:150"], ["'learned'", "RESIZER:SIZE"]),
    (["learned:150-300", "bilinear:150"], ["'learned:150-300'", "below the "
                                           "input size 150"]),
    (["bilinear:0", "learned:300-150"], ["'bilinear:0'", "positive"]),
    (["learned:300-150", "learned:300-150"], ["repeats", "once"]),
    (["bilinear:150", "bilinear:300-150"], ["'bilinear:300-150' repeats "
                                            "'bilinear:150'"]),
    (["learned:300-150"], ["1 given", "at least two"]),
])
def test_a_bad_candidate_is_refused_naming_it_and_the_form(items, words):
  with pytest.raises(candidates.CandidateError) as error:
    candidates.parse(items, input_size=300)
  for word in words:
    assert word in str(error.value)
  assert str(error.value).startswith("--candidates: ")


# --- statistics ---------------------------------------------------------------

def test_worse_p_value_inverts_the_stated_interval():
  """significantly_worse at confidence C <=> worse_p_value < 1 - C, for
  both paired tests, every tolerance and level tried."""
  rng = np.random.default_rng(0)
  for n, b, c in itertools.product([50, 400], range(0, 30, 4), range(0, 40, 3)):
    if b + c > n:
      continue
    for tolerance, confidence in itertools.product(
        [0.0, 0.02, 0.05, -0.01], [0.8, 0.9, 0.95, 0.99]):
      comp = stats.paired_accuracy(n, b, c, confidence)
      assert stats.significantly_worse(comp, tolerance) == (
          stats.worse_p_value(comp, tolerance) < 1 - confidence), (n, b, c)
  for _ in range(200):
    d = rng.normal(rng.normal(0, 0.5), 1.0, size=int(rng.integers(5, 80)))
    for tolerance, confidence in itertools.product([0.0, 0.3], [0.9, 0.95]):
      comp = stats.paired_squared_error(len(d), d.sum(), (d * d).sum(),
                                        confidence)
      assert stats.significantly_worse(comp, tolerance) == (
          stats.worse_p_value(comp, tolerance) < 1 - confidence)


def test_holm_adjusts_step_down_and_keeps_the_order():
  assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
  assert stats.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
  assert stats.holm([]) == []


# --- the decision -------------------------------------------------------------

def _tables(n, tables):
  """compare(a, b) from known paired tables {(a, b): (a-only, b-only)}."""
  def compare(a, b):
    if (a, b) in tables:
      only_a, only_b = tables[(a, b)]
    else:
      only_b, only_a = tables[(b, a)]
    return stats.paired_accuracy(n, only_a, only_b, 0.95)
  return compare


def test_the_cheapest_candidate_not_behind_the_best_is_chosen():
  n = 400
  entries = [sweep.Entry("big", 0.90, _cost(4.0), True),
             sweep.Entry("mid", 0.88, _cost(2.0), True),
             sweep.Entry("small", 0.80, _cost(1.0), True),
             sweep.Entry("huge", 0.89, _cost(8.0), True)]
  compare = _tables(n, {("mid", "big"): (10, 18),     # -2 points: not sig.
                        ("small", "big"): (4, 44)})   # -10 points: sig.
  decision = sweep.decide(entries, compare, tolerance=0.0, confidence=0.95)
  assert (decision.best, decision.chosen, decision.outcome) == (
      "big", "mid", sweep.COSTLIER)
  assert set(decision.comparisons) == {"mid", "small"}
  assert decision.comparisons["small"].difference == pytest.approx(-0.10)
  assert set(decision.dropped) == {"small", "huge"}
  assert decision.dropped["huge"].startswith("costlier than the best (8 GFLOPs"
                                             " per image vs 4 GFLOPs")
  assert "-10.0 points" in decision.dropped["small"]
  assert decision.dropped["small"].endswith(
      "(x3: the best is the highest of 4; Holm over 2 compared)")
  assert decision.reason.startswith(
      "chose mid (2 GFLOPs per image), the cheapest not behind the best, big "
      "(4 GFLOPs per image), by more than the tolerance: -2.0 points")
  assert "small (1 GFLOPs per image) dropped: behind the best" in decision.reason
  # Each p times the 3 rivals of which the best is the highest; then Holm:
  # the smaller one doubled, the larger one's at least that.
  assert decision.rivals == 3
  raw = {k: 3 * stats.worse_p_value(v, 0.0)
         for k, v in decision.comparisons.items()}
  assert decision.adjusted_p["small"] == pytest.approx(2 * raw["small"])
  assert decision.adjusted_p["mid"] == pytest.approx(min(1, max(
      2 * raw["small"], raw["mid"])))


def test_the_correction_keeps_a_candidate_one_test_alone_would_drop():
  n = 400
  # 10 vs 23 discordant: two-sided exact p ~ 0.035 alone, above 0.05 x 1/3.
  table = (10, 23)
  alone = stats.worse_p_value(stats.paired_accuracy(n, *table), 0.0)
  assert 0.025 < alone < 0.05
  two = [sweep.Entry("best", 0.9, _cost(3.0), True),
         sweep.Entry("cheap", 0.87, _cost(1.0), True)]
  assert sweep.decide(two, _tables(n, {("cheap", "best"): table}),
                      0.0, 0.95).chosen == "best"
  many = two + [sweep.Entry(f"other{i}", 0.899, _cost(2.0 + i / 10), True)
                for i in range(3)]
  tables = {("cheap", "best"): table,
            **{(f"other{i}", "best"): (5, 5) for i in range(3)}}
  decision = sweep.decide(many, _tables(n, tables), 0.0, 0.95)
  assert decision.chosen == "cheap"
  # x4 rivals of which the best is the highest, x4 by Holm (the others'
  # p-values are larger)
  assert decision.adjusted_p["cheap"] == pytest.approx(min(1, 16 * alone))


def test_a_lead_chosen_among_several_is_discounted_for_the_choice():
  """The best is the highest of the rivals' scores on the same images: a
  cheap candidate behind it by a margin one test alone finds is kept when
  the lead is the larger of two (p doubled), and dropped when the other
  rival is under the floor, so that the best had no one to be chosen from."""
  n = 400
  table = (10, 23)
  alone = stats.worse_p_value(stats.paired_accuracy(n, *table), 0.0)
  assert 0.025 < alone < 0.05 < 2 * alone
  entries = [sweep.Entry("cheap", 0.87, _cost(1.0), True),
             sweep.Entry("best", 0.90, _cost(2.0), True),
             sweep.Entry("other", 0.88, _cost(3.0), True)]
  compare = _tables(n, {("cheap", "best"): table})
  decision = sweep.decide(entries, compare, 0.0, 0.95)
  assert (decision.chosen, decision.rivals) == ("cheap", 2)
  assert decision.adjusted_p["cheap"] == pytest.approx(2 * alone)
  assert decision.reason.endswith(
      f"adjusted {stats.p_text(2 * alone)} (x2: the best is the highest of 3;"
      " Holm over 1 compared); other (3 GFLOPs per image) "
      "dropped: costlier than the best (3 GFLOPs per image vs 2 GFLOPs per "
      "image) and no better")
  floor = entries[:2] + [sweep.Entry("other", 0.40, _cost(3.0), False)]
  decision = sweep.decide(floor, compare, 0.0, 0.95)
  assert (decision.chosen, decision.rivals) == ("best", 1)
  assert decision.adjusted_p["cheap"] == pytest.approx(alone)
  assert decision.dropped["cheap"].endswith(stats.p_text(alone))


def test_a_budget_is_respected_and_named():
  n = 400
  entries = [sweep.Entry("big", 0.90, _cost(4.0, 30.0), True),
             sweep.Entry("mid", 0.89, _cost(2.0, 12.0), True),
             sweep.Entry("small", 0.80, _cost(1.0, 5.0), True)]
  compare = _tables(n, {("mid", "big"): (10, 14), ("small", "big"): (4, 44),
                        ("small", "mid"): (6, 42)})
  # Within 1.5 GFLOPs only small, which is behind the best: the best
  # within the budget, said so.
  by_gflops = sweep.decide(entries, compare, 0.0, 0.95,
                           budgets={"max_gflops": 1.5})
  assert (by_gflops.chosen, by_gflops.outcome) == ("small",
                                                   sweep.WITHIN_BUDGET)
  assert by_gflops.dropped["big"] == ("4 GFLOPs per image over the budget "
                                      "of 1.5")
  assert by_gflops.reason.startswith(
      "chose small (1 GFLOPs per image), the best within the budget; the "
      "best, big, is over it")
  # By latency, within 15 ms: the best is over it, mid is not behind it.
  by_latency = sweep.decide(entries, compare, 0.0, 0.95, cost="latency",
                            budgets={"max_latency_ms": 15.0})
  assert (by_latency.best, by_latency.chosen) == ("big", "mid")
  assert "30 ms per image at batch 1 over the budget of 15" in \
      by_latency.reason
  assert by_latency.outcome == sweep.COSTLIER  # small is behind
  none = sweep.decide(entries, compare, 0.0, 0.95,
                      budgets={"max_gflops": 0.5})
  assert (none.chosen, none.outcome) == ("small", sweep.OVER_BUDGET)


def test_under_the_floor_never_chosen_unless_nothing_clears_it():
  n = 400
  entries = [sweep.Entry("big", 0.9, _cost(4.0), True),
             sweep.Entry("small", 0.45, _cost(1.0), False)]
  decision = sweep.decide(entries, _tables(n, {("small", "big"): (0, 0)}),
                          0.0, 0.95)
  assert (decision.chosen, decision.dropped) == ("big", {
      "small": "under the floor"})
  assert decision.outcome == sweep.CHEAPEST
  low = [sweep.Entry("big", 0.4, _cost(4.0), False),
         sweep.Entry("small", 0.3, _cost(1.0), False)]
  decision = sweep.decide(low, _tables(n, {}), 0.0, 0.95)
  assert (decision.chosen, decision.outcome) == ("small", sweep.UNDER_FLOOR)
  assert decision.reason.startswith("no candidate clears the floor")


def test_regression_lower_rmse_is_better_and_the_t_test_decides():
  rng = np.random.default_rng(1)
  n = 200
  errors = {"big": rng.normal(0, 1.0, n), "mid": rng.normal(0, 1.02, n),
            "small": rng.normal(0, 1.6, n)}

  def compare(a, b):  # MSE reduction of a against b
    d = errors[b] ** 2 - errors[a] ** 2
    return stats.paired_squared_error(n, d.sum(), (d * d).sum(), 0.95)
  rmse = {k: float(np.sqrt(np.mean(v ** 2))) for k, v in errors.items()}
  entries = [sweep.Entry(k, rmse[k], _cost(g), True)
             for k, g in (("big", 4.0), ("mid", 2.0), ("small", 1.0))]
  decision = sweep.decide(entries, compare, 0.0, 0.95,
                          higher_is_better=False)
  assert decision.best == min(rmse, key=rmse.get)
  assert "small" in decision.dropped and "MSE" in decision.dropped["small"]
  assert decision.comparisons["small"].metric == "MSE"
  assert decision.chosen == "mid"


def test_two_candidates_decide_as_the_superiority_gate():
  """learned (costlier) vs bilinear with tolerance = min_gain: learned
  exactly when the lower end of its interval is above the margin, on every
  table and margin tried, and ModelSelector.select says the same."""
  n = 200
  for only_learned, only_bilinear, margin in itertools.product(
      range(0, 40, 3), range(0, 40, 3), [0.0, 0.02]):
    comparison = stats.paired_accuracy(n, only_learned, only_bilinear)
    base = 0.7
    entries = [sweep.Entry("learned", base + comparison.difference,
                           _cost(2.0), True),
               sweep.Entry("bilinear", base, _cost(1.0), True)]
    decision = sweep.decide(entries, _tables(n, {
        ("learned", "bilinear"): (only_learned, only_bilinear)}), margin, 0.95)
    superior = comparison.lower > margin
    assert decision.chosen == ("learned" if superior else "bilinear"), (
        only_learned, only_bilinear, margin)
    assert (decision.outcome == sweep.COSTLIER) == superior
    assert select(True, comparison, margin) == (
        decision.chosen, AHEAD if superior else NOT_SIGNIFICANT)
    assert select(False, comparison, margin) == ("bilinear", UNDER_FLOOR)


def test_a_negative_tolerance_keeps_the_best_over_cheaper_ones():
  n = 200
  entries = [sweep.Entry("big", 0.71, _cost(4.0), True),
             sweep.Entry("small", 0.70, _cost(1.0), True)]
  compare = _tables(n, {("small", "big"): (10, 12)})
  assert sweep.decide(entries, compare, 0.0, 0.95).chosen == "small"
  decision = sweep.decide(entries, compare, -1.0, 0.95)
  assert (decision.chosen, decision.outcome) == ("big", sweep.COSTLIER)
