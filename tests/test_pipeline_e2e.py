"""The whole DAG with LocalDagRunner on tiny generated data."""
import glob
import json
import os
import subprocess
import sys

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import cli
from tests.helpers import read_examples, tiny_dataset

NODES = {"ImageExampleGen", "StatisticsGen", "CuratedSchemaGen",
         "ExampleValidator", "ValidationGate", "Transform", "Trainer_learned",
         "Trainer_bilinear", "Evaluator", "Pusher", "ResultsReport"}
TINY_FLAGS = ["--backbone", "tiny_cnn", "--input-size", "64", "--target-size",
              "32", "--epochs", "1", "--batch-size", "8"]

SERVE = r"""
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
images = [open(p, "rb").read() for p in sys.argv[2:]]
by_bytes = model.signatures["serving_images"](image_bytes=tf.constant(images))
examples = [tf.train.Example(features=tf.train.Features(feature={
    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b]))
})).SerializeToString() for b in images]
by_example = model.signatures["serving_default"](examples=tf.constant(examples))
print(json.dumps({
    "probabilities": by_bytes["probabilities"].numpy().tolist(),
    "example_probabilities": by_example["probabilities"].numpy().tolist(),
    "class_names": [c.decode() for c in by_bytes["class_names"].numpy()[0]],
    "top_class": [c.decode() for c in by_bytes["top_class"].numpy()],
    "project_code_imported": any(m.split(".")[0] in ("trainer", "components",
                                 "pipeline") for m in sys.modules),
}))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp("e2e")
  data, out = root / "data", root / "out"
  n = tiny_dataset(data, per_class=8, classes=3)
  # floor 0 and a negative gain make the learned model pass its gate on
  # one epoch of tiny data; the gate scenarios themselves are tested apart.
  rc = cli.main(["run", "--data", str(data), "--output", str(out),
                 "--floor", "0", "--min-gain", "-1"] + TINY_FLAGS)
  with open(out / "report" / "results.json") as f:
    results = json.load(f)
  return {"rc": rc, "data": data, "out": out, "n": n, "results": results}


def test_run_succeeds(run):
  assert run["rc"] == 0


def test_every_component_executed(run):
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(run["out"] / "metadata.sqlite")
  store = metadata_store.MetadataStore(config)
  done = set()
  for context in store.get_contexts_by_type("node"):
    states = [e.last_known_state for e in
              store.get_executions_by_context(context.id)]
    if metadata_store_pb2.Execution.COMPLETE in states:
      done.add(context.name.split(".", 1)[1])
  assert done == NODES


def test_example_counts_equal_the_images(run):
  examples_dir = glob.glob(str(run["out"] / "pipeline_root" / "ImageExampleGen"
                               / "examples" / "*"))[0]
  counts = {s: len(read_examples(os.path.join(examples_dir, f"Split-{s}")))
            for s in ("train", "eval")}
  assert counts["train"] + counts["eval"] == run["n"] == 24
  assert run["results"]["examples"] == counts
  assert run["results"]["rejected"] == 0


def test_results_json_holds_the_numbers(run):
  results = run["results"]
  learned, bilinear = results["models"]["learned"], results["models"]["bilinear"]
  # tiny_cnn + head on 3 classes; the resizer adds exactly its 12,163.
  assert learned["params"] - bilinear["params"] == 12_163
  assert 0.0 <= learned["top1"] <= 1.0 and 0.0 <= bilinear["top1"] <= 1.0
  assert results["pushed"] == "learned" and results["reason"]
  assert results["thresholds"] == {"min_gain": -1.0, "floor": 0.0}


def test_pushed_model_serves_raw_jpeg_bytes_in_a_fresh_process(run, tmp_path):
  pushed = run["results"]["pushed_path"]
  assert pushed.startswith(str(run["out"] / "serving"))
  assert os.path.exists(os.path.join(pushed, "saved_model.pb"))
  images = sorted(glob.glob(str(run["data"] / "checker" / "*.jpg")))[:2] + \
      sorted(glob.glob(str(run["data"] / "vertical" / "*.png")))[:1]
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  proc = subprocess.run([sys.executable, "-c", SERVE, pushed, *images],
                        cwd=tmp_path, env=env, capture_output=True, text=True,
                        check=True, timeout=300)
  served = json.loads(proc.stdout.strip().splitlines()[-1])
  assert not served["project_code_imported"]
  assert sorted(served["class_names"]) == ["checker", "horizontal", "vertical"]
  assert len(served["probabilities"]) == 3
  for probs, same in zip(served["probabilities"],
                         served["example_probabilities"]):
    assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-4
    assert probs == pytest.approx(same, abs=1e-6)
  assert set(served["top_class"]) <= set(served["class_names"])
