"""Evaluator_production's executor: TFX's Evaluator, unless nothing is in
production.

Locally the pipeline skips Evaluator_production with tfx.dsl.Cond when
ProductionModelResolver found no model. On Vertex it can't be skipped:
PushDecision and ResultsReport read its evaluation, and KFP does not run the
tasks after one that its trigger condition skipped. There, without a
baseline, this executor returns at once instead of evaluating the candidate
alone again (a second full TFMA job, on Dataflow, repeating the first
Evaluator's work on the same eval examples). Its evaluation then carries
NOT_EVALUATED, and `evaluated()` reads it, as a skipped step, as no
evaluation: PushDecision checks the floor on the learned-vs-bilinear
evaluation, as it does locally.
"""
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils

from components import result

# Custom property on the output evaluation: why nothing was evaluated.
NOT_EVALUATED = "not_evaluated"
NO_BASELINE = "no model in production to compare with"


def evaluated(evaluation: Optional[types.Artifact]
              ) -> Optional[types.Artifact]:
  """`evaluation`, or None when Evaluator_production evaluated nothing:
  skipped by the local Cond (no artifact) or returned at once on Vertex."""
  if evaluation is None or evaluation.has_custom_property(NOT_EVALUATED):
    return None
  return evaluation


class Executor(evaluator_executor.Executor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    evaluation = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EVALUATION_KEY])
    if input_dict.get(standard_component_specs.BASELINE_MODEL_KEY):
      super().Do(input_dict, output_dict, exec_properties)
      result.record(evaluation, result.evaluation_line(evaluation.uri))
      return
    logging.info("Evaluator_production: %s; nothing evaluated (the floor is "
                 "checked on the learned-vs-bilinear evaluation)", NO_BASELINE)
    evaluation.set_string_custom_property(NOT_EVALUATED, NO_BASELINE)
    result.record(evaluation, f"nothing evaluated: {NO_BASELINE}")
    # As TFX's Evaluator marks a failed validation: nothing may read a
    # skipped evaluation's blessing as a pass.
    for blessing in output_dict.get(standard_component_specs.BLESSING_KEY, []):
      io_utils.write_string_file(
          f"{blessing.uri}/{constants.NOT_BLESSED_FILE_NAME}", "")
      blessing.set_int_custom_property(
          constants.ARTIFACT_PROPERTY_BLESSED_KEY, constants.NOT_BLESSED_VALUE)
