"""Where does the learned resizer win? Both variants over several seeds, and
the pipeline's gate decision for each (issue: decide on evidence).

Per seed: the learned and the bilinear model from the same initial classifier
weights (the Trainer's model, recipe and BatchNorm recalibration, in-process:
bench/paired.py), scored on the same eval images, and judged by the
pipeline's own ModelSelector.select() on the exact paired test. Then the mean
and standard deviation over seeds, and a t-interval of the mean difference.

--warm-start E: the paper's practice. The bilinear model trains E epochs
first; the learned model starts from its trained backbone and head (resizer
new), and the bilinear model goes on from the same point, both for --epochs
more, so both have had the same number of epochs.

The seed (the keras.io example) reports 67.67% learned vs 60.19% bilinear
(ratio 1.124) with DenseNet-121 at 300 -> 150 trained from scratch
(weights=None), both models from the same random initial weights; here too
every model starts from random weights.

usage: .venv/bin/python bench/accuracy.py [--seeds 1 2 3] [--recipe cosine]
       [--backbone tiny_cnn] [--input-size 64] [--target-size 32]
       [--epochs 12] [--warm-start 0] [--train-per-class 300]
       [--eval-per-class 200]
"""
import argparse
import time

import numpy as np
from common import cpu_seconds, machine, quiet
from paired import (RECIPES, add_harness_args, load_data, recipe_config,
                    t_interval, table, train)

from components.model_selector.component import select
from gate import stats


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_harness_args(parser)
  parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
  parser.add_argument("--recipe", default="cosine", choices=sorted(RECIPES))
  parser.add_argument("--min-gain", type=float, default=0.0)
  parser.add_argument("--confidence", type=float, default=0.95)
  parser.add_argument("--warm-start", type=int, default=0)
  args = parser.parse_args()
  quiet()
  started, cpu = time.perf_counter(), cpu_seconds()
  (x, y), (ex, ey), classes = load_data(args)
  print(f"machine: {machine()}; {len(x)} train / {len(ex)} eval images; "
        f"{args.backbone} {args.input_size} -> {args.target_size}, recipe "
        f"{args.recipe}, {args.epochs} epochs"
        + (f" after {args.warm_start} bilinear epochs" if args.warm_start
           else ""), flush=True)
  print("| seed | learned top-1 | bilinear top-1 | paired test | gate |")
  print("|---|---|---|---|---|", flush=True)
  top1 = {"learned": [], "bilinear": []}
  for seed in args.seeds:
    def cfg(variant, epochs, seed=seed):
      return recipe_config(args, variant, seed, args.recipe, epochs=epochs)
    initial = None
    if args.warm_start:
      first = train(cfg("bilinear", args.warm_start), (x, y), (ex, ey),
                    len(classes))
      initial = first["model"].get_layer("classifier").get_weights()
    runs = {v: train(cfg(v, args.epochs), (x, y), (ex, ey), len(classes),
                     initial_classifier=initial)
            for v in ("learned", "bilinear")}
    comparison = stats.paired_accuracy(
        *table(runs["learned"]["precise_correct"],
               runs["bilinear"]["precise_correct"]),
        confidence=args.confidence)
    chosen, outcome = select(True, comparison, args.min_gain)
    for v in top1:
      top1[v].append(100 * runs[v]["precise_correct"].mean())
    print(f"| {seed} | {top1['learned'][-1]:.1f}% | {top1['bilinear'][-1]:.1f}%"
          f" | {stats.describe(comparison)} | {chosen} ({outcome}) |",
          flush=True)
  diff = np.array(top1["learned"]) - np.array(top1["bilinear"])
  k = len(diff)
  mean, half = t_interval(diff)
  interval = ("one seed: no interval" if half is None else
              f"95% t-interval over seeds {mean - half:+.1f}…{mean + half:+.1f}")
  print(f"\nlearned {np.mean(top1['learned']):.1f} ± "
        f"{np.std(top1['learned'], ddof=min(1, k - 1)):.1f}%, bilinear "
        f"{np.mean(top1['bilinear']):.1f} ± "
        f"{np.std(top1['bilinear'], ddof=min(1, k - 1)):.1f}% (mean ± sd over "
        f"{k} seeds); learned - bilinear {diff.mean():+.1f} points, "
        f"{interval}; learned / bilinear "
        f"{np.mean(top1['learned']) / np.mean(top1['bilinear']):.3f}")
  print(f"wall {(time.perf_counter() - started) / 60:.1f} min, CPU "
        f"{(cpu_seconds() - cpu) / 60:.1f} min")


if __name__ == "__main__":
  main()
