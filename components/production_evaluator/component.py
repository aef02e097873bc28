"""ProductionEvaluator: TFX's Evaluator, doing nothing with nothing in
production (see executor.py); the pipeline's Evaluator_production."""
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.production_evaluator import executor


class ProductionEvaluator(tfx.components.Evaluator):
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
