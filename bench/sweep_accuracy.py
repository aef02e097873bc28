"""Which resolution pays, on real photos (issue 22, "Measure"): a sweep of
candidates over several seeds, each judged by the pipeline's sweep gate.

Per seed, every candidate (`--candidates`, the CLI's spelling and parser)
is trained from that seed with the Trainer's model, recipe and BatchNorm
recalibration in-process (bench/paired.py), on images stored once at the
largest input and downscaled to each candidate's input by the Trainer's own
preprocessing.model_pixels. All are scored on the same eval images. Then:

- each candidate's top-1, mean over seeds with a 95% t-interval, and its
  FLOPs per image (trainer/cost.py, the served graph's count);
- per seed: the non-dominated front and gate/sweep.py's choice (tolerance
  --min-gain, cost flops);
- the paper's claim: each learned candidate against bilinear at a larger
  target, and against bilinear at its own target: the paired difference per
  seed (exact McNemar) and the mean over seeds with its t-interval.

--save keeps each model's per-example correctness and FLOPs; --load judges
them again without training.

usage: .venv/bin/python bench/sweep_accuracy.py --backbone tiny_cnn
       [--candidates bilinear:128-32 learned:128-32 learned:64-32
        bilinear:128-64 learned:128-64] [--seeds 1 2 3] [--epochs 12]
       [--train-per-class 1000] [--eval-per-class 500] [--save F | --load F]
"""
import argparse
import copy
import json
import time

import numpy as np
import tensorflow as tf
from common import cpu_seconds, machine, quiet
from paired import (RECIPES, add_harness_args, load_split, recipe_config,
                    sweep_decision, t_interval, table, train)

from gate import costs, stats, sweep
from pipeline import candidates as candidate_specs
from trainer.cost import flops_per_image
from trainer.preprocessing import model_pixels

DEFAULT_CANDIDATES = ["bilinear:128-32", "learned:128-32", "learned:64-32",
                      "bilinear:128-64", "learned:128-64"]


def interval_text(values):
  mean, half = t_interval(values)
  return (f"{mean:+.1f}" if half is None else
          f"{mean:+.1f} (95% CI {mean - half:+.1f}…{mean + half:+.1f})")


def claims(specs):
  """(learned, bilinear) name pairs the paper's claim is about: each learned
  candidate against bilinear at every larger target, and at its own."""
  pairs = []
  for learned in (c for c in specs if c.resizer == "learned"):
    for bilinear in (c for c in specs if c.resizer == "bilinear"):
      if bilinear.target_size >= learned.target_size:
        pairs.append((learned.name, bilinear.name))
  return pairs


def train_all(args, specs):
  """{"flops": name -> FLOPs per image, "correct": seed -> name -> list}."""
  stored = candidate_specs.stored_size(specs)
  x, y, classes = load_split(args.data, "train", stored, args.train_per_class)
  ex, ey, _ = load_split(args.data, "validation", stored, args.eval_per_class)
  print(f"machine: {machine()}; {len(x)} train / {len(ex)} eval images, "
        f"stored at {stored}; {args.backbone}, recipe {args.recipe}, "
        f"{args.epochs} epochs, seeds {args.seeds}", flush=True)

  def at(images, size):
    raw = tf.constant([image.tobytes() for image in images])
    return np.clip(np.round(model_pixels(raw, stored, size).numpy()), 0,
                   255).astype(np.uint8)

  inputs = {size: (at(x, size), at(ex, size))
            for size in {c.input_size for c in specs}}
  result = {"flops": {}, "correct": {}, "seconds": {}}
  for seed in args.seeds:
    result["correct"][str(seed)] = {}
    for spec in specs:
      sized = copy.copy(args)
      sized.input_size, sized.target_size = spec.input_size, spec.target_size
      train_x, eval_x = inputs[spec.input_size]
      run = train(recipe_config(sized, spec.resizer, seed, args.recipe),
                  (train_x, y), (eval_x, ey), len(classes))
      if spec.name not in result["flops"]:
        result["flops"][spec.name] = flops_per_image(run["model"],
                                                     spec.input_size)
      result["correct"][str(seed)][spec.name] = run["precise_correct"].tolist()
      result["seconds"].setdefault(spec.name, []).append(run["seconds"])
      print(f"seed {seed} {spec.name}: top-1 "
            f"{100 * run['precise_correct'].mean():.1f}%, "
            f"{run['seconds']:.0f} s", flush=True)
      if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
          json.dump(result, f)
  return result


def judge(result, specs, min_gain, confidence):
  """The report's lines: candidates, each seed's gate, the claims."""
  scale = costs.COSTS["flops"][2]
  names = [c.name for c in specs]
  seeds = list(result["correct"])
  correct = {s: {n: np.asarray(c, bool) for n, c in by_name.items()}
             for s, by_name in result["correct"].items()}
  top1 = {n: [100 * correct[s][n].mean() for s in seeds] for n in names}
  lines = [f"| candidate | GFLOPs / image | top-1 per seed ({', '.join(seeds)})"
           " | mean top-1 (95% t-interval over seeds) | on the front | "
           "chosen |", "|---|---|---|---|---|---|"]
  fronts, chosen, reasons = {}, {}, []
  for s in seeds:
    decision, entries = sweep_decision(
        {n: correct[s][n] for n in names}, result["flops"], min_gain,
        confidence)
    fronts[s], chosen[s] = sweep.front(entries), decision.chosen
    reasons.append(f"seed {s}: {decision.reason}")
  for n in names:
    mean, half = t_interval(top1[n])
    lines.append(
        f"| {n} | {result['flops'][n] * scale:.3g} | "
        f"{', '.join(f'{v:.1f}' for v in top1[n])} | {mean:.1f}"
        + (f" ({mean - half:.1f}…{mean + half:.1f})" if half is not None
           else "")
        + f" | {sum(n in fronts[s] for s in seeds)}/{len(seeds)} | "
        f"{sum(chosen[s] == n for s in seeds)}/{len(seeds)} |")
  lines += ["", "| learned vs bilinear | per seed (exact McNemar) | mean "
            "difference over seeds, points |", "|---|---|---|"]
  for learned, bilinear in claims(specs):
    per_seed = [stats.paired_accuracy(
        *table(correct[s][learned], correct[s][bilinear]),
        confidence=confidence) for s in seeds]
    lines.append(
        f"| {learned} vs {bilinear} | "
        + "; ".join(f"{100 * c.difference:+.1f} ({stats.p_text(c.p_value)})"
                    for c in per_seed)
        + f" | {interval_text([100 * c.difference for c in per_seed])} |")
  return "\n".join(lines + [""] + reasons)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_harness_args(parser)
  parser.set_defaults(train_per_class=1000, eval_per_class=500)
  parser.add_argument("--candidates", nargs="+", default=DEFAULT_CANDIDATES,
                      help=f"{candidate_specs.FORM}, as the CLI's")
  parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
  parser.add_argument("--recipe", default="cosine", choices=sorted(RECIPES))
  parser.add_argument("--min-gain", type=float, default=0.0)
  parser.add_argument("--confidence", type=float, default=0.95)
  parser.add_argument("--save", help="write each model's per-example "
                      "correctness and FLOPs to this JSON file")
  parser.add_argument("--load", help="judge what --save wrote, no training")
  args = parser.parse_args()
  try:
    specs = candidate_specs.parse(args.candidates, args.input_size)
  except candidate_specs.CandidateError as error:
    parser.error(str(error))
  quiet()
  started, cpu = time.perf_counter(), cpu_seconds()
  if args.load:
    with open(args.load, encoding="utf-8") as f:
      result = json.load(f)
  else:
    result = train_all(args, specs)
  print(judge(result, specs, args.min_gain, args.confidence))
  print(f"wall {(time.perf_counter() - started) / 60:.1f} min, CPU "
        f"{(cpu_seconds() - cpu) / 60:.1f} min")


if __name__ == "__main__":
  main()
