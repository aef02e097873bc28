"""SweepEvaluator's executor: TFMA's public API over every candidate at once,
read and run as TFX's Evaluator does (the executor's Beam pipeline, the
Examples' TFXIO source, the EvalConfig's defaults), less its one-candidate
limit.

No model is the baseline: the paired metrics then keep every pair
(gate/tfma_metric.py), and which pairs the gate compares is its choice.
"""
from typing import Any, Dict, List, Sequence

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tfx import types
from tfx.components.util import tfxio_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, path_utils, proto_utils

from components import candidate_inputs, result, tfx_internals
from components.candidate_inputs import model_key
from gate import tfma_metric

EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY
EVALUATION_KEY = standard_component_specs.EVALUATION_KEY
EVAL_CONFIG_KEY = standard_component_specs.EVAL_CONFIG_KEY
SPLIT = "eval"           # the split every model is scored on, as TFX's default



def check_candidates(eval_config: tfma.EvalConfig,
                     names: Sequence[str]) -> None:
  """Raises ValueError unless `names` are two or more valid, distinct
  candidate names and the EvalConfig has one ModelSpec for each, none a
  baseline."""
  for name in names:
    tfma_metric.check_model_name(name)
  if len(names) < 2 or len(set(names)) != len(names):
    raise ValueError(f"SweepEvaluator: candidates {list(names)}: give two or "
                     "more distinct candidates (one alone has nothing to be "
                     "compared with)")
  specs = [spec.name for spec in eval_config.model_specs]
  if sorted(specs) != sorted(names):
    raise ValueError(f"SweepEvaluator: the EvalConfig's models {specs} are "
                     f"not the candidates {list(names)}: build it from the "
                     "same candidate names (pipeline.eval_config_for)")
  baselines = [s.name for s in eval_config.model_specs if s.is_baseline]
  if baselines:
    raise ValueError(f"SweepEvaluator: {baselines} marked is_baseline: no "
                     "candidate may be (every pair is kept instead)")


def candidate_models(input_dict: Dict[str, List[types.Artifact]],
                     eval_config: tfma.EvalConfig
                     ) -> Dict[str, types.Artifact]:
  """{candidate name: its one Model artifact}, in the EvalConfig's order;
  ValueError naming the candidate when its input is empty or is several."""
  prefix = model_key("")
  names = [k[len(prefix):] for k in input_dict if k.startswith(prefix)]
  check_candidates(eval_config, names)
  return candidate_inputs.one_each(
      input_dict, [spec.name for spec in eval_config.model_specs], prefix,
      "SweepEvaluator")


class Executor(base_beam_executor.BaseBeamExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    tfx_internals.log_startup(self, input_dict, output_dict, exec_properties)
    evaluation = artifact_utils.get_single_instance(
        output_dict[EVALUATION_KEY])
    eval_config = tfma.EvalConfig()
    proto_utils.json_to_proto(exec_properties[EVAL_CONFIG_KEY], eval_config)
    models = candidate_models(input_dict, eval_config)
    # As TFX's Evaluator: no baseline, change thresholds rubber-stamped.
    eval_config = tfma.utils.update_eval_config_with_defaults(
        eval_config, has_baseline=False, rubber_stamp=True)
    tfma.utils.verify_eval_config(eval_config)
    shared_models = [tfma.default_eval_shared_model(
        eval_saved_model_path=path_utils.serving_model_path(
            model.uri, path_utils.is_old_model_artifact(model)),
        model_name=name, eval_config=eval_config)
                     for name, model in models.items()]
    examples = input_dict[EXAMPLES_KEY]
    tfxio_factory = tfxio_utils.get_tfxio_factory_from_artifact(
        examples=examples, telemetry_descriptors=["SweepEvaluator"],
        raw_record_column_name=tfma.ARROW_INPUT_COLUMN)
    with tfx_internals.beam_pipeline(self) as pipeline:
      read = [pipeline | f"Read[{SPLIT}][{i}]" >> tfxio_factory(
          io_utils.all_files_pattern(uri)).BeamSource()
              for i, uri in enumerate(
                  artifact_utils.get_split_uris(examples, SPLIT))]
      _ = (read | "Flatten" >> beam.Flatten()
           | "Evaluate" >> tfma.ExtractEvaluateAndWriteResults(
               eval_shared_model=shared_models, eval_config=eval_config,
               output_path=evaluation.uri))
    result.record(evaluation, result.evaluation_line(evaluation.uri))
