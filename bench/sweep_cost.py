"""What a sweep costs: a K-candidate run against the default two-candidate
run on the same images (issue: which resolution pays).

Each side is `resizer-pipeline run` in a fresh process, --repeats times,
interleaved (pair, sweep, sweep, pair, ...). From each run's MLMD executions
the wall time splits into the Trainers' and the rest (ExampleGen ...
Transform, the evaluation, the gates, the report). Printed:
- the shared part (everything but the Trainers) of the sweep / of the pair:
  target about 1 (paid once, whatever K; the one evaluation of K models and
  the report grow with K);
- the sweep's wall time / (one pair run + the K - 2 extra Trainers' time):
  about 1 when nothing but the Trainers grows;
- the sweep's wall time / (K / 2 pair runs): what running the pairs
  separately would cost instead (below 1 is the saving).

usage: .venv/bin/python bench/sweep_cost.py [--data DIR] [--limit N]
       [--candidates bilinear:64 learned:128-64 learned:128-32 ...]
       [--backbone tiny_cnn] [--input-size 128] [--target-size 64]
       [--epochs 2] [--repeats 2]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import (REPO, add_data_args, add_training_args,
                    component_durations, machine, run_flags, subset)


def run(args, data, out, extra):
  shutil.rmtree(out, ignore_errors=True)
  command = [sys.executable, "-m", "pipeline.cli", "run", "--data", data,
             "--output", out] + run_flags(args) + extra
  started = time.perf_counter()
  done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                        check=False)
  wall = time.perf_counter() - started
  if done.returncode:
    sys.exit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
  rows = component_durations(os.path.join(out, "metadata.sqlite"))
  trainers = sum(s for node, s, _ in rows if node.startswith("Trainer_"))
  count = sum(node.startswith("Trainer_") for node, _, _ in rows)
  return {"wall": wall, "trainers": trainers, "per_trainer": trainers / count,
          "shared": wall - trainers}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add_data_args(parser)
  add_training_args(parser, backbone="tiny_cnn", input_size=128,
                    target_size=64, epochs=2)
  parser.add_argument("--candidates", nargs="+", default=[
      "bilinear:64", "learned:128-64", "learned:128-32", "bilinear:32",
      "learned:96-48"])
  parser.add_argument("--repeats", type=int, default=2)
  args = parser.parse_args()
  work = tempfile.mkdtemp(prefix="sweep-cost-")
  data = subset(args.data, args.limit, os.path.join(work, "data"))
  k = len(args.candidates)
  print(f"machine: {machine()}; data {data} (limit {args.limit or 'all'}); "
        f"{args.backbone}, {args.epochs} epochs; sweep of {k}: "
        f"{' '.join(args.candidates)}", flush=True)
  sides = {"pair": [], "sweep": []}
  order = [("pair", []), ("sweep", ["--candidates", *args.candidates])]
  for repeat in range(args.repeats):
    for name, extra in (order if repeat % 2 == 0 else order[::-1]):
      result = run(args, data, os.path.join(work, name), extra)
      sides[name].append(result)
      print(f"  {name}: wall {result['wall']:.1f} s, Trainers "
            f"{result['trainers']:.1f} s ({result['per_trainer']:.1f} s "
            f"each), the rest {result['shared']:.1f} s", flush=True)
  med = {name: {key: statistics.median(r[key] for r in runs)
                for key in runs[0]} for name, runs in sides.items()}
  pair, sweep = med["pair"], med["sweep"]
  extra_trainers = (k - 2) * sweep["per_trainer"]
  print(f"\nmedians of {args.repeats}: pair {pair['wall']:.1f} s, sweep of {k} "
        f"{sweep['wall']:.1f} s")
  print(f"shared part, sweep / pair: {sweep['shared']:.1f} / "
        f"{pair['shared']:.1f} s = {sweep['shared'] / pair['shared']:.2f}")
  print(f"sweep / (pair run + {k - 2} more Trainers): "
        f"{sweep['wall'] / (pair['wall'] + extra_trainers):.2f}")
  print(f"sweep / ({k}/2 pair runs): "
        f"{sweep['wall'] / (k / 2 * pair['wall']):.2f}")
  shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  main()
