"""The A/A benchmark's group mode (bench/gate_calibration.py) on known
per-example correctness: what it counts as a false drop, with and without
the gate's corrections, at a tolerance, its seeds, its saved groups and its
flags."""
import os
import sys

import numpy as np
import pytest

from gate import sweep

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "bench"))
import gate_calibration  # noqa: E402  pylint: disable=wrong-import-position

N, BEST_RIGHT = 400, 300


def _best():
  return np.arange(N) < BEST_RIGHT


def _like_best(best_only, own_only):
  """Right where the best is, except wrong on `best_only` of those examples
  and right on `own_only` where the best is wrong."""
  correct = _best()
  correct[:best_only] = False
  correct[BEST_RIGHT:BEST_RIGHT + own_only] = True
  return correct


GFLOPS = {"a": 1, "b": 2, "c": 3}


def test_the_cheapest_clearly_behind_is_a_false_drop_either_way():
  decision, raw, counts = gate_calibration.judge_group(
      {"a": _like_best(40, 0), "b": _like_best(3, 2), "c": _best()}, GFLOPS,
      0.95)
  assert (decision.best, decision.chosen) == ("c", "b")
  assert decision.outcome == sweep.COSTLIER
  assert sorted(raw) == ["a", "b"] and raw["a"] < 1e-6 and raw["b"] == 1.0
  assert counts == {"cheapest dropped": True, "any dropped": True,
                    "cheapest dropped, no correction": True,
                    "any dropped, no correction": True}


def test_the_correction_keeps_a_cheapest_that_one_raw_test_would_drop():
  # 5 against 15 discordant examples: raw p = 0.041; x2 rivals, x2 by Holm
  decision, raw, counts = gate_calibration.judge_group(
      {"a": _like_best(15, 5), "b": _like_best(3, 2), "c": _best()}, GFLOPS,
      0.95)
  assert raw["a"] == pytest.approx(0.0414, abs=1e-4)
  assert decision.adjusted_p["a"] == pytest.approx(4 * raw["a"])
  assert (decision.best, decision.chosen) == ("c", "a")
  assert counts == {"cheapest dropped": False, "any dropped": False,
                    "cheapest dropped, no correction": True,
                    "any dropped, no correction": True}


def test_a_middle_candidate_behind_is_counted_but_not_a_false_drop():
  decision, raw, counts = gate_calibration.judge_group(
      {"a": _like_best(3, 2), "b": _like_best(40, 0), "c": _best()},
      GFLOPS, 0.95)
  assert decision.chosen == "a" and raw["b"] < 1e-6
  assert counts == {"cheapest dropped": False, "any dropped": True,
                    "cheapest dropped, no correction": False,
                    "any dropped, no correction": True}


def test_the_cheapest_being_the_best_tests_nothing():
  decision, raw, counts = gate_calibration.judge_group(
      {"a": _best(), "b": _like_best(30, 0), "c": _like_best(1, 0)},
      {"a": 1, "b": 3, "c": 2}, 0.95)
  assert (decision.best, decision.chosen, raw) == ("a", "a", {})
  assert not any(counts.values())


def test_a_tolerance_keeps_a_cheapest_behind_by_less_than_it():
  # 2 against 22 discordant examples: 5 points behind, surely more than 0
  # and not surely more than 3
  groups = {"a": _like_best(22, 2), "b": _like_best(3, 2), "c": _best()}
  assert gate_calibration.judge_group(groups, GFLOPS, 0.95)[2][
      "cheapest dropped"]
  decision, raw, counts = gate_calibration.judge_group(groups, GFLOPS, 0.95,
                                                       tolerance=0.03)
  assert decision.chosen == "a" and raw["a"] > 0.05
  assert not counts["cheapest dropped"]


def test_saved_groups_are_judged_again_as_when_trained(tmp_path):
  groups = [(GFLOPS, {"a": _like_best(22, 2), "b": _like_best(3, 2),
                      "c": _best()}),
            ({"a": 3, "b": 1, "c": 2}, {"a": _best(), "b": _like_best(2, 2),
                                        "c": _like_best(1, 1)})]
  path = str(tmp_path / "groups.json")
  gate_calibration.save(groups, path)
  loaded = gate_calibration.load(path)
  assert [g for g, _ in loaded] == [g for g, _ in groups]
  for (_, before), (_, after) in zip(groups, loaded):
    assert {n: c.tolist() for n, c in after.items()} == {
        n: c.tolist() for n, c in before.items()}
  text = gate_calibration.judge_groups(loaded, 0.95, [0.0, 0.03])
  assert "| 1 | a, b, c | 70.0, 74.8, 75.0 | 3 | 1: -5.0 points" in text
  assert "| 2 | b, c, a | 75.0, 75.0, 75.0 | 1 | (the cheapest is the best)" in text
  assert ("tolerance 0 points:\n  cheapest dropped: 1/2 (50%, 95% CI 1-99%)"
          in text)
  assert ("tolerance 3 points:\n  cheapest dropped: 0/2 (0%, 95% CI 0-84%)"
          in text)


def test_seeds_keep_the_pairs_and_share_no_model_between_groups():
  assert [gate_calibration.seeds(p, 2) for p in range(2)] == [[100, 101],
                                                              [102, 103]]
  groups = [gate_calibration.seeds(g, 3) for g in range(30)]
  assert len({s for group in groups for s in group}) == 90


def test_rate_states_the_clopper_pearson_interval():
  assert gate_calibration.rate(1, 10) == "1/10 (10%, 95% CI 0-45%)"
  assert gate_calibration.rate(0, 30) == "0/30 (0%, 95% CI 0-12%)"


@pytest.mark.parametrize("flags, message", [
    (["--group-size", "2"], "--group-size 2: must be at least 3"),
    (["--groups", "0"], "--groups 0: must be at least 1"),
    (["--mode", "pairs", "--load", "x.json"], "--load: only with --mode "
                                              "groups"),
])
def test_bad_flags_are_refused_before_any_training(flags, message, capsys,
                                                   monkeypatch):
  monkeypatch.setattr(sys, "argv", ["gate_calibration.py", "--mode",
                                    "groups"] + flags)
  with pytest.raises(SystemExit) as exit_:
    gate_calibration.main()
  assert exit_.value.code == 2
  assert message in capsys.readouterr().err
