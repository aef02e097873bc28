"""TensorBoard's layout (trainer/tensorboard.py): <run>/<model> with the
Trainer's hyper-parameters and final scores, <run>/comparison with the
report's decision, read back from the event files."""
import dataclasses
import datetime
import os

import pytest
from tensorboard.plugins.hparams import metadata as hparams_metadata

import tasks
from components.results_report.component import comparison_text
from components.results_report.model_card_test import classification_results
from pipeline.config import (ModelConfig, PipelineConfig, TrainConfig,
                             VERTEX_JOB_NAME, VertexConfig, trainer_settings)
from testing.helpers import tensorboard_events, tensorboard_hparams
from trainer import tensorboard


def _config(tmp_path):
  config = PipelineConfig(output=str(tmp_path / "out"))
  config.model.backbone, config.model.weights = "tiny_cnn", None
  config.train.epochs, config.train.learning_rate = 3, 0.002
  return config


def test_a_trainers_hparams_and_final_scores_read_back(tmp_path):
  config = _config(tmp_path)
  settings = trainer_settings(config.trainer_config("learned"))
  log_dir = tensorboard.model_dir(settings.tensorboard_dir, "run1",
                                  settings.model_name)
  assert log_dir == os.path.join(str(tmp_path / "out"), "tensorboard", "run1",
                                 "learned")
  tensorboard.write_hparams(log_dir, settings.hparams(),
                            {"eval_top1": 0.625, "train_sample_top1": 0.75},
                            step=3)
  events = tensorboard_events(log_dir)
  _, _, plugin, content = events[hparams_metadata.SESSION_START_INFO_TAG]
  assert plugin == hparams_metadata.PLUGIN_NAME
  start = hparams_metadata.parse_session_start_info_plugin_data(content)
  written = tensorboard_hparams(log_dir)
  # Every typed setting of a Trainer, by its name, with the config's value.
  sections = (config.model, config.train,
              config.task_settings[config.task])
  expected = {f.name: getattr(s, f.name) for s in sections
              for f in dataclasses.fields(s)}
  expected.update(task=config.task, max_pixels=config.data.max_pixels,
                  resizer="learned", weights="none", candidates="none",
                  candidate="learned",
                  stored_size=config.transform_config()["input_size"])
  assert written == expected
  assert written["backbone"] == "tiny_cnn" and written["epochs"] == 3
  assert written["learning_rate"] == 0.002 and written["seed"] == 42
  assert start.group_name == "run1/learned"
  for tag, value in (("final/eval_top1", 0.625),
                     ("final/train_sample_top1", 0.75)):
    step, tensor, _, _ = events[tag]
    assert step == 3 and float(tensor) == value


def test_the_hparams_list_is_the_typed_settings():
  """A new setting reaches TensorBoard without a second list of names."""
  settings = trainer_settings(PipelineConfig(output="o").trainer_config(
      "bilinear"))
  names = set(settings.hparams())
  for section in (ModelConfig, TrainConfig,
                  tasks.get(settings.task).Settings):
    assert {f.name for f in dataclasses.fields(section)} <= names
  assert "tensorboard_dir" not in names and settings.model_name == "bilinear"


def test_the_comparison_text_is_the_reports_decision(tmp_path):
  results = classification_results()
  text = comparison_text(results)
  folder = tensorboard.write_comparison(str(tmp_path), "run1", text)
  assert folder == os.path.join(str(tmp_path), "run1", "comparison")
  step, tensor, plugin, _ = tensorboard_events(folder)[tensorboard.COMPARISON]
  written = tensor.item().decode()
  assert step == 0 and plugin == "text" and written == text
  selection = results["selection"]
  assert written.startswith("**decision: push** (pushed: learned)\n")
  assert results["reason"] in written
  assert f"| {selection['p_value']:.3g} |" in written
  assert "| learned (pushed) |" in written and "| bilinear |" in written


def test_runs_sort_by_time_and_two_runs_get_two_folders(tmp_path):
  t0 = datetime.datetime(2026, 1, 2, 3, 4, 5, 678900,
                         tzinfo=datetime.timezone.utc)
  local = t0.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))
  assert tensorboard.run_name(t0) == "20260102T030405.678Z"
  assert tensorboard.run_name(local) == "20260102T030405.678Z"  # as UTC
  later = [tensorboard.run_name(t0 + datetime.timedelta(milliseconds=ms))
           for ms in (1, 1000, 86_400_000)]
  assert sorted(later) == later and tensorboard.run_name(t0) < later[0]
  for run, model in (("r1", "learned"), ("r2", "learned")):
    tensorboard.write_hparams(tensorboard.model_dir(str(tmp_path), run, model),
                              {"epochs": 1}, {"eval_top1": 0.5}, step=1)
  assert sorted(os.listdir(tmp_path)) == ["r1", "r2"]


def test_the_run_comes_from_the_runner_or_the_vertex_job(monkeypatch):
  monkeypatch.delenv(tensorboard.RUN_ENV, raising=False)
  vertex = ("gs://b/root/123456789/learnable-resizer-20260102030405/"
            "Trainer_learned_8012/model_run")
  assert tensorboard.current_run(vertex) == "learnable-resizer-20260102030405"
  with tensorboard.run_env("20260102T030405.678Z"):
    assert tensorboard.current_run(vertex) == "20260102T030405.678Z"
    assert tensorboard.current_run("/out/pipeline_root/Trainer_learned/"
                                   "model_run/7") == "20260102T030405.678Z"
  assert tensorboard.RUN_ENV not in os.environ
  # Another runner, locally: a name of the step's own start time.
  assert tensorboard.current_run("/out/Trainer_learned/model_run/7").endswith(
      "Z")
  assert tensorboard.vertex_job_name("/out/pipeline_root/Trainer_learned/"
                                     "model_run/7") is None


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "", ".hidden",
                                  VERTEX_JOB_NAME, "a..b"])
def test_a_run_or_model_name_stays_one_folder(tmp_path, name):
  with pytest.raises(ValueError, match="TensorBoard (run|model) name"):
    tensorboard.model_dir(str(tmp_path), name, "learned")
  with pytest.raises(ValueError, match="TensorBoard model name"):
    tensorboard.model_dir(str(tmp_path), "run1", name)
  with pytest.raises(ValueError, match="TensorBoard run name"):
    tensorboard.write_comparison(str(tmp_path), name, "text")
  assert os.listdir(tmp_path) == []


def test_the_compiled_run_is_the_vertex_job_or_the_local_run():
  local = PipelineConfig(output="out", run_name="20260102T030405.678Z")
  assert local.tensorboard_run == "20260102T030405.678Z"
  vertex = PipelineConfig(output="gs://b/out", vertex=VertexConfig())
  assert vertex.tensorboard_run == VERTEX_JOB_NAME
  assert vertex.tensorboard_dir == "gs://b/out/tensorboard"
