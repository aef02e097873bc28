"""The sweep accuracy benchmark's judging (bench/sweep_accuracy.py) on known
per-example correctness: which pairs it reports, its intervals, and that
each seed goes through the pipeline's sweep gate."""
import os
import sys

import numpy as np
import pytest

from pipeline import candidates

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "bench"))
import sweep_accuracy  # noqa: E402  pylint: disable=wrong-import-position

N = 200
SPECS = candidates.parse(["bilinear:128-32", "learned:128-32",
                          "bilinear:128-64", "learned:128-64"], 128)
FLOPS = {"bilinear_128_32": 1e8, "learned_128_32": 2e8,
         "bilinear_128_64": 4e8, "learned_128_64": 5e8}


def _right(k):
  """Right on the first k of N eval images."""
  return (np.arange(N) < k).tolist()


def test_claims_pair_each_learned_with_bilinear_at_its_target_and_above():
  assert sweep_accuracy.claims(SPECS) == [
      ("learned_128_32", "bilinear_128_32"),
      ("learned_128_32", "bilinear_128_64"),
      ("learned_128_64", "bilinear_128_64")]


def test_t_interval_over_seeds():
  mean, half = sweep_accuracy.t_interval([1.0, 2.0, 3.0])
  # sd 1, t(0.975, 2) = 4.303
  assert (mean, half) == (2.0, pytest.approx(4.303 / np.sqrt(3), abs=1e-3))
  assert sweep_accuracy.t_interval([5.0]) == (5.0, None)


def test_judge_reports_each_seed_through_the_sweep_gate():
  # Seed 1: learned at 32 right on 40 more images than bilinear at 32 (a
  # sure difference) and level with bilinear at 64. Seed 2: all level.
  seed1 = {"bilinear_128_32": _right(100), "learned_128_32": _right(140),
           "bilinear_128_64": _right(140), "learned_128_64": _right(140)}
  seed2 = {n: _right(120) for n in FLOPS}
  text = sweep_accuracy.judge({"flops": FLOPS, "correct": {
      "1": seed1, "2": seed2}}, SPECS, 0.0, 0.95)
  assert "| bilinear_128_32 | 0.1 | 50.0, 60.0 | 55.0 (" in text
  assert "| learned_128_32 | 0.2 | 70.0, 60.0 | 65.0 (" in text
  # Chosen: learned_128_32 on seed 1 (bilinear at 32 is surely behind the
  # best), bilinear_128_32 on seed 2 (all level: the cheapest).
  assert "| learned_128_32 | 0.2 | 70.0, 60.0 | 65.0 (1.5…128.5) | 1/2 | 1/2 |" \
      in text
  assert "| learned_128_64 | 0.5 | 70.0, 60.0 | 65.0 (1.5…128.5) | 0/2 | 0/2 |" \
      in text
  assert ("| learned_128_32 vs bilinear_128_32 | +20.0 (p < 0.001); +0.0 "
          "(p = 1) | +10.0 (95% CI -117.1…+137.1) |") in text
  assert "seed 1: chose learned_128_32 (0.2 GFLOPs per image)" in text
  assert "seed 2: chose bilinear_128_32 (0.1 GFLOPs per image)" in text
