"""The whole DAG with LocalDagRunner on tiny generated data."""
import contextlib
import glob
import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import time

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.image_example_gen.ingest import UNRECOGNISED
from components.model_selector.component import FLOOR, fingerprint
from components.results_report.component import comparison_text
from components.push_decision.component import clears_floor
from gate import tfma_metric
from pipeline import cli, output_folder
from testing.helpers import (read_examples, serve_in_fresh_process,
                             tensorboard_events, tensorboard_hparams,
                             tiny_dataset)
from trainer.training import RESIZER_WEIGHTS

NODES = {"ImageExampleGen", "StatisticsGen", "CuratedSchemaGen",
         "ExampleValidator", "ValidationGate", "Transform", "Trainer_learned",
         "Trainer_bilinear", "Evaluator", "ModelSelector",
         "ProductionModelResolver", "Evaluator_production", "PushDecision",
         "Pusher", "ResultsReport"}
TINY_FLAGS = ["--backbone", "tiny_cnn", "--input-size", "64", "--target-size",
              "32", "--epochs", "1", "--batch-size", "8"]

def run_cli(data, out, *flags, stdout=None):
  """(exit status, results.json); what the run printed goes to `stdout`."""
  with contextlib.redirect_stdout(stdout or io.StringIO()):
    rc = cli.main(["run", "--data", str(data), "--output", str(out)] +
                  TINY_FLAGS + [str(f) for f in flags])
  with open(out / "report" / "results.json") as f:
    return rc, json.load(f)


def tree_digest(folder):
  """Names, sizes and contents of every file: proves a folder was not touched."""
  digest = hashlib.sha256()
  for path in sorted(glob.glob(str(folder / "**" / "*"), recursive=True)):
    digest.update(path.encode())
    if os.path.isfile(path):
      with open(path, "rb") as f:
        digest.update(f.read())
  return digest.hexdigest()


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _wait_for_lock(out, proc, timeout=600):
  """The lock file's record once `proc` holds out's lock."""
  path = out / output_folder.LOCK
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and proc.poll() is None:
    try:
      holder = json.loads(path.read_text())
      if holder.get("pid") == proc.pid:
        return holder
    except (OSError, ValueError):
      pass
    time.sleep(0.05)
  raise AssertionError(f"the first run never held {path}")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """The first run, a process of its own as a user starts it; while it runs,
  a second run on the same output is started in this process."""
  root = tmp_path_factory.mktemp("e2e")
  data, out = root / "data", root / "out"
  n = tiny_dataset(data, per_class=8, classes=3)
  before = tree_digest(data)
  # floor 0 and a negative gain keep the best model (learned, on this seed)
  # on one epoch of tiny data; the other gate scenarios are below.
  command = [sys.executable, "-m", "pipeline.cli", "run", "--data", str(data),
             "--output", str(out), *TINY_FLAGS, "--floor", "0", "--min-gain",
             "-1"]
  first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": ROOT})
  try:
    holder = _wait_for_lock(out, first)
    second_err = io.StringIO()
    with contextlib.redirect_stderr(second_err), \
        contextlib.redirect_stdout(io.StringIO()):
      second_rc = cli.main(["run", "--data", str(data), "--output", str(out)]
                           + TINY_FLAGS)
    stdout, stderr = first.communicate(timeout=1200)
  finally:
    first.kill()
  with open(out / "report" / "results.json") as f:
    results = json.load(f)
  return {"rc": first.returncode, "stderr": stderr, "data": data, "out": out,
          "n": n, "results": results, "command": command, "holder": holder,
          "second": (second_rc, second_err.getvalue()),
          "data_unchanged": tree_digest(data) == before, "stdout": stdout}


def test_run_succeeds_and_only_reads_the_data_folder(run):
  assert run["rc"] == 0, run["stderr"]
  assert run["data_unchanged"]


def test_a_concurrent_second_run_is_refused_and_the_first_pushes_once(run):
  """Two runs on one output would both push as the first model in
  production; the second stops at once, naming the first."""
  rc, err = run["second"]
  assert rc == 2 and len(err.strip().splitlines()) == 1
  assert (f"--output: {run['out']} is in use by another run (pid "
          f"{run['holder']['pid']} on ") in err
  assert f"command: {shlex.join(run['command'])}" in err
  assert run["results"]["pushed"] == "learned"
  assert len(_versions(run["out"] / "serving")) == 1


DURATION = r"(\d+\.\d s|\d+ min \d\d s)"


def test_progress_lines_name_each_step_its_result_and_duration(run):
  lines = run["stdout"].splitlines()
  started = [m.group(1) for m in map(
      re.compile(r"(\w+): started \(step \d+ of 15\)").fullmatch, lines) if m]
  assert sorted(started) == sorted(NODES)
  finished = {}
  for line in lines:
    m = re.fullmatch(rf"(\w+): (.+) — {DURATION}", line)
    if m and not m.group(2).startswith("epoch "):
      finished[m.group(1)] = m.group(2)
  assert set(finished) == NODES
  results, examples = run["results"], run["results"]["examples"]
  top1 = {k: m["top1"] for k, m in results["models"].items()}
  assert finished["ImageExampleGen"] == (
      f"24 ingested, 0 rejected ({examples['train']} train, "
      f"{examples['eval']} eval)")
  assert finished["CuratedSchemaGen"] == \
      "3 classes (checker, horizontal, vertical)"
  assert finished["ProductionModelResolver"] == "no model in production yet"
  assert finished["Evaluator"] == (
      f"top-1 learned {top1['learned']:.3f}, bilinear {top1['bilinear']:.3f}")
  assert finished["ModelSelector"].startswith(
      "learned (the learned resizer is ahead; ")
  assert f"{examples['eval']} eval images)" in finished["ModelSelector"]
  # Nothing in production: the second evaluation is not run.
  assert finished["Evaluator_production"] == \
      "skipped: no model in production to compare with"
  assert finished["PushDecision"] == "push"
  assert finished["Pusher"] == f"pushed to {results['pushed_path']}"
  assert finished["ResultsReport"] == \
      f"wrote {run['out'] / 'report' / 'results.json'}"
  for resizer in ("learned", "bilinear"):
    [run_dir] = glob.glob(str(run["out"] / "pipeline_root" /
                              f"Trainer_{resizer}" / "model_run" / "*"))
    info = json.loads(open(os.path.join(run_dir, "model_info.json")).read())
    assert finished[f"Trainer_{resizer}"] == \
        f"eval top-1 {info['eval_top1']:.3f} after 1 epoch"
    [epoch] = [l for l in lines if l.startswith(f"Trainer_{resizer}: epoch")]
    history = {k: v[0] for k, v in info["history"].items()}
    assert epoch.startswith(
        f"Trainer_{resizer}: epoch 1/1 loss {history['loss']:.3f} accuracy "
        f"{history['accuracy']:.3f} val_loss {history['val_loss']:.3f} "
        f"val_accuracy {history['val_accuracy']:.3f} — ")
  assert re.fullmatch(rf"total {DURATION} \(14 ran, 1 skipped\)", lines[-1])
  # No library noise on stdout (it goes to stderr, and is filtered there).
  assert not [l for l in lines if "WARNING" in l or "Epoch 1/1" in l]


def test_first_push_checks_the_floor_on_the_first_evaluation(run):
  """With nothing in production PushDecision takes the selected model's top-1
  from the learned-vs-bilinear evaluation: either model, exactly at TFMA's
  threshold semantics (a top-1 equal to the floor passes)."""
  from tfx.types import standard_artifacts  # pylint: disable=import-outside-toplevel
  [evaluation] = glob.glob(str(run["out"] / "pipeline_root" / "Evaluator"
                               / "evaluation" / "*"))
  model = standard_artifacts.Model()
  for name in ("learned", "bilinear"):
    top1 = run["results"]["models"][name]["top1"]
    model.set_float_custom_property(FLOOR, top1)
    assert clears_floor(model, evaluation, name, "classification")
    model.set_float_custom_property(FLOOR, top1 + 1e-6)
    assert not clears_floor(model, evaluation, name, "classification")


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
  # Evaluator_production runs only with a model in production (the first run
  # has none; the gate stages below do).
  assert done == NODES - {"Evaluator_production"}


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
  assert results["thresholds"] == {"min_gain": -1.0, "floor": 0.0,
                                   "confidence": 0.95,
                                   "production_tolerance": 0.0}
  assert results["production"]["production_top1"] is None  # first push
  assert results["production"]["comparison"] is None
  assert results["production"]["candidate_top1"] == learned["top1"]
  # The paired comparison behind the selection, from TFMA's per-example pass:
  # its difference is the difference of the two top-1 values TFMA reports.
  selection = results["selection"]
  n = results["examples"]["eval"]
  assert selection["n"] == n and selection["test"].startswith("exact McNemar")
  assert selection["difference"] == pytest.approx(
      learned["top1"] - bilinear["top1"], abs=1e-6)
  assert selection["lower"] <= selection["difference"] <= selection["upper"]
  assert selection["outcome"] == "ahead" and selection["margin"] == -1.0
  # 8 eval images cannot detect 5 points, and the report says so.
  assert "too small to detect a 5-point difference" in results["power_note"]
  for m in (learned, bilinear):
    assert 0.0 <= m["train_sample_top1"] <= 1.0
  # Per-class recall and the confusion matrix cover the eval examples.
  matrix = learned["confusion_matrix"]
  assert len(matrix) == 3 and sum(map(sum, matrix)) == results["examples"]["eval"]
  correct = sum(matrix[i][i] for i in range(3))
  assert correct / results["examples"]["eval"] == pytest.approx(learned["top1"])
  assert set(learned["per_class_recall"]) <= set(results["class_names"])
  # Top-5 is measured whatever the class count (TFMA: 1.0 of 3 classes) and
  # left out of the report at 5 classes or fewer.
  [evaluation] = glob.glob(str(run["out"] / "pipeline_root" / "Evaluator"
                               / "evaluation" / "*"))
  measured = tfma_metric.overall_metrics(evaluation)
  for name, m in (("learned", learned), ("bilinear", bilinear)):
    assert measured[name][tfma_metric.TOP5] == 1.0
    assert m["top5"] is None and tfma_metric.TOP5 not in m["metrics"]


def test_pushed_model_serves_raw_jpeg_bytes_in_a_fresh_process(run, tmp_path):
  pushed = run["results"]["pushed_path"]
  assert pushed.startswith(str(run["out"] / "serving"))
  assert os.path.exists(os.path.join(pushed, "saved_model.pb"))
  images = sorted(glob.glob(str(run["data"] / "checker" / "*.jpg")))[:2] + \
      sorted(glob.glob(str(run["data"] / "vertical" / "*.png")))[:1]
  served = serve_in_fresh_process(pushed, images, tmp_path)
  by_bytes, by_example = served["images"], served["examples"]
  class_names = by_bytes["class_names"][0]
  assert not served["project_code_imported"]
  assert sorted(class_names) == ["checker", "horizontal", "vertical"]
  assert len(by_bytes["probabilities"]) == 3
  for probs, same in zip(by_bytes["probabilities"],
                         by_example["probabilities"]):
    assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-4
    assert probs == pytest.approx(same, abs=1e-6)
  assert set(by_bytes["top_class"]) <= set(class_names)
  assert by_bytes["error"] == by_example["error"] == [""] * 3


def _predict(capsys, *args):
  rc = cli.main(["predict"] + [str(a) for a in args])
  out, err = capsys.readouterr()
  return rc, out, err


def _signature_answers(model_dir, images):
  """(probabilities, class names) straight from serving_images."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  model = tf.saved_model.load(model_dir)
  data = [open(p, "rb").read() for p in images]
  out = model.signatures["serving_images"](image_bytes=tf.constant(data))
  return (out["probabilities"].numpy(),
          [c.decode() for c in out["class_names"].numpy()[0]])


def _some_images(run):
  return sorted(glob.glob(str(run["data"] / "checker" / "*.jpg")))[:1] + \
      sorted(glob.glob(str(run["data"] / "vertical" / "*.png")))[:1]


def test_predict_prints_the_pushed_models_top_classes(run, capsys):
  pushed = run["results"]["pushed_path"]
  images = _some_images(run)
  rc, out, err = _predict(capsys, "--model", pushed, *images)
  assert rc == 0 and "error" not in err
  lines = out.strip().splitlines()
  assert lines[0] == f"model: {pushed}"
  probs, names = _signature_answers(pushed, images)
  assert len(lines) == 1 + len(images)
  for line, image, p in zip(lines[1:], images, probs):
    order = sorted(range(len(p)), key=lambda i: -p[i])  # all 3 classes
    assert line == f"{image}: " + ", ".join(
        f"{names[i]} {p[i]:.4f}" for i in order)


def test_predict_reports_a_bad_file_and_answers_the_others(run, tmp_path,
                                                           capsys):
  bad = tmp_path / "broken.jpg"
  bad.write_bytes(b"\xff\xd8 not really a jpeg")
  good = _some_images(run)[0]
  rc, out, err = _predict(capsys, "--model", run["results"]["pushed_path"],
                          bad, good, tmp_path / "missing.png")
  assert rc == 1
  assert [l for l in out.splitlines() if l.startswith(good + ": ")]
  # Refused on the client, as ingest refuses it.
  assert f"{bad}: error: {UNRECOGNISED}" in err
  assert f"{tmp_path / 'missing.png'}: error: no such file" in err


def test_predict_json_from_the_serving_root(run, capsys):
  serving = run["out"] / "serving"
  newest = max((v for v in os.listdir(serving) if v.isdigit()), key=int)
  images = _some_images(run)
  rc, out, _ = _predict(capsys, "--model", serving, "--json", *images)
  doc = json.loads(out)
  assert rc == 0 and doc["model"] == str(serving / newest)
  probs, names = _signature_answers(doc["model"], images)
  assert [r["file"] for r in doc["results"]] == images
  for result, p in zip(doc["results"], probs):
    assert result["top_class"] == names[int(p.argmax())]
    assert {c["class"]: c["probability"] for c in result["top"]} == \
        pytest.approx(dict(zip(names, p.tolist())), abs=1e-6)


def _versions(serving):
  """The pushed versions (each model card beside its version is not one)."""
  return sorted((v for v in os.listdir(serving) if v.isdigit()), key=int)


def test_the_card_and_image_sizes_of_the_run(run):
  results = run["results"]
  pushed = results["pushed_path"]
  for name, path in results["pushed_model_card"].items():
    assert path == f"{pushed}.{name}"
    with open(path) as beside, open(run["out"] / "report" / name) as report:
      assert beside.read() == report.read()
  # tiny_dataset's images are 64 px squares; TFDV's statistics say so.
  for split in ("train", "eval"):
    assert results["image_sizes"][split] == {
        side: {"min": 64.0, "median": 64.0, "mean": 64.0, "max": 64.0}
        for side in ("height", "width")}
  recipe = results["models"]["learned"]["recipe"]
  assert (recipe["epochs"], recipe["batch_size"]) == (1, 8)


def test_report_figures_decode_with_the_expected_grid(run):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  report = run["out"] / "report"
  rows = min(6, run["results"]["examples"]["eval"])
  with Image.open(report / "resized.png") as grid:
    grid.load()
    assert grid.size == (3 * 64, 18 + rows * 64)  # original|bilinear|learned
  with Image.open(report / "training.png") as curves:
    curves.load()
    assert curves.size == (1000, 400)
  md = (report / "results.md").read_text()
  assert "| learned (pushed) |" in md and run["results"]["reason"] in md
  assert "| learned vs bilinear |" in md and run["results"]["power_note"] in md


# The gate scenarios continue on the same output folder (same MLMD, same
# serving folder), so the model in production carries over; upstream
# components and both Trainers come from the cache, except in the last,
# which warm-starts both from the model in production. Outcomes are forced
# by thresholds, never by faking metrics.
@pytest.fixture(scope="module")
def gate(run):
  stages = {}
  serving = run["out"] / "serving"
  for name, flags in [
      ("rerun", ["--floor", "0", "--min-gain", "-1"]),
      ("learned_worse", ["--floor", "0", "--min-gain", "1",
                         "--production-tolerance", "1"]),
      ("production_better", ["--floor", "0", "--min-gain", "-1",
                             "--production-tolerance", "-1"]),
      # --weights <serving root>: both Trainers start from the newest pushed
      # model's backbone; a learning rate of 0 leaves it as loaded.
      ("under_floor", ["--floor", "1.01", "--production-tolerance", "1",
                       "--weights", str(serving), "--learning-rate", "0"]),
  ]:
    printed = io.StringIO()
    newest = serving / _versions(serving)[-1]
    rc, results = run_cli(run["data"], run["out"], *flags, stdout=printed)
    stages[name] = {"rc": rc, "results": results, "stdout": printed.getvalue(),
                    "versions": _versions(serving), "newest_before": newest}
  return stages


def _trained(run, resizer):
  """Each execution's exported model of a Trainer, oldest first."""
  return sorted(glob.glob(str(run["out"] / "pipeline_root" /
                              f"Trainer_{resizer}" / "model" / "*" /
                              "Format-Serving")),
                key=lambda path: int(path.split(os.sep)[-2]))


def test_rerun_on_same_data_pushes_no_second_copy(run, gate):
  stage = gate["rerun"]
  assert stage["rc"] == 0 and stage["results"]["pushed"] is None
  assert stage["results"]["production"]["decision"] == "same_as_production"
  assert len(stage["versions"]) == 1
  assert stage["versions"][0] in run["results"]["pushed_path"]


def test_learned_worse_pushes_bilinear(run, gate):
  stage = gate["learned_worse"]
  results = stage["results"]
  assert stage["rc"] == 0 and results["selected"] == "bilinear"
  assert results["pushed"] == "bilinear" and len(stage["versions"]) == 2
  assert results["production"]["production_top1"] is not None
  # A model is in production now: the second evaluation ran, and says so.
  assert re.search(r"^Evaluator_production: top-1 candidate \d\.\d{3}, "
                   rf"production \d\.\d{{3}} — {DURATION}$", stage["stdout"],
                   re.M), stage["stdout"]
  pushed = results["pushed_path"]
  assert os.path.basename(pushed) == stage["versions"][-1]
  # The first run's bilinear model, from the cache (a later stage retrains).
  assert fingerprint(_trained(run, "bilinear")[0]) == fingerprint(pushed)


def test_better_production_model_blocks_the_push(gate):
  stage = gate["production_better"]
  results = stage["results"]
  assert stage["rc"] == 0 and results["selected"] == "learned"
  assert results["pushed"] is None and len(stage["versions"]) == 2
  assert results["production"]["decision"] == "worse_than_production"
  assert "significantly worse than production" in results["reason"]
  comparison = results["production"]["comparison"]
  assert comparison["margin"] == 1.0 and comparison["upper"] < 1.0


def test_both_under_the_floor_pushes_nothing(gate):
  stage = gate["under_floor"]
  results = stage["results"]
  assert stage["rc"] == 0 and results["pushed"] is None
  assert len(stage["versions"]) == 2
  assert "both under the floor" in results["reason"]


def test_warm_start_from_the_model_in_production(run, gate):
  """The under-floor stage warm-started both Trainers from the model in
  production (--weights <serving root>) with a learning rate of 0."""
  from trainer.keras_lib import keras  # pylint: disable=import-outside-toplevel

  def backbone_weights(model_dir):
    model = keras.models.load_model(model_dir, compile=False)
    backbone = model.get_layer("classifier").get_layer("tiny_cnn")
    return [w.numpy() for w in backbone.trainable_weights]

  stage = gate["under_floor"]
  assert stage["rc"] == 0
  production = backbone_weights(str(stage["newest_before"]))
  for resizer in ("learned", "bilinear"):
    first, warm = _trained(run, resizer)
    started = backbone_weights(warm)
    assert len(started) == len(production) > 0
    for a, b in zip(started, production):
      assert (a == b).all()
    # Not the Trainer's own first model: the pushed one it started from.
    assert fingerprint(first) != fingerprint(warm)


def _first_tensorboard_run(run):
  # Run names sort by start time; the gate stages came after the first run.
  return sorted(os.listdir(run["out"] / "tensorboard"))[0]


def test_trainers_write_tensorboard_logs_and_model_info(run):
  flops = {}
  first = _first_tensorboard_run(run)
  for resizer in ("learned", "bilinear"):
    # The first run's (the gate stages' last one trained again).
    runs = sorted(glob.glob(str(run["out"] / "pipeline_root" /
                                f"Trainer_{resizer}" / "model_run" / "*")),
                  key=lambda path: int(os.path.basename(path)))
    info = json.loads(open(os.path.join(runs[0], "model_info.json")).read())
    # OUT/tensorboard/<run>/<model>: both Trainers under the run's one folder;
    # model_run points there and holds no second copy.
    log_dir = run["out"] / "tensorboard" / first / resizer
    assert info["tensorboard"] == str(log_dir)
    assert not os.path.exists(os.path.join(runs[0], "train"))
    for split in ("train", "validation"):
      assert glob.glob(str(log_dir / split / "events.out.tfevents.*"))
    hparams = tensorboard_hparams(str(log_dir))
    assert {k: hparams[k] for k in ("resizer", "backbone", "input_size",
                                    "target_size", "epochs", "batch_size")} \
        == {"resizer": resizer, "backbone": "tiny_cnn", "input_size": 64,
            "target_size": 32, "epochs": 1, "batch_size": 8}
    step, final, _, _ = tensorboard_events(str(log_dir))["final/eval_top1"]
    assert step == 1 and float(final) == pytest.approx(info["eval_top1"])
    assert info["resizer"] == resizer and info["precision"] == "float32"
    assert info["first_epoch"] == 0 and info["epochs_run"] == 1
    assert set(info["seconds"]) == {"setup", "fit", "score", "export", "cost"}
    # Its served cost, measured on the exported model.
    cost = info["cost"]
    serving = _trained(run, resizer)[0]
    assert cost["saved_model_bytes"] == sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(serving) for f in files)
    assert cost["latency_ms_batch1"] > 0 and cost["latency_ms_batch32"] > 0
    assert cost["params"] == info["params"] and "cores" in cost["machine"]
    flops[resizer] = cost["flops_per_image"]
    # Every epoch's eval score is taken after BatchNorm recalibration, and the
    # final one is what the exported model scores.
    assert info["bn_recalibration"] == 1024
    assert info["history"]["val_accuracy"][-1] == pytest.approx(
        info["eval_top1"])
    assert info["seconds"]["fit"] > 0 and info["seconds"]["export"] > 0
    # The learned resizer alone, for the report's figure.
    assert os.path.isfile(os.path.join(runs[0], RESIZER_WEIGHTS + ".index")) \
        == (resizer == "learned")
  # The resizer's convolutions run at the input size: more FLOPs.
  assert flops["learned"] > flops["bilinear"] > 0


def test_tensorboard_holds_every_run_and_its_comparison(run, gate):
  """One folder per run on this output, in run order, each with its own
  decision; the gate stages' Trainers came from the cache (nothing logged)
  but the last stage's, which warm-started."""
  root = run["out"] / "tensorboard"
  runs = sorted(os.listdir(root))
  results = [run["results"]] + [stage["results"] for stage in gate.values()]
  assert len(runs) == len(results) == 5
  assert runs[0] == _first_tensorboard_run(run)
  assert sorted(os.listdir(root / runs[0])) == \
      ["bilinear", "comparison", "learned"]
  assert all(os.listdir(root / name) == ["comparison"] for name in runs[1:-1])
  assert sorted(os.listdir(root / runs[-1])) == \
      ["bilinear", "comparison", "learned"]
  for name, stage in zip(runs, results):
    _, text, plugin, _ = tensorboard_events(
        str(root / name / "comparison"))["comparison"]
    assert plugin == "text"
    assert text.item().decode() == comparison_text(stage)
  assert [r["production"]["decision"] for r in results] == \
      ["push", "same_as_production", "push", "worse_than_production",
       "not_blessed"]
