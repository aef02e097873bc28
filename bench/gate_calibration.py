"""A/A test of the gates: how often does each declare a winner where none
exists? (issue: decide on evidence)

Pairs of models of the same variant that differ only in their seed (initial
weights and input order), on a subset of cats_and_dogs_filtered, each pair
judged as "candidate vs baseline" by
  - the old gate: last epoch's eval top-1 with Keras's moving averages,
    candidate wins when it is >= the baseline (min-gain 0), and
  - the new gate: recalibrated BatchNorm, the pipeline's own
    ModelSelector.select() on the exact paired test (confidence 0.95,
    min-gain 0).
Neither model is better by construction, so every "winner" is a false one.
Target: the new gate <= 10%.

usage: .venv/bin/python bench/gate_calibration.py [--pairs 10]
       [--variant bilinear] [--recipe cosine] [...the stability.py flags]
"""
import argparse
import time

import numpy as np
from common import machine, quiet
from paired import (RECIPES, add_harness_args, load_data, recipe_config,
                    table, train)

from components.model_selector.component import select
from gate import stats


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_harness_args(parser)
  parser.add_argument("--pairs", type=int, default=10)
  parser.add_argument("--variant", default="bilinear",
                      choices=["learned", "bilinear"])
  parser.add_argument("--recipe", default="cosine", choices=sorted(RECIPES))
  parser.add_argument("--confidence", type=float, default=0.95)
  args = parser.parse_args()
  quiet()
  (x, y), (ex, ey), classes = load_data(args)
  print(f"machine: {machine()}; {len(x)} train / {len(ex)} eval images; "
        f"{args.variant} {args.backbone} {args.input_size} -> "
        f"{args.target_size}, recipe {args.recipe}, {args.epochs} epochs",
        flush=True)
  print("| pair | seeds | raw top-1 A / B | old gate | precise top-1 A / B | "
        "paired test | new gate |")
  print("|---|---|---|---|---|---|---|", flush=True)
  old_wins = new_wins = new_two_sided = 0
  started = time.perf_counter()
  for pair in range(args.pairs):
    seeds = (100 + 2 * pair, 101 + 2 * pair)
    runs = []
    for seed in seeds:
      cfg = recipe_config(args, args.variant, seed, args.recipe)
      runs.append(train(cfg, (x, y), (ex, ey), len(classes)))
    a, b = runs
    old = a["raw_curve"][-1] >= b["raw_curve"][-1]
    comparison = stats.paired_accuracy(
        *table(a["precise_correct"], b["precise_correct"]),
        confidence=args.confidence)
    new = select(True, comparison, 0.0)[0] == "learned"  # candidate slot
    old_wins += old
    new_wins += new
    new_two_sided += comparison.p_value < 1 - args.confidence
    print(f"| {pair + 1} | {seeds[0]}, {seeds[1]} | "
          f"{100 * a['raw_curve'][-1]:.1f} / {100 * b['raw_curve'][-1]:.1f} | "
          f"{'A wins' if old else 'B kept'} | "
          f"{100 * a['precise_correct'].mean():.1f} / "
          f"{100 * b['precise_correct'].mean():.1f} | "
          f"{stats.describe(comparison)} | {'A wins' if new else 'B kept'} |",
          flush=True)
  n = args.pairs
  lo, hi = stats._clopper_pearson(new_wins, n, 0.95)  # pylint: disable=protected-access
  print(f"\nfalse winners: old gate {old_wins}/{n} ({100 * old_wins / n:.0f}%), "
        f"new gate {new_wins}/{n} ({100 * new_wins / n:.0f}%, 95% CI "
        f"{100 * lo:.0f}-{100 * hi:.0f}%); a significant difference either "
        f"way {new_two_sided}/{n}. {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
  main()
