"""Faults: a run killed during training resumes, reusing what had finished."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from testing.helpers import tiny_dataset

SECRET = "sk-test-5b1f0c9e-do-not-log"
UPSTREAM = {"ImageExampleGen", "StatisticsGen", "CuratedSchemaGen",
            "ExampleValidator", "ValidationGate", "Transform"}


def executions_of_last_run(db):
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(db)
  store = metadata_store.MetadataStore(config)
  runs = sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
  nodes = {c.id: c.name.split(".", 1)[1]
           for c in store.get_contexts_by_type("node")}
  states = {}
  for execution in store.get_executions_by_context(runs[-1].id):
    for context in store.get_contexts_by_execution(execution.id):
      if context.id in nodes:
        states[nodes[context.id]] = execution.last_known_state
  return len(runs), states


EPOCHS = 10  # enough that the kill lands mid-training


def test_killed_run_resumes_training_and_reuses_finished_components(tmp_path):
  data, out = tmp_path / "data", tmp_path / "out"
  tiny_dataset(data, per_class=8, classes=3)
  cmd = [sys.executable, "-m", "pipeline.cli", "run", "--data", str(data),
         "--output", str(out), "--backbone", "tiny_cnn", "--input-size", "64",
         "--target-size", "32", "--epochs", str(EPOCHS), "--batch-size", "8",
         "--floor", "0", "--min-gain", "-1"]
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  # Credentials in the environment must reach no log and no artifact.
  env = {**os.environ, "PYTHONPATH": root,
         "AWS_SECRET_ACCESS_KEY": SECRET, "GITHUB_TOKEN": SECRET}
  proc = subprocess.Popen(cmd, cwd=root, env=env, start_new_session=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  # BackupAndRestore writes a checkpoint after each finished epoch: kill the
  # whole process group (SIGKILL, like a preemption) once a few exist.
  pattern = str(out / "pipeline_root" / "Trainer_*" / "backup" / "*" / "**" /
                "checkpoint")
  deadline = time.time() + 400
  while not glob.glob(pattern, recursive=True) and time.time() < deadline:
    assert proc.poll() is None, "the run ended before training started"
    time.sleep(0.2)
  time.sleep(0.5)  # into a later epoch
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  assert not (out / "report" / "results.json").exists()

  rerun = subprocess.run(cmd, cwd=root, env=env, capture_output=True,
                         text=True, timeout=900)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  runs, states = executions_of_last_run(out / "metadata.sqlite")
  assert runs == 2
  for node in UPSTREAM:
    assert states[node] == metadata_store_pb2.Execution.CACHED, node
  infos = [json.loads(open(p).read()) for p in glob.glob(
      str(out / "pipeline_root" / "Trainer_*" / "model_run" / "*" /
          "model_info.json"))]
  # The Trainer that was killed resumed from a later epoch than 0 and still
  # trained to the configured number of epochs.
  resumed = [i for i in infos if i["first_epoch"]]
  assert resumed, [i["first_epoch"] for i in infos]
  for info in resumed:
    assert info["first_epoch"] + info["epochs_run"] == EPOCHS
  # The recorded history still has all its epochs: the killed run's, then the
  # resumed run's.
  for info in infos:
    assert {k: len(v) for k, v in info["history"].items()} == {
        k: EPOCHS for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr")}
    assert None not in info["history"]["loss"]
  # What the resumed run printed: the upstream steps from the cache, the
  # killed Trainer's epochs numbered on from where it resumed, no noise.
  lines = rerun.stdout.splitlines()
  for node in UPSTREAM:
    assert [l for l in lines if re.fullmatch(
        rf"{node}: cached(, .+)? — \d+\.\d s", l)], (node, lines)
  for info in resumed:
    trainer = f"Trainer_{info['resizer']}: epoch "
    numbers = [int(l[len(trainer):].split("/")[0]) for l in lines
               if l.startswith(trainer)]
    assert numbers == list(range(info["first_epoch"] + 1, EPOCHS + 1))
  noise = ("ArtifactQuery", "Unable to register", "remapper failed",
           "is deprecated", "Tables initialized", "payload_format")
  assert not [l for l in (rerun.stdout + rerun.stderr).splitlines()
              if any(n in l for n in noise)]
  results = json.loads((out / "report" / "results.json").read_text())
  # --min-gain -1: no cheaper candidate is kept against the best.
  assert results["pushed"] == results["selection"]["sweep"]["best"]
  assert SECRET not in rerun.stdout + rerun.stderr
  for folder, _, files in os.walk(out):
    for name in files:
      with open(os.path.join(folder, name), "rb") as f:
        assert SECRET.encode() not in f.read(), os.path.join(folder, name)
