"""Does the comparison settle? Eval top-1 per epoch, before and after BatchNorm
recalibration, for recipes x seeds x both variants (issue: decide on evidence).

For every trained model: the final eval top-1 and its standard deviation over
the last 5 epochs, scored with Keras's moving averages ("raw", what the
pipeline exported before) and with recalibrated statistics ("precise", what it
exports now), on the same weights. Target: that deviation <= 2 points.

usage: .venv/bin/python bench/stability.py [--data DIR] [--train-per-class 300]
       [--eval-per-class 200] [--backbone tiny_cnn] [--input-size 64]
       [--target-size 32] [--epochs 12] [--seeds 1 2 3]
       [--recipes constant cosine step]
"""
import argparse
import json
import time

import numpy as np
from common import machine, quiet
from paired import (RECIPES, add_harness_args, load_data, recipe_config,
                    tail_std, train)

def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_harness_args(parser)
  parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
  parser.add_argument("--recipes", nargs="+", default=["constant", "cosine"],
                      choices=sorted(RECIPES))
  parser.add_argument("--json", help="also write every curve here")
  args = parser.parse_args()
  quiet()
  (x, y), (ex, ey), classes = load_data(args)
  print(f"machine: {machine()}; {len(x)} train / {len(ex)} eval images of "
        f"{args.data}; {args.backbone} {args.input_size} -> {args.target_size},"
        f" {args.epochs} epochs, batch {args.batch_size}", flush=True)
  rows, curves = [], {}
  print("| recipe | variant | seed | final top-1 raw | sd last 5 raw | "
        "final top-1 precise | sd last 5 precise | fit s |")
  print("|---|---|---|---|---|---|---|---|", flush=True)
  for recipe in args.recipes:
    for variant in ("learned", "bilinear"):
      for seed in args.seeds:
        cfg = recipe_config(args, variant, seed, recipe)
        result = train(cfg, (x, y), (ex, ey), len(classes))
        row = (recipe, variant, seed, 100 * result["raw_curve"][-1],
               tail_std(result["raw_curve"]),
               100 * result["precise_curve"][-1],
               tail_std(result["precise_curve"]), result["seconds"])
        rows.append(row)
        curves[f"{recipe}/{variant}/{seed}"] = {
            "raw": result["raw_curve"], "precise": result["precise_curve"]}
        print("| {} | {} | {} | {:.1f}% | {:.2f} | {:.1f}% | {:.2f} | {:.0f} |"
              .format(*row), flush=True)
  print("\nmean over seeds (sd of the last 5 epochs, points; final top-1, %):")
  print("| recipe | variant | sd raw | sd precise | top-1 raw | top-1 precise |")
  print("|---|---|---|---|---|---|")
  for recipe in args.recipes:
    for variant in ("learned", "bilinear"):
      sel = np.array([r[3:7] for r in rows if r[0] == recipe and
                      r[1] == variant])
      print(f"| {recipe} | {variant} | {sel[:, 1].mean():.2f} | "
            f"{sel[:, 3].mean():.2f} | {sel[:, 0].mean():.1f} ± "
            f"{sel[:, 0].std(ddof=1):.1f} | {sel[:, 2].mean():.1f} ± "
            f"{sel[:, 2].std(ddof=1):.1f} |")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"args": vars(args), "rows": rows, "curves": curves,
                 "finished": time.strftime("%Y-%m-%d %H:%M UTC",
                                           time.gmtime())}, f, indent=1)


if __name__ == "__main__":
  main()
