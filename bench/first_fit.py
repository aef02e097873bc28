"""A fresh process's first `fit`, with and without autograph leaving tf_keras
alone (trainer/keras_lib.py), side by side in one run.

Every Trainer process (each one on Vertex, the first one locally) pays its
first fit's tracing before the first batch; this times that first fit for the
pipeline's learned model (build, compile, fit 2 epochs on 16 images with
validation), each side in its own fresh process, interleaved.

usage: .venv/bin/python bench/first_fit.py [--backbone tiny_cnn]
       [--input-size 64] [--target-size 32] [--repeats 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = """
import json, sys, time
import numpy as np
from trainer import keras_lib
from trainer.keras_lib import keras
if sys.argv[1] == "converted":  # what tf_keras got before keras_lib's rule
  from tensorflow.python.autograph.core import config
  config.CONVERSION_RULES = tuple(
      r for r in config.CONVERSION_RULES if not r.matches("tf_keras"))
import tasks
from trainer.model import ModelSpec, build_model
backbone, size, target = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
model = build_model(ModelSpec(head=tasks.get("classification").head(3),
                              input_size=size, target_size=target,
                              backbone=backbone))
model.compile(keras.optimizers.Adam(0.01), "categorical_crossentropy",
              metrics=["accuracy"])
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (16, size, size, 3)).astype("float32")
y = keras.utils.to_categorical(rng.integers(0, 3, 16), 3)
start = time.perf_counter()
model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y))
print(json.dumps({"fit_s": time.perf_counter() - start}))
"""


def first_fit(side, args):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = subprocess.run(
      [sys.executable, "-c", CHILD, side, args.backbone, str(args.input_size),
       str(args.target_size)], cwd=root, check=True, capture_output=True,
      text=True, env={**os.environ, "PYTHONPATH": root,
                      "TF_CPP_MIN_LOG_LEVEL": "3"})
  return json.loads(out.stdout.strip().splitlines()[-1])["fit_s"]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--backbone", default="tiny_cnn")
  parser.add_argument("--input-size", type=int, default=64)
  parser.add_argument("--target-size", type=int, default=32)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  times = {"left alone": [], "converted": []}
  for i in range(args.repeats):  # alternate which side goes first
    for side in (list(times) if i % 2 == 0 else list(times)[::-1]):
      times[side].append(first_fit(side, args))
  print(f"machine: {os.cpu_count()} CPU cores; {args.backbone} "
        f"{args.input_size}->{args.target_size}, {args.repeats} runs each")
  for side, values in times.items():
    print(f"first fit, tf_keras {side:10s}: median {statistics.median(values):6.1f} s "
          f"(min {min(values):.1f}, max {max(values):.1f})")
  print("ratio converted / left alone: "
        f"{statistics.median(times['converted']) / statistics.median(times['left alone']):.2f}")


if __name__ == "__main__":
  main()
