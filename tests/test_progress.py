"""What `resizer-pipeline run` prints: steps, results, failures, no noise.

The lines of a whole successful run are checked in test_pipeline_e2e.py and,
for a resumed run with cached steps, in test_faults.py.
"""
import io
import json
import logging
import os
import re
import subprocess
import sys
import tokenize

import pytest
from ml_metadata.proto import metadata_store_pb2
from tfx.types import standard_artifacts

from components import result
from gate import tfma_metric
from pipeline import cli, pipeline, progress
from pipeline.config import DataConfig, PipelineConfig
from testing.helpers import artifact, write_evaluation
from trainer.training import MODEL_INFO


class _Clock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def _pipeline_config(tmp_path):
  """A config whose pipeline can be built without listing a data folder."""
  return PipelineConfig(output=str(tmp_path), data=DataConfig(
      path=str(tmp_path / "data"), layout="flat"))


def test_step_lines_durations_skips_and_the_total(tmp_path):
  out, clock = io.StringIO(), _Clock()
  config = _pipeline_config(tmp_path)
  report = progress.Progress(config, out=out, clock=clock)
  report.total_steps = 15
  report.lines = pipeline.create_pipeline_with_lines(config)[1]
  report.started("Evaluator_production")
  clock.now += 0.04
  report.finished("Evaluator_production", None)  # its conditional was false
  report.started("Trainer_learned")
  clock.now += 83.6
  report.step_failed("Trainer_learned", ValueError("no GPU\nmore detail"))
  clock.now += 1
  assert out.getvalue().splitlines() == [
      "Evaluator_production: started (step 1 of 15)",
      "Evaluator_production: skipped: no model in production to compare with "
      "— 0.0 s",
      "Trainer_learned: started (step 2 of 15)",
      "Trainer_learned: FAILED after 1 min 24 s: ValueError: no GPU",
  ]
  assert report.failed == "Trainer_learned"
  assert report.step_folder("Trainer_learned") == str(
      tmp_path / "pipeline_root" / "Trainer_learned")
  assert report.summary() == "total 1 min 25 s (1 skipped, 1 failed)"


def _finished(tmp_path, node_id, outputs=None, resolved=None,
              state=metadata_store_pb2.Execution.COMPLETE, lines=None):
  """The line Progress prints for `node_id` once its execution, recorded in
  a fresh MLMD store with these output artifacts ({key: [TFX artifact]};
  `resolved`: passed on, as a resolver does), finished."""
  from ml_metadata.metadata_store import metadata_store  # pylint: disable=import-outside-toplevel
  config = PipelineConfig(output=str(tmp_path / "out"))
  os.makedirs(config.output, exist_ok=True)
  connection = metadata_store_pb2.ConnectionConfig()
  connection.sqlite.filename_uri = config.metadata_path
  store = metadata_store.MetadataStore(connection)
  execution = metadata_store_pb2.Execution(
      type_id=store.put_execution_type(
          metadata_store_pb2.ExecutionType(name="node")),
      last_known_state=state)
  pairs = []
  for events, kind in ((outputs, metadata_store_pb2.Event.OUTPUT),
                       (resolved, metadata_store_pb2.Event.INTERNAL_OUTPUT)):
    for key, artifacts in (events or {}).items():
      for made in artifacts:
        mlmd = made.mlmd_artifact
        mlmd.type_id = store.put_artifact_type(made.artifact_type)
        event = metadata_store_pb2.Event(type=kind)
        event.path.steps.add().key = key
        pairs.append((mlmd, event))
  execution_id, _, _ = store.put_execution(execution, pairs, [])
  out, clock = io.StringIO(), _Clock()
  report = progress.Progress(config, out=out, clock=clock)
  report.lines = lines or {}
  report.started(node_id)
  clock.now += 2.5
  report.finished(node_id, execution_id)
  [line] = out.getvalue().splitlines()[1:]
  assert line.startswith(f"{node_id}: ") and line.endswith(" — 2.5 s"), line
  return line[len(node_id) + 2:-len(" — 2.5 s")]


def _with_result(cls, text, uri="/a"):
  made = artifact(cls, uri)
  if text is not None:
    result.record(made, text)
  return made


@pytest.mark.parametrize("node_id", ["PushDecision", "Gatekeeper_v2"])
def test_a_recorded_result_is_printed_whatever_the_step_is_called(tmp_path,
                                                                  node_id):
  outputs = {"blessing": [_with_result(standard_artifacts.ModelBlessing,
                                       "don't push: reasons")],
             "other": [_with_result(standard_artifacts.Examples, None)]}
  assert _finished(tmp_path, node_id, outputs) == "don't push: reasons"
  assert _finished(tmp_path / "again", node_id, outputs,
                   state=metadata_store_pb2.Execution.CACHED) == \
      "cached, don't push: reasons"


def test_a_resolved_artifact_s_result_is_another_step_s(tmp_path):
  """A resolver passes on artifacts whose result their producer recorded."""
  resolved = {"model": [_with_result(standard_artifacts.Model,
                                     "learned (the learned resizer is ahead)")]}
  assert _finished(tmp_path, "LatestModel", resolved=resolved) == "done"


@pytest.mark.parametrize("top1, metrics, expected", [
    # A baseline: the candidate first, whatever its name.
    ({"bilinear": 0.701, "zebra": 0.7124}, None,
     "top-1 zebra 0.712, bilinear 0.701"),
    # No baseline: TFMA files the lone model under the empty name.
    ({}, {"": {tfma_metric.MSE: 6.25}}, "RMSE candidate 2.500"),
])
def test_an_evaluation_without_a_result_prints_each_model_s_score(
    tmp_path, top1, metrics, expected):
  uri = str(tmp_path / "evaluation")
  write_evaluation(uri, top1, metrics=metrics,
                   paired={"zebra": (10, 1, 1)} if top1 else None)
  outputs = {"blessing": [artifact(standard_artifacts.ModelBlessing, "/b")],
             "evaluation": [artifact(standard_artifacts.ModelEvaluation, uri)]}
  assert _finished(tmp_path, "Judge", outputs) == expected


@pytest.mark.parametrize("task, info, expected", [
    ("classification", {"eval_top1": 0.6666, "history": {"loss": [2, 1]}},
     "eval top-1 0.667 after 2 epochs"),
    ("regression", {"eval_rmse": 1.5, "history": {"loss": [2]}},
     "eval RMSE 1.500 (normalised target) after 1 epoch"),
])
def test_a_model_run_without_a_result_prints_the_task_s_score(tmp_path, task,
                                                              info, expected):
  run_dir = tmp_path / "model_run"
  run_dir.mkdir()
  (run_dir / MODEL_INFO).write_text(json.dumps({**info, "task": task}))
  outputs = {"model": [artifact(standard_artifacts.Model, "/m")],
             "model_run": [artifact(standard_artifacts.ModelRun,
                                    str(run_dir))]}
  assert _finished(tmp_path, "Fit", outputs) == expected


def test_a_step_without_a_result_or_a_described_output_is_done(tmp_path):
  examples = {"examples": [artifact(standard_artifacts.Examples, "/e")]}
  assert _finished(tmp_path, "Ingest", examples) == "done"
  assert _finished(tmp_path / "none", "Gate", {}) == "done"
  # An unreadable output is no failure of the step: its line is "done".
  missing = {"model_run": [artifact(standard_artifacts.ModelRun,
                                    str(tmp_path / "gone"))]}
  assert _finished(tmp_path / "missing", "Fit", missing) == "done"


def test_the_dag_s_own_lines_come_first(tmp_path):
  outputs = {"model": [_with_result(standard_artifacts.Model, "learned")]}
  lines = {"Latest": progress.StepLines(
      done=lambda o: f"in production: {o['model'][0].uri}")}
  assert _finished(tmp_path, "Latest", resolved=outputs, lines=lines) == \
      "in production: /a"
  out, clock = io.StringIO(), _Clock()
  report = progress.Progress(PipelineConfig(output=str(tmp_path)), out=out,
                             clock=clock)
  report.lines = {"Check": progress.StepLines(skipped="skipped: no reason")}
  for node_id in ("Check", "Other"):
    report.started(node_id)
    report.finished(node_id, None)
  assert out.getvalue().splitlines()[1::2] == [
      "Check: skipped: no reason — 0.0 s", "Other: skipped — 0.0 s"]


def test_the_pipeline_declares_the_lines_of_its_dag_steps(tmp_path):
  dag, lines = pipeline.create_pipeline_with_lines(_pipeline_config(tmp_path))
  assert set(lines) <= {c.id for c in dag.components}
  resolver = lines["ProductionModelResolver"].done
  assert resolver({}) == "no model in production yet"
  assert resolver({"model": [artifact(standard_artifacts.Model, "/p/7")]}) == \
      "model in production: /p/7"
  assert lines["Evaluator_production"].skipped == \
      "skipped: no model in production to compare with"
  assert lines["ResultsReport"].done({}) == \
      f"wrote {tmp_path / 'report' / 'results.json'}"


def test_progress_names_no_node_of_the_pipeline(tmp_path):
  """Not in its code nor its strings (comments may cite TFX's classes)."""
  dag = pipeline.create_pipeline(_pipeline_config(tmp_path))
  with open(progress.__file__, encoding="utf-8") as f:
    source = " ".join(t.string for t in tokenize.generate_tokens(f.readline)
                      if t.type != tokenize.COMMENT)
  named = [c.id for c in dag.components
           if re.search(rf"\b{re.escape(c.id)}\b", source)]
  assert len(dag.components) == 15 and named == []


@pytest.fixture(autouse=True)
def restore_logging():
  """configure_logging (also run by cli.main) changes process-wide state."""
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  level, verbosity = logging.getLogger().level, absl_logging.get_verbosity()
  yield
  progress.configure_logging(verbose=True)  # removes the noise filters
  logging.getLogger().setLevel(level)
  absl_logging.set_verbosity(verbosity)


@pytest.fixture
def root_records():
  """Records reaching the root logger's handlers."""
  records = []
  handler = logging.Handler()
  handler.emit = records.append
  logging.getLogger().addHandler(handler)
  yield records
  logging.getLogger().removeHandler(handler)


def test_known_noise_is_dropped_and_other_warnings_kept(root_records):
  def log_all():
    absl = logging.getLogger("absl")
    absl.warning("ArtifactQuery.property_predicate is not supported.")
    absl.warning("Examples artifact does not have %s custom property. "
                 "Falling back to %s", "payload_format", "FORMAT_TF_EXAMPLE")
    absl.warning("Tables initialized inside a tf.function  will be "
                 "re-initialized on every invocation of the function.")
    logging.getLogger("tensorflow").warning(
        "From x.py:343: parse_example_dataset (from tf.data) is deprecated "
        "and will be removed in a future version.")
    absl.warning("label conflict: %s", "a.jpg")
    absl.info("Component %s is running.", "Transform")

  progress.configure_logging(verbose=False)
  log_all()
  assert [r.getMessage() for r in root_records] == ["label conflict: a.jpg"]
  root_records.clear()
  progress.configure_logging(verbose=True)
  log_all()
  assert len(root_records) == 6


def _unusable_data(folder):
  for label in ("cats", "dogs"):
    (folder / label).mkdir(parents=True)
    (folder / label / "a.jpg").write_bytes(b"not an image")


@pytest.mark.parametrize("verbose", [False, True])
def test_a_failed_step_is_named_with_its_folder(tmp_path, capsys, verbose):
  data, out = tmp_path / "data", tmp_path / "out"
  _unusable_data(data)
  rc = cli.main(["run", "--data", str(data), "--output", str(out),
                 "--backbone", "tiny_cnn", "--input-size", "64",
                 "--target-size", "32"] + (["--verbose"] if verbose else []))
  stdout, stderr = capsys.readouterr()
  assert rc == 1
  lines = stdout.splitlines()
  assert lines[0] == "ImageExampleGen: started (step 1 of 15)"
  assert re.fullmatch(r"ImageExampleGen: FAILED after \d+\.\d s: DatasetError:"
                      r" no usable image under .*", lines[1]), lines[1]
  assert len(lines) == 2  # nothing ran after it
  assert "resizer-pipeline: run failed: DatasetError: no usable image under" \
      in stderr
  folder = out / "pipeline_root" / "ImageExampleGen"
  assert (f"step ImageExampleGen failed; its outputs: {folder}/, its MLMD "
          f"records: {out / 'metadata.sqlite'}") in stderr
  assert ("Traceback (most recent call last)" in stderr) == verbose
  assert ("rerun with --verbose" in stderr) == (not verbose)
  assert re.search(r"^total \d+\.\d s \(1 failed\)$", stderr, re.M), stderr


def test_the_command_exits_non_zero_with_its_output_complete(tmp_path):
  """As a process (no argv given to main) run ends with os._exit: the exit
  status and every line printed before it must still arrive."""
  data, out = tmp_path / "data", tmp_path / "out"
  _unusable_data(data)
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run(
      [sys.executable, "-m", "pipeline.cli", "run", "--data", str(data),
       "--output", str(out)], cwd=root, capture_output=True, text=True,
      timeout=300, env={**os.environ, "PYTHONPATH": root})
  assert proc.returncode == 1
  assert proc.stdout.splitlines()[0] == \
      "ImageExampleGen: started (step 1 of 15)"
  assert "ImageExampleGen: FAILED after " in proc.stdout
  assert proc.stderr.rstrip().splitlines()[-1].startswith("total ")
  assert "step ImageExampleGen failed; its outputs: " in proc.stderr
  # TensorFlow's C++ start-up errors (CUDA plugin registration) are hidden.
  assert "Unable to register" not in proc.stderr


def test_names_from_the_data_reach_the_terminal_escaped(tmp_path):
  """A class name or error text with terminal control sequences (a folder
  named with ESC, a newline) is printed with them written out."""
  out, clock = io.StringIO(), _Clock()
  report = progress.Progress(PipelineConfig(output=str(tmp_path)), out=out,
                             clock=clock)
  report.started("ImageExampleGen")
  report.step_failed("ImageExampleGen",
                     ValueError("class folder 'c\x1b[2Jat\u202e' is bad"))
  assert out.getvalue().splitlines()[-1] == (
      "ImageExampleGen: FAILED after 0.0 s: ValueError: class folder "
      "'c\\x1b[2Jat\\u202e' is bad")
