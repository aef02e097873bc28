"""SweepEvaluator: ONE TFMA evaluation of K candidate models on the same eval
examples, each model's task metrics named by candidate and every pair's
paired statistics (gate/tfma_metric.py), for the sweep's gate.

TFX's Evaluator takes one candidate and one baseline. Here each candidate
has its own input key, model_<name>, made from the candidate names when the
DAG is built: the name travels with its channel (a union of channels would
lose which model is which), and KubeflowV2 compiles each key as an input.
"""
from typing import Mapping

import tensorflow_model_analysis as tfma
from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components import candidate_inputs
from components.candidate_inputs import model_key
from components.sweep_evaluator import executor


class SweepEvaluatorSpec(types.ComponentSpec):
  """The inputs every sweep has; SweepEvaluator adds one per candidate."""
  PARAMETERS = {
      executor.EVAL_CONFIG_KEY: ExecutionParameter(type=tfma.EvalConfig)}
  INPUTS = {executor.EXAMPLES_KEY: ChannelParameter(
      type=standard_artifacts.Examples)}
  OUTPUTS = {executor.EVALUATION_KEY: ChannelParameter(
      type=standard_artifacts.ModelEvaluation)}


class SweepEvaluator(base_beam_component.BaseBeamComponent):
  """examples: the Examples whose eval split every model is scored on;
  models: {candidate name: its Model channel}; eval_config: one ModelSpec
  per candidate, named as in `models`, none a baseline."""

  SPEC_CLASS = SweepEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel,
               models: Mapping[str, types.BaseChannel],
               eval_config: tfma.EvalConfig):
    names = list(models)
    executor.check_candidates(eval_config, names)
    spec_class = candidate_inputs.spec_class(SweepEvaluatorSpec, names,
                                             [model_key("")])
    super().__init__(spec=spec_class(
        examples=examples, eval_config=eval_config,
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        **candidate_inputs.channels({model_key(""): models})))
