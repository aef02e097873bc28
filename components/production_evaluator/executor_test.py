"""Evaluator_production's executor, run as TFX runs it, artifacts on ram://.

Without a baseline (nothing in production; on Vertex, where the step can't be
skipped) it evaluates nothing; with one it is TFX's Evaluator. The whole
evaluation with a baseline runs in tests/test_pipeline_e2e.py's gate stages.
"""
from unittest import mock

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts

from components.production_evaluator import ProductionEvaluator
from components.production_evaluator.executor import (NO_BASELINE,
                                                      NOT_EVALUATED, Executor,
                                                      evaluated)
from components.result import recorded
from testing.helpers import artifact, ram_root, write_evaluation, write_model


def _writes_an_evaluation(self, inputs, outputs, exec_properties):
  """What TFX's Evaluator leaves: both models' metrics."""
  del self, inputs, exec_properties
  write_evaluation(outputs["evaluation"][0].uri,
                   {"production": 0.75, "candidate": 0.8},
                   paired={"candidate": (20, 2, 1)})


def run(with_baseline):
  """(TFX's Evaluator.Do mock, inputs, outputs) of one Do."""
  root = ram_root("production-evaluator")
  model = artifact(standard_artifacts.Model, f"{root}/candidate")
  write_model(model.uri)
  inputs = {"examples": [artifact(standard_artifacts.Examples,
                                  f"{root}/examples")],
            "model": [model], "baseline_model": []}  # the resolver's, empty
  if with_baseline:
    inputs["baseline_model"] = [artifact(standard_artifacts.Model,
                                         f"{root}/production")]
  outputs = {
      "evaluation": [artifact(standard_artifacts.ModelEvaluation,
                              f"{root}/evaluation")],
      "blessing": [artifact(standard_artifacts.ModelBlessing,
                            f"{root}/blessing")]}
  executor = ProductionEvaluator.EXECUTOR_SPEC.executor_class()
  with mock.patch.object(evaluator_executor.Executor, "Do", autospec=True,
                         side_effect=_writes_an_evaluation) as tfx_do:
    executor.Do(inputs, outputs, {"eval_config": "{}"})
  return tfx_do, executor, inputs, outputs


def test_without_a_baseline_nothing_is_evaluated():
  tfx_do, _, _, outputs = run(with_baseline=False)
  tfx_do.assert_not_called()
  [evaluation], [blessing] = outputs["evaluation"], outputs["blessing"]
  assert evaluation.get_string_custom_property(NOT_EVALUATED) == NO_BASELINE
  assert not tf.io.gfile.exists(evaluation.uri)
  assert evaluated(evaluation) is None
  assert recorded(evaluation) == (
      "nothing evaluated: no model in production to compare with")
  # Never a pass: the production resolver follows blessed=1 blessings.
  assert blessing.get_int_custom_property("blessed") == 0
  assert tf.io.gfile.listdir(blessing.uri) == ["NOT_BLESSED"]


def test_with_a_baseline_tfx_evaluates():
  tfx_do, executor, inputs, outputs = run(with_baseline=True)
  tfx_do.assert_called_once_with(executor, inputs, outputs,
                                 {"eval_config": "{}"})
  [evaluation] = outputs["evaluation"]
  assert not evaluation.has_custom_property(NOT_EVALUATED)
  assert evaluated(evaluation) is evaluation
  # The candidate first: the paired metrics are filed under it.
  assert recorded(evaluation) == "top-1 candidate 0.800, production 0.750"


def test_a_skipped_step_is_no_evaluation():
  assert evaluated(None) is None  # the local Cond skipped the step


def test_it_is_tfx_evaluator_with_this_executor():
  component = ProductionEvaluator(
      examples=tfx.dsl.Channel(type=standard_artifacts.Examples),
      model=tfx.dsl.Channel(type=standard_artifacts.Model),
      baseline_model=tfx.dsl.Channel(type=standard_artifacts.Model),
      eval_config=tfma.EvalConfig())
  assert isinstance(component, tfx.components.Evaluator)
  assert isinstance(component.executor_spec, executor_spec.BeamExecutorSpec)
  assert component.executor_spec.executor_class is Executor
  assert issubclass(Executor, evaluator_executor.Executor)
