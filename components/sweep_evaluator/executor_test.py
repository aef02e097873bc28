"""SweepEvaluator: one real TFMA evaluation of three rule-based candidates
(testing/rule_models.py) per task, whose scores and paired tables are known
in advance; bad inputs fail before TFMA runs; K=3 compiles for Vertex."""
import dataclasses
import itertools
import json
import os

import pytest
from tfx import v1 as tfx
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

import tasks
from components.result import recorded
from components.sweep_evaluator import SweepEvaluator
from components.candidate_inputs import model_key
from components.sweep_evaluator.executor import Executor
from gate import stats, tfma_metric
from pipeline.pipeline import eval_config_for
from testing.helpers import artifact, no_network
from testing.rule_models import (MEAN_RMSE, paired_sums, paired_table,
                                 rmse, save_model, top1, write_examples)

# Candidate name -> the quality level of its rule-based model.
CANDIDATES = {"learned_300-150": "good", "bilinear_150": "weak",
              "bilinear_112": "poor"}
TASKS = ("classification", "regression")
PAIRS = list(itertools.permutations(CANDIDATES, 2))  # both orders


def run(root, task, models, eval_config, examples=None):
  """Executor.Do as TFX calls it; returns the evaluation artifact."""
  evaluation = artifact(standard_artifacts.ModelEvaluation,
                        os.path.join(root, "evaluation"))
  examples = examples or write_examples(os.path.join(root, "examples"), task)
  Executor().Do({"examples": [examples], **models},
                {"evaluation": [evaluation]},
                {"eval_config": proto_utils.proto_to_json(eval_config)})
  return evaluation


def model_inputs(root, task):
  """{input key: [the candidate's Model artifact]}."""
  inputs = {}
  for name, level in CANDIDATES.items():
    model = artifact(standard_artifacts.Model, os.path.join(root, name))
    save_model(os.path.join(model.uri, "Format-Serving"), task, level)
    inputs[model_key(name)] = [model]
  return inputs


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory):
  """task -> its SweepEvaluator evaluation, run once."""
  made = {}

  def evaluation(task):
    if task not in made:
      root = str(tmp_path_factory.mktemp(task))
      made[task] = run(root, task, model_inputs(root, task),
                       eval_config_for(list(CANDIDATES), task))
    return made[task]
  return evaluation


def known_pair(task, a, b):
  """The paired metrics of a against b, from the rules."""
  la, lb = CANDIDATES[a], CANDIDATES[b]
  if task == "classification":
    names = (tfma_metric.EXAMPLES, tfma_metric.CANDIDATE_ONLY,
             tfma_metric.BASELINE_ONLY)
    return dict(zip(names, paired_table(la, lb)))
  names = (tfma_metric.SQ_EXAMPLES, tfma_metric.SQ_DIFF_SUM,
           tfma_metric.SQ_DIFF_SUMSQ)
  return dict(zip(names, paired_sums(la, lb)))


@pytest.mark.parametrize("task", TASKS)
def test_every_pair_keeps_its_paired_statistics(task, evaluations):
  uri = evaluations(task).uri
  overall = tfma_metric.overall_metrics(uri)
  for a, b in PAIRS:
    assert tfma_metric.pair_values(overall, a, b) == pytest.approx(
        known_pair(task, a, b), rel=1e-6), (a, b)
  # Each unordered pair is stored once, under the first of the EvalConfig.
  stored = {(model, n.split(tfma_metric.PAIR)[1])
            for model, values in overall.items() for n in values
            if tfma_metric.PAIR in n}
  assert stored == set(itertools.combinations(CANDIDATES, 2))


@pytest.mark.parametrize("task", TASKS)
def test_each_model_scores_as_its_rule(task, evaluations):
  uri = evaluations(task).uri
  kind = tasks.named(task)
  for name, level in CANDIDATES.items():
    values = tfma_metric.load_values(uri, name)
    if task == "classification":
      assert kind.score_of(values) == pytest.approx(top1(level))
    else:
      assert kind.score_of(values) == pytest.approx(rmse(level), rel=1e-5)
      # The constant predictor the floor compares against, per model.
      assert values[tfma_metric.CONSTANT_SE] == pytest.approx(
          MEAN_RMSE ** 2, rel=1e-5)
  scores = ", ".join(f"{name} {top1(level):.3f}"
                     for name, level in CANDIDATES.items())
  if task == "classification":
    assert recorded(evaluations(task)) == f"top-1 {scores}"


@pytest.mark.parametrize("task", TASKS)
def test_compare_pair_is_the_paired_test_of_the_known_table(task,
                                                             evaluations):
  uri = evaluations(task).uri
  kind = tasks.named(task)
  test = (stats.paired_accuracy if task == "classification"
          else stats.paired_squared_error)
  for a, b in PAIRS:
    got = dataclasses.asdict(kind.compare_pair(uri, a, b, 0.9))
    want = dataclasses.asdict(test(*known_pair(task, a, b).values(),
                                   confidence=0.9))
    numbers = {k for k, v in want.items() if isinstance(v, float)}
    assert {k: got[k] for k in numbers} == pytest.approx(
        {k: want[k] for k in numbers}, rel=1e-6), (a, b)
    assert {k: got[k] for k in set(want) - numbers} == {
        k: want[k] for k in set(want) - numbers}, (a, b)
  # Positive favours the first: the better model, either way round.
  assert kind.compare_pair(uri, "learned_300-150", "bilinear_112",
                           0.95).difference > 0
  assert kind.compare_pair(uri, "bilinear_112", "learned_300-150",
                           0.95).difference < 0


@pytest.mark.parametrize("task", TASKS)
def test_a_pair_not_evaluated_is_a_clear_error(task, evaluations):
  uri = evaluations(task).uri
  with pytest.raises(RuntimeError, match="no Paired.* of 'learned_300-150' "
                     "against 'bilinear_300'"):
    tasks.named(task).compare_pair(uri, "learned_300-150", "bilinear_300",
                                   0.95)


# Bad inputs: each fails before TFMA runs, naming what is wrong.

def channel(artifact_type=standard_artifacts.Model):
  return tfx.dsl.Channel(type=artifact_type)


def test_an_empty_model_channel_names_the_candidate(tmp_path):
  models = model_inputs(str(tmp_path), "classification")
  models[model_key("bilinear_150")] = []  # its Trainer produced nothing
  with pytest.raises(ValueError, match="candidate 'bilinear_150' has 0 "
                     "artifacts in its input 'model_bilinear_150'"):
    run(str(tmp_path), "classification", models,
        eval_config_for(list(CANDIDATES)))
  assert not os.path.exists(tmp_path / "evaluation")


@pytest.mark.parametrize("name", ["bad name", "../x", "a@b", "", "x" * 101,
                                  "_hidden"])
def test_an_invalid_candidate_name_is_refused(name):
  models = {"bilinear_150": channel(), name: channel()}
  with pytest.raises(ValueError, match="model name .*: use 1 to 100 letters"):
    SweepEvaluator(examples=channel(standard_artifacts.Examples),
                   models=models, eval_config=eval_config_for(list(models)))


def test_an_invalid_name_in_the_inputs_is_refused_at_run_time(tmp_path):
  models = model_inputs(str(tmp_path), "classification")
  models[model_key("a@b")] = models.pop(model_key("bilinear_150"))
  config = eval_config_for(["learned_300-150", "a@b", "bilinear_112"])
  with pytest.raises(ValueError, match="model name 'a@b'"):
    run(str(tmp_path), "classification", models, config)


@pytest.mark.parametrize("names, config, message", [
    (["bilinear_150"], ["bilinear_150"], "two or more distinct"),
    (["a", "b"], ["a", "c"], r"the EvalConfig's models \['a', 'c'\] are not "
     r"the candidates \['a', 'b'\]"),
])
def test_candidates_and_eval_config_must_agree(names, config, message):
  with pytest.raises(ValueError, match=message):
    SweepEvaluator(examples=channel(standard_artifacts.Examples),
                   models={n: channel() for n in names},
                   eval_config=eval_config_for(config))


def test_no_candidate_may_be_the_baseline():
  config = eval_config_for(["a", "b"])
  config.model_specs[1].is_baseline = True
  with pytest.raises(ValueError, match=r"\['b'\] marked is_baseline"):
    SweepEvaluator(examples=channel(standard_artifacts.Examples),
                   models={"a": channel(), "b": channel()},
                   eval_config=config)


def test_three_candidates_compile_for_vertex(tmp_path):
  importers = {name: tfx.dsl.Importer(
      source_uri=f"gs://fake-bucket/{name}",
      artifact_type=standard_artifacts.Model).with_id(f"Import_{name}")
               for name in CANDIDATES}
  examples = tfx.dsl.Importer(source_uri="gs://fake-bucket/examples",
                              artifact_type=standard_artifacts.Examples
                              ).with_id("Import_examples")
  sweep = SweepEvaluator(
      examples=examples.outputs["result"],
      models={n: i.outputs["result"] for n, i in importers.items()},
      eval_config=eval_config_for(list(CANDIDATES)))
  pipeline = tfx.dsl.Pipeline(
      pipeline_name="sweep", pipeline_root="gs://fake-bucket/root",
      components=[examples, *importers.values(), sweep])
  out = tmp_path / "pipeline.json"
  with no_network():
    tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image="europe-docker.pkg.dev/p/r/pipeline:test"),
        output_filename=str(out)).run(pipeline)
  spec = json.loads(out.read_text())["pipelineSpec"]
  task = spec["root"]["dag"]["tasks"]["SweepEvaluator"]
  inputs = task["inputs"]["artifacts"]
  assert set(inputs) == {"examples"} | {model_key(n) for n in CANDIDATES}
  for name in CANDIDATES:  # each input is its own candidate's model
    assert inputs[model_key(name)]["taskOutputArtifact"]["producerTask"] == (
        f"Import_{name}")
  compiled_config = json.loads(task["inputs"]["parameters"]["eval_config"][
      "runtimeValue"]["constantValue"]["stringValue"])
  assert [m["name"] for m in compiled_config["model_specs"]] == list(
      CANDIDATES)
  component = spec["components"][task["componentRef"]["name"]]
  assert set(component["inputDefinitions"]["artifacts"]) == set(inputs)
  executor = spec["deploymentSpec"]["executors"][
      component["executorLabel"]]["container"]["args"]
  assert executor[executor.index("--executor_class_path") + 1] == (
      f"{Executor.__module__}.Executor")
