"""Every gate outcome, for both tasks, on real TFMA evaluations.

{classification, regression} x {learned selected, bilinear selected, nothing
above the floor} x {first push (skipped locally, not evaluated on Vertex),
production better, production worse, the identical model in production}.

The models are testing/rule_models.py's: small SavedModels with the
pipeline's serving signatures whose answers follow a known rule per eval
example. So every paired table, and every decision, is known in advance, and
what decides it is TFX's Evaluator running TFMA with the
pipeline's EvalConfig, ModelSelector, Evaluator_production, PushDecision, the
Pusher and ResultsReport, chained as the pipeline chains them.
"""
import json
import os

import pytest
import tensorflow as tf
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import io_utils, proto_utils

from components import IngestReport, atomic_pusher
from components.image_example_gen.executor import SUMMARY_FILE
from components.candidate_inputs import model_key, run_key
from components.model_selector.component import (CANDIDATES, FINGERPRINT,
                                                 ModelSelector, fingerprint)
from components.production_evaluator import ProductionEvaluator
from components.production_evaluator.executor import Executor as ProdExecutor
from components.push_decision.component import PushDecision
from components.results_report import model_card
from components.results_report.component import (ResultsReport,
                                                   comparison_text)
from components.sweep_evaluator.executor import Executor as SweepExecutor
from pipeline.pipeline import eval_config, eval_config_for
from testing.helpers import (HtmlPage, artifact, cost_record,
                             tensorboard_events, write_label_vocab)
from testing.rule_models import (CLASSES, MEAN_RMSE, N, rmse, save_model,
                                 top1, write_examples)
from trainer import features
from trainer.resizer import learnable_resizer
from trainer.training import MODEL_INFO, RESIZER_WEIGHTS


class World:
  """One task's models, examples and evaluations, each made once."""

  def __init__(self, root, task):
    self.root, self.task = root, task
    self.examples = write_examples(os.path.join(root, "examples"), task)
    self.transform_graph = artifact(standard_artifacts.TransformGraph,
                                    os.path.join(root, "transform"))
    write_label_vocab(self.transform_graph.uri, CLASSES)
    self._models, self._production, self._ids = {}, {}, 0

  def model_dir(self, level):
    """The level's SavedModel, saved once: copies of it are identical."""
    if level not in self._models:
      self._models[level] = save_model(
          os.path.join(self.root, "levels", level), self.task, level)
    return self._models[level]

  def model(self, name, level):
    """A Model artifact holding a copy of the level's model."""
    self._ids += 1
    uri = os.path.join(self.root, f"{name}-{self._ids}")
    io_utils.copy_dir(self.model_dir(level), os.path.join(uri,
                                                          "Format-Serving"))
    made = artifact(standard_artifacts.Model, uri)
    made.id = self._ids
    return made

  def production(self, candidate, candidate_level, state):
    """(the model in production, Evaluator_production's evaluation of the
    candidate against it), made once per candidate level and state: copies of
    a level are the same files, so they evaluate alike."""
    key = (candidate_level, state)
    if key not in self._production:
      # "identical": a copy of the candidate's level, the very same files.
      production = self.model("production",
                              PRODUCTION[candidate_level][state])
      production.set_string_custom_property(FINGERPRINT,
                                            fingerprint(production.uri))
      self._production[key] = (production, self.evaluate(
          ProductionEvaluator.EXECUTOR_SPEC.executor_class(), candidate,
          production, ("candidate", "production")))
    return self._production[key]

  def evaluate(self, executor, candidate, baseline, names):
    """A real TFX/TFMA evaluation of two models on the eval split."""
    self._ids += 1
    evaluation = artifact(standard_artifacts.ModelEvaluation,
                          os.path.join(self.root, f"evaluation-{self._ids}"))
    blessing = artifact(standard_artifacts.ModelBlessing,
                        os.path.join(self.root, f"blessing-{self._ids}"))
    executor.Do({"examples": [self.examples], "model": [candidate],
                 "baseline_model": [baseline]},
                {"evaluation": [evaluation], "blessing": [blessing]},
                {"eval_config": proto_utils.proto_to_json(
                    eval_config(*names, self.task)), "example_splits": "null"})
    return evaluation


PAIR = ("learned", "bilinear")
# Served cost: the learned model is the costlier, as at the same sizes.
GFLOPS = {"learned": 2.0, "bilinear": 1.0}
SELECTIONS = {  # (learned level, bilinear level) -> selected, candidate level
    "learned_selected": ("good", "weak", "learned", "good"),
    "bilinear_selected": ("weak", "good", "bilinear", "good"),
    "nothing_above_the_floor": ("worst", "poor", "bilinear", "poor"),
}
# The model in production, relative to the candidate.
PRODUCTION = {"good": {"better": "best", "worse": "weak", "identical": "good"},
              "poor": {"better": "best", "worse": "worst",
                       "identical": "poor"}}
STATES = ("first_push_local", "first_push_vertex", "better", "worse",
          "identical")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
  made = {}

  def world(task):
    if task not in made:
      made[task] = World(str(tmp_path_factory.mktemp(task)), task)
    return made[task]
  return world


@pytest.fixture(scope="module")
def selections(worlds):
  """(task, selection) -> the learned/bilinear artifacts, their evaluation and
  ModelSelector's output: each selection is evaluated once per task."""
  done = {}

  def selection(task, name):
    if (task, name) not in done:
      world = worlds(task)
      learned_level, bilinear_level, _, _ = SELECTIONS[name]
      learned = world.model("learned", learned_level)
      bilinear = world.model("bilinear", bilinear_level)
      evaluation = artifact(standard_artifacts.ModelEvaluation,
                            os.path.join(world.root, f"evaluation-{name}"))
      SweepExecutor().Do(
          {"examples": [world.examples], model_key("learned"): [learned],
           model_key("bilinear"): [bilinear]},
          {"evaluation": [evaluation]},
          {"eval_config": proto_utils.proto_to_json(
              eval_config_for(PAIR, task))})
      selected = artifact(standard_artifacts.Model,
                          os.path.join(world.root, f"selected-{name}"))
      ModelSelector.EXECUTOR_SPEC.executor_class().Do(
          {model_key("learned"): [learned], model_key("bilinear"): [bilinear],
           run_key("learned"): [_model_run(world, "learned", learned_level,
                                           "learned")],
           run_key("bilinear"): [_model_run(world, "bilinear",
                                            bilinear_level, "bilinear")],
           "evaluation": [evaluation],
           "transform_graph": [world.transform_graph]},
          {"model": [selected]},
          {"min_gain": 0.0, "confidence": 0.95, "floor": None, "task": task,
           "cost": "flops", CANDIDATES: json.dumps(PAIR)})
      selected.id = 1000 + len(done)
      done[(task, name)] = {"learned": learned, "bilinear": bilinear,
                            "evaluation": evaluation, "selected": selected}
    return done[(task, name)]
  return selection


def _model_run(world, name, level, resizer):
  """A Trainer's model_run output as ResultsReport reads it."""
  uri = os.path.join(world.root, f"run-{name}-{level}")
  run = artifact(standard_artifacts.ModelRun, uri)
  if tf.io.gfile.exists(os.path.join(uri, MODEL_INFO)):
    return run
  score = "accuracy" if world.task == "classification" else "rmse"
  info = {"resizer": resizer, "backbone": "rule", "task": world.task,
          "input_size": 4, "target_size": 2,
          "resizer_config": {"filters": 2, "num_res_blocks": 1,
                             "interpolation": "bilinear"},
          "params": 10, "trainable_params": 10,
          "cost": cost_record(GFLOPS[resizer] * 1e9),
          "class_names": list(CLASSES) if world.task == "classification"
          else [],
          "history": {"loss": [1.0, 0.5], score: [0.5, 0.6],
                      f"val_{score}": [0.4, 0.5]}}
  tf.io.gfile.makedirs(uri)
  with tf.io.gfile.GFile(os.path.join(uri, MODEL_INFO), "w") as f:
    json.dump(info, f)
  if resizer == "learned":
    learnable_resizer((2, 2), 2, 1, "bilinear").save_weights(
        os.path.join(uri, RESIZER_WEIGHTS))
  return run


def _ingest_report(world):
  report = artifact(IngestReport, os.path.join(world.root, "ingest"))
  tf.io.gfile.makedirs(report.uri)
  with tf.io.gfile.GFile(os.path.join(report.uri, SUMMARY_FILE), "w") as f:
    json.dump({"splits": {"train": 0, "eval": N}, "rejected": 0, "seen": N},
              f)
  return report


def run_gates(world, chosen, state, tmp_path):
  """Evaluator_production, PushDecision, the Pusher and ResultsReport for one
  production state; returns (results.json, serving folder)."""
  task, selected = world.task, chosen["selected"]
  candidate_level = SELECTIONS[chosen["name"]][3]
  root = str(tmp_path)
  production_evaluation = artifact(standard_artifacts.ModelEvaluation,
                                   os.path.join(root, "production-eval"))
  inputs = {"model": [selected], "evaluation": [chosen["evaluation"]],
            "production_evaluation": [], "production_model": []}
  if state == "first_push_vertex":  # the step ran but evaluated nothing
    ProdExecutor().Do(
        {"examples": [world.examples], "model": [selected],
         "baseline_model": []},
        {"evaluation": [production_evaluation],
         "blessing": [artifact(standard_artifacts.ModelBlessing,
                               os.path.join(root, "production-blessing"))]},
        {"eval_config": "{}"})
    inputs["production_evaluation"] = [production_evaluation]
  elif state != "first_push_local":  # locally a Cond skips the step
    production, evaluation = world.production(selected, candidate_level, state)
    inputs["production_model"] = [production]
    inputs["production_evaluation"] = [evaluation]
  blessing = artifact(standard_artifacts.ModelBlessing,
                      os.path.join(root, "push-blessing"))
  PushDecision.EXECUTOR_SPEC.executor_class().Do(
      inputs, {"blessing": [blessing]},
      {"tolerance": 0.0, "confidence": 0.95, "push_equal": 0, "task": task})
  serving = os.path.join(root, "serving")
  pushed = artifact(standard_artifacts.PushedModel,
                    os.path.join(root, "pushed"))
  atomic_pusher.Executor().Do(
      {"model": [selected], "model_blessing": [blessing]},
      {"pushed_model": [pushed]},
      {"push_destination": proto_utils.proto_to_json(
          pusher_pb2.PushDestination(
              filesystem=pusher_pb2.PushDestination.Filesystem(
                  base_directory=serving)))})
  report_dir = os.path.join(root, "report")
  learned_level, bilinear_level = SELECTIONS[chosen["name"]][:2]
  ResultsReport.EXECUTOR_SPEC.executor_class().Do(
      {"examples": [world.examples], "ingest_report": [_ingest_report(world)],
       model_key("learned"): [chosen["learned"]],
       run_key("learned"): [_model_run(world, "learned", learned_level,
                                       "learned")],
       model_key("bilinear"): [chosen["bilinear"]],
       run_key("bilinear"): [_model_run(world, "bilinear", bilinear_level,
                                        "bilinear")],
       "evaluation": [chosen["evaluation"]], "selected_model": [selected],
       "push_blessing": [blessing], "pushed_model": [pushed],
       "production_evaluation": inputs["production_evaluation"]},
      {},
      {CANDIDATES: json.dumps(PAIR), "report_dir": report_dir, "min_gain": 0.0,
       "production_tolerance": 0.0, "confidence": 0.95, "input_size": 4,
       "tensorboard_dir": os.path.join(root, "tensorboard"),
       "tensorboard_run": "run1"})
  with open(os.path.join(report_dir, "results.json")) as f:
    return json.load(f), serving


def score_text(task, level):
  return (f"{top1(level):.4f}" if task == "classification"
          else f"RMSE {rmse(level):.4g}")


def expected(task, selection, state):
  """(pushed model or None, decision, phrases the reason must hold)."""
  learned_level, bilinear_level, selected, level = SELECTIONS[selection]
  learned, bilinear = score_text(task, learned_level), score_text(
      task, bilinear_level)
  if selection == "nothing_above_the_floor":
    what = ("neither beats the floor RMSE" if task == "regression"
            else "are both under the floor")
    return None, "not_blessed", [
        f"nothing pushed: learned ({learned}) and bilinear ({bilinear})",
        what]
  why = (f"the learned resizer ({learned}) is ahead of bilinear ({bilinear})"
         if selection == "learned_selected" else
         f"bilinear is significantly better (learned {learned} vs bilinear "
         f"{bilinear}: ")
  if state.startswith("first_push"):
    return selected, "push", [f"{selected} pushed: {why}",
                              "it is the first model in production."]
  if state == "worse":
    return selected, "push", [
        f"{selected} pushed: {why}",
        "it is not significantly worse than production "
        f"({score_text(task, PRODUCTION[level]['worse'])})"]
  if state == "better":
    return None, "worse_than_production", [
        f"nothing pushed: {why}",
        f"the candidate {selected} ({score_text(task, level)}) is "
        "significantly worse than production "
        f"({score_text(task, PRODUCTION[level]['better'])})"]
  return None, "same_as_production", [
      f"nothing pushed: the candidate ({selected}) is the model already in "
      "production."]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("selection", sorted(SELECTIONS))
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_gate_outcome(task, selection, state, selections, worlds,
                            tmp_path):
  world = worlds(task)
  chosen = {**selections(task, selection), "name": selection}
  results, serving = run_gates(world, chosen, state, tmp_path)
  pushed, decision, phrases = expected(task, selection, state)
  _, _, selected, level = SELECTIONS[selection]
  assert results["task"] == task and results["selected"] == selected
  assert results["pushed"] == pushed
  assert results["production"]["decision"] == decision
  for phrase in phrases:
    assert phrase in results["reason"], results["reason"]
  # TensorBoard's text of the run: the same decision, reason and numbers.
  _, text, _, _ = tensorboard_events(
      str(tmp_path / "tensorboard" / "run1" / "comparison"))["comparison"]
  assert text.item().decode() == comparison_text(results)
  assert comparison_text(results).startswith(f"**decision: {decision}** ")
  # The report's numbers are TFMA's, and the rules': nothing is made up.
  for name, level_of in (("learned", SELECTIONS[selection][0]),
                         ("bilinear", SELECTIONS[selection][1])):
    model = results["models"][name]
    if task == "classification":
      assert model["top1"] == pytest.approx(top1(level_of))
    else:
      assert model["rmse"] == pytest.approx(rmse(level_of), rel=1e-5)
  if task == "regression":
    assert results["thresholds"]["mean_predictor_rmse"] == pytest.approx(
        MEAN_RMSE, rel=1e-5)
    assert results["thresholds"]["floor"] == pytest.approx(MEAN_RMSE,
                                                           rel=1e-5)
  found = sorted(os.listdir(serving)) if os.path.isdir(serving) else []
  versions = [name for name in found if name.isdigit()]
  if pushed is None:
    assert results["pushed_path"] is None and not found
  else:
    [version] = versions
    assert results["pushed_path"] == os.path.join(serving, version)
    # The model card beside the pushed model, the report's own.
    assert found == sorted([version] + [f"{version}.{name}" for name in (
        model_card.MARKDOWN_FILE, model_card.HTML_FILE)])
    for name in (model_card.MARKDOWN_FILE, model_card.HTML_FILE):
      with open(os.path.join(serving, f"{version}.{name}")) as beside, \
          open(os.path.join(tmp_path, "report", name)) as report:
        assert beside.read() == report.read()
    # The files pushed are the selected level's model, whole.
    assert fingerprint(results["pushed_path"]) == fingerprint(
        world.model_dir(level))
  comparison = results["production"]["comparison"]
  assert (comparison is None) == state.startswith("first_push")
  # The model card beside results.json states its headline numbers.
  with open(os.path.join(tmp_path, "report", model_card.HTML_FILE)) as f:
    page = HtmlPage(f.read())
  rows = {(r[0], r[1]): r[2] for r in page.rows("performance_metrics")}
  score, unit = (("top1", "top-1") if task == "classification"
                 else ("rmse", "RMSE"))
  for name in ("learned", "bilinear"):
    assert rows[(f"{name} {unit}", "eval")] == format(
        results["models"][name][score], model_card.NUMBER)
  assert page.text("reason") == results["reason"]
  figures = [a["alt"] for tag, a in page.tags if tag == "img"]
  assert sorted(figures) == sorted(["resized.png", "training.png",
                                   "pareto.png"] + (
      ["predicted.png"] if task == "regression" else []))
