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

import pytest
from ml_metadata.proto import metadata_store_pb2

from pipeline import cli, progress
from pipeline.config import PipelineConfig


class _Clock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def _artifact(uri="", **properties):
  artifact = metadata_store_pb2.Artifact(uri=uri)
  for name, value in properties.items():
    if isinstance(value, int):
      artifact.custom_properties[name].int_value = value
    else:
      artifact.custom_properties[name].string_value = value
  return artifact


def test_step_lines_durations_skips_and_the_total(tmp_path):
  out, clock = io.StringIO(), _Clock()
  config = PipelineConfig(output=str(tmp_path))
  report = progress.Progress(config, out=out, clock=clock)
  report.total_steps = 15
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


def test_gate_phrases_come_from_the_artifacts_custom_properties():
  comparison = {"n": 1000, "candidate_only": 40, "baseline_only": 25,
                "difference": 0.015, "lower": -0.012, "upper": 0.042,
                "p_value": 0.31, "confidence": 0.95, "detectable": 0.03,
                "test": "exact McNemar (paired, two-sided)", "margin": 0.0,
                "outcome": "not_significant"}
  selector = {"model": [_artifact(selected="bilinear",
                                  comparison=json.dumps(comparison))]}
  assert progress.result_phrase("ModelSelector", selector, None) == (
      "bilinear (no significant difference; +1.5 points, 95% CI "
      "-1.2…+4.2, p = 0.31, 1000 eval images)")
  decisions = {"push": "push",
               "same_as_production": "don't push: the candidate is the model "
                                     "already in production"}
  for decision, phrase in decisions.items():
    outputs = {"blessing": [_artifact(decision=decision, blessed=1)]}
    assert progress.result_phrase("PushDecision", outputs, None) == phrase
  pushed = {"pushed_model": [_artifact(pushed=1,
                                       pushed_destination="/o/serving/17")]}
  assert progress.result_phrase("Pusher", pushed, None) == \
      "pushed to /o/serving/17"
  assert progress.result_phrase(
      "Pusher", {"pushed_model": [_artifact(pushed=0)]}, None) == \
      "nothing pushed"
  assert progress.result_phrase("ProductionModelResolver", {}, None) == \
      "no model in production yet"


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
