"""A/A test of the gates: how often does each declare a winner where none
exists? (issues: decide on evidence; 22, item 7)

Models of the same variant that differ only in their seed (initial weights
and input order), on a subset of cats_and_dogs_filtered: none is better by
construction.

--mode pairs: each pair judged as "candidate vs baseline" by
  - the old gate: last epoch's eval top-1 with Keras's moving averages,
    candidate wins when it is >= the baseline (min-gain 0), and
  - the new gate: recalibrated BatchNorm, the pipeline's own
    ModelSelector.select() on the exact paired test (min-gain 0).
  Every "winner" is a false one. Target: the new gate <= 10%.

--mode groups: each group is --group-size models given made-up costs 1..K
  GFLOPs in a random order, judged by the sweep gate (gate.sweep.decide,
  the exact paired test on recalibrated BatchNorm) at each of --tolerances.
  The right choice is always the cheapest: a group where it is dropped is a
  false drop. Also counted: groups where any candidate is dropped as behind
  the best, and both with each raw p-value against the level (no
  correction). Target: false drops of the cheapest <= 5%. --save keeps each
  model's per-example correctness, --load judges it again without training.

usage: .venv/bin/python bench/gate_calibration.py [--pairs 10]
       [--mode groups [--groups 30] [--group-size 3] [--save F | --load F]
        [--tolerances 0 0.01 0.02]]
       [--variant bilinear] [--recipe cosine] [...the stability.py flags]
"""
import argparse
import json
import time

import numpy as np
from common import machine, quiet
from paired import (RECIPES, add_harness_args, load_data, recipe_config,
                    sweep_decision, table, train)

from components.model_selector.component import select
from gate import costs, stats, sweep


def seeds(unit, size):
  """The seeds of pair or group `unit` (from 0): no seed, so no model, is
  shared between units."""
  return [100 + size * unit + i for i in range(size)]


def rate(k, n):
  """'3/30 (10%, 95% CI 2-27%)': a count and its Clopper-Pearson interval."""
  lo, hi = stats._clopper_pearson(k, n, 0.95)  # pylint: disable=protected-access
  return f"{k}/{n} ({100 * k / n:.0f}%, 95% CI {100 * lo:.0f}-{100 * hi:.0f}%)"


def judge_group(correct, gflops, confidence, tolerance=0.0):
  """One A/A group through the sweep gate.

  correct: name -> per-example correctness on the same eval images;
  gflops: name -> the candidate's made-up cost. Returns (the Decision,
  name -> raw p-value of "behind the best" for each cheaper candidate
  tested, a dict of the four counts: cheapest / any dropped, by the gate
  and by each raw p-value alone, with no correction).
  """
  scale = costs.COSTS["flops"][2]
  decision, _ = sweep_decision(
      correct, {n: g / scale for n, g in gflops.items()}, tolerance,
      confidence)
  raw = {n: stats.worse_p_value(c, tolerance)
         for n, c in decision.comparisons.items()}
  cheapest = min(gflops, key=gflops.get)
  level = 1 - confidence
  counts = {
      "cheapest dropped": decision.chosen != cheapest,
      "any dropped": any(why.startswith(sweep.BEHIND)
                         for why in decision.dropped.values()),
      "cheapest dropped, no correction": raw.get(cheapest, 1.0) < level,
      "any dropped, no correction": any(p < level for p in raw.values()),
  }
  return decision, raw, counts


def run_pairs(args, data, eval_set, num_classes):
  print("| pair | seeds | raw top-1 A / B | old gate | precise top-1 A / B | "
        "paired test | new gate |")
  print("|---|---|---|---|---|---|---|", flush=True)
  old_wins = new_wins = new_two_sided = 0
  for pair in range(args.pairs):
    pair_seeds = seeds(pair, 2)
    runs = []
    for seed in pair_seeds:
      cfg = recipe_config(args, args.variant, seed, args.recipe)
      runs.append(train(cfg, data, eval_set, num_classes))
    a, b = runs
    old = a["raw_curve"][-1] >= b["raw_curve"][-1]
    comparison = stats.paired_accuracy(
        *table(a["precise_correct"], b["precise_correct"]),
        confidence=args.confidence)
    new = select(True, comparison, 0.0)[0] == "learned"  # candidate slot
    old_wins += old
    new_wins += new
    new_two_sided += comparison.p_value < 1 - args.confidence
    print(f"| {pair + 1} | {pair_seeds[0]}, {pair_seeds[1]} | "
          f"{100 * a['raw_curve'][-1]:.1f} / {100 * b['raw_curve'][-1]:.1f} | "
          f"{'A wins' if old else 'B kept'} | "
          f"{100 * a['precise_correct'].mean():.1f} / "
          f"{100 * b['precise_correct'].mean():.1f} | "
          f"{stats.describe(comparison)} | {'A wins' if new else 'B kept'} |",
          flush=True)
  n = args.pairs
  return (f"false winners: old gate {old_wins}/{n} "
          f"({100 * old_wins / n:.0f}%), new gate {rate(new_wins, n)}; a "
          f"significant difference either way {new_two_sided}/{n}.")


def train_groups(args, data, eval_set, num_classes):
  """[(name -> made-up GFLOPs, name -> per-example correctness)] for
  --groups groups of --group-size models, each written to --save as soon
  as it is trained, so that a stopped run keeps what it made."""
  k = args.group_size
  # Costs in a random order, so that cost is unrelated to the model.
  order = np.random.default_rng(args.cost_seed)
  groups = []
  for group in range(args.groups):
    # name (the seed) -> made-up GFLOPs
    gflops = dict(zip(map(str, seeds(group, k)),
                      (order.permutation(k) + 1).tolist()))
    correct = {name: train(recipe_config(args, args.variant, int(name),
                                         args.recipe),
                           data, eval_set, num_classes)["precise_correct"]
               for name in gflops}
    groups.append((gflops, correct))
    print(f"group {group + 1}: trained", flush=True)
    if args.save:
      save(groups, args.save)
  return groups


def save(groups, path):
  with open(path, "w", encoding="utf-8") as f:
    json.dump([{"gflops": g, "correct": {n: c.tolist() for n, c in cs.items()}}
               for g, cs in groups], f)


def load(path):
  with open(path, encoding="utf-8") as f:
    return [(g["gflops"], {n: np.asarray(c, bool)
                           for n, c in g["correct"].items()})
            for g in json.load(f)]


def judge_groups(groups, confidence, tolerances):
  """The table of every group at the first tolerance, then for each
  tolerance the four rates (judge_group's counts)."""
  k = len(groups[0][0])
  lines = [f"| group | seeds at 1..{k} GFLOPs | precise top-1 at 1..{k} "
           "GFLOPs | best (GFLOPs) | cheaper vs the best | chosen (GFLOPs) | "
           "the cheapest |", "|---|---|---|---|---|---|---|"]
  summary = []
  for t, tolerance in enumerate(tolerances):
    totals = {}
    for number, (gflops, correct) in enumerate(groups, 1):
      decision, raw, counts = judge_group(correct, gflops, confidence,
                                          tolerance)
      for key, value in counts.items():
        totals[key] = totals.get(key, 0) + value
      if t:
        continue
      by_cost = sorted(gflops, key=gflops.get)
      tested = "; ".join(
          f"{gflops[n]}: {100 * decision.comparisons[n].difference:+.1f} "
          f"points, adjusted p = {decision.adjusted_p[n]:.2g} (raw "
          f"{raw[n]:.2g})" for n in by_cost if n in raw)
      lines.append(
          f"| {number} | {', '.join(by_cost)} | "
          f"{', '.join(f'{100 * correct[n].mean():.1f}' for n in by_cost)} | "
          f"{gflops[decision.best]} | "
          f"{tested or '(the cheapest is the best)'} | "
          f"{gflops[decision.chosen]} | "
          f"{'**dropped**' if counts['cheapest dropped'] else 'kept'} |")
    summary.append(f"tolerance {100 * tolerance:g} points:")
    summary += [f"  {key}: {rate(value, len(groups))}"
                for key, value in totals.items()]
  return "\n".join(lines + [""] + summary)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_harness_args(parser)
  parser.add_argument("--mode", default="pairs", choices=["pairs", "groups"],
                      help="pairs: the pair gate; groups: the sweep gate")
  parser.add_argument("--pairs", type=int, default=10)
  parser.add_argument("--groups", type=int, default=30)
  parser.add_argument("--group-size", type=int, default=3,
                      help="models per group (at least 3)")
  parser.add_argument("--cost-seed", type=int, default=0,
                      help="the random order of the groups' made-up costs")
  parser.add_argument("--variant", default="bilinear",
                      choices=["learned", "bilinear"])
  parser.add_argument("--recipe", default="cosine", choices=sorted(RECIPES))
  parser.add_argument("--confidence", type=float, default=0.95)
  parser.add_argument("--save", help="groups: write each model's per-example "
                      "correctness and made-up cost to this JSON file")
  parser.add_argument("--load", help="groups: judge the groups --save wrote "
                      "instead of training")
  parser.add_argument("--tolerances", type=float, nargs="+",
                      default=[0.0, 0.01, 0.02],
                      help="groups: the gate's tolerances (top-1) to judge at")
  args = parser.parse_args()
  if args.group_size < 3:
    parser.error(f"--group-size {args.group_size}: must be at least 3 "
                 "(two models: --mode pairs)")
  for flag in ("pairs", "groups"):
    if getattr(args, flag) < 1:
      parser.error(f"--{flag} {getattr(args, flag)}: must be at least 1")
  if not 0 < args.confidence < 1:
    parser.error(f"--confidence {args.confidence}: must be between 0 and 1")
  if args.load and args.mode != "groups":
    parser.error("--load: only with --mode groups")
  quiet()
  started = time.perf_counter()
  if args.load:
    groups = load(args.load)
    print(f"{len(groups)} groups from {args.load}", flush=True)
  else:
    (x, y), (ex, ey), classes = load_data(args)
    print(f"machine: {machine()}; {len(x)} train / {len(ex)} eval images; "
          f"{args.variant} {args.backbone} {args.input_size} -> "
          f"{args.target_size}, recipe {args.recipe}, {args.epochs} epochs",
          flush=True)
    if args.mode == "pairs":
      summary = run_pairs(args, (x, y), (ex, ey), len(classes))
      print(f"\n{summary}\n{time.perf_counter() - started:.0f} s")
      return
    groups = train_groups(args, (x, y), (ex, ey), len(classes))
  print(judge_groups(groups, args.confidence, args.tolerances))
  print(f"{time.perf_counter() - started:.0f} s")

if __name__ == "__main__":
  main()
