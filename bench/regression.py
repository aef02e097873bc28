"""Regression on real photos through the whole pipeline (issue: labels from a
CSV, and regression targets end to end).

`resizer-pipeline run` on bccd_counts (364 microscope photos, 640x480, with
per-photo cell counts in labels.csv and the dataset's own split: train,
validation, test — the test rows are listed as not used). Prints RMSE and
MAE of both variants (TFMA, on the validation split), the floor (RMSE of
predicting the training mean) and the gate's decision with its interval.

usage: .venv/bin/python bench/regression.py [--data DIR] [--target rbc]
       [--backbone tiny_cnn] [--input-size 256] [--target-size 64]
       [--epochs 15] [--batch-size 16] [--seed 42] [--output DIR (kept)]
"""
import argparse
import json
import os
import tempfile
import time

from common import REPO, cpu_seconds, machine, quiet

from pipeline import cli

DEFAULT_DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "datasets",
                                             "bccd_counts"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data", default=DEFAULT_DATA,
                      help="folder with images/ and labels.csv, read in place")
  parser.add_argument("--target", default="rbc")
  parser.add_argument("--backbone", default="tiny_cnn")
  parser.add_argument("--input-size", type=int, default=256)
  parser.add_argument("--target-size", type=int, default=64)
  parser.add_argument("--epochs", type=int, default=15)
  parser.add_argument("--batch-size", type=int, default=16)
  parser.add_argument("--learning-rate", type=float, default=1e-3)
  parser.add_argument("--seed", type=int, default=42)
  parser.add_argument("--output", help="keep the run's output here")
  args = parser.parse_args()
  quiet()
  output = args.output or tempfile.mkdtemp()
  flags = ["run", "--data", os.path.join(args.data, "images"),
           "--labels", os.path.join(args.data, "labels.csv"),
           "--target", args.target, "--output", output, "--weights", "none",
           "--backbone", args.backbone, "--input-size", str(args.input_size),
           "--target-size", str(args.target_size), "--epochs",
           str(args.epochs), "--batch-size", str(args.batch_size),
           "--learning-rate", str(args.learning_rate), "--seed", str(args.seed),
           "--no-cache"]
  print(f"machine: {machine()}; resizer-pipeline {' '.join(flags[1:])}",
        flush=True)
  started, cpu = time.perf_counter(), cpu_seconds()
  rc = cli.main(flags)
  with open(os.path.join(output, "report", "results.json")) as f:
    results = json.load(f)
  print(f"\nexit {rc}; {results['examples']} examples, {results['seen']} "
        f"inputs seen, {results['rejected']} rejected")
  print("| model | RMSE | MAE | train-sample RMSE (target sd) |")
  print("|---|---|---|---|")
  for name in ("learned", "bilinear"):
    m = results["models"][name]
    print(f"| {name} | {m['rmse']:.3f} | {m['mae']:.3f} | "
          f"{m['train_sample_rmse_normalized']:.3f} |")
  print(f"floor (RMSE of predicting the training mean): "
        f"{results['thresholds']['mean_predictor_rmse']:.3f}")
  c = results["selection"]
  print(f"gate: {c['outcome']}: MSE reduction {c['difference']:+.3f}, "
        f"{100 * c['confidence']:.0f}% CI {c['lower']:+.3f}…{c['upper']:+.3f}, "
        f"p = {c['p_value']:.3g}, n = {c['n']}")
  print(f"pushed: {results['pushed']}; {results['reason']}")
  print(f"wall {(time.perf_counter() - started) / 60:.1f} min, CPU "
        f"{(cpu_seconds() - cpu) / 60:.1f} min")


if __name__ == "__main__":
  main()
