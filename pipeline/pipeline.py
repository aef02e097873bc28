"""The DAG, in order: one `create_pipeline(config)` for every runner.

ImageExampleGen -> StatisticsGen -> CuratedSchemaGen -> ExampleValidator ->
ValidationGate -> Transform -> Trainer(learned), Trainer(bilinear) ->
Evaluator (learned vs bilinear baseline) -> Pusher -> ResultsReport
"""
import tensorflow_model_analysis as tfma
from tfx import v1 as tfx

from components.image_example_gen import ImageExampleGen
from components.results_report import ResultsReport
from components.schema_curator import CuratedSchemaGen
from components.validation_gate import ValidationGate
from pipeline import data_layout
from pipeline.config import PipelineConfig
from trainer import features

PREPROCESSING_FN = "trainer.preprocessing.preprocessing_fn"
RUN_FN = "trainer.task.run_fn"
TOP1 = "SparseCategoricalAccuracy"


def resolve_floor(config: PipelineConfig, num_classes) -> float:
  """The absolute top-1 floor: configured, else just above chance."""
  if config.eval.floor is not None:
    return config.eval.floor
  return 1.0 / num_classes + 1e-6 if num_classes else 0.0


def eval_config(min_gain: float, floor: float) -> tfma.EvalConfig:
  """Top-1 of the learned model, gated on a floor and a gain over bilinear."""
  spec = dict(label_key=features.LABEL_ID, prediction_key="probabilities",
              signature_name="serving_default",
              preprocessing_function_names=["transform_features"])
  threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(lower_bound={"value": floor}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={"value": min_gain}))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(name="learned", **spec),
                   tfma.ModelSpec(name="bilinear", is_baseline=True, **spec)],
      slicing_specs=[tfma.SlicingSpec()],
      # Only the metrics below: the Keras compiled loss expects one-hot labels.
      options=tfma.Options(include_default_metrics={"value": False}),
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="ExampleCount"),
          tfma.MetricConfig(class_name=TOP1, threshold=threshold),
      ])])


def make_trainer(config: PipelineConfig, resizer: str, transform, schema_gen):
  """One of the two Trainers; they differ only in custom_config["resizer"]."""
  return tfx.components.Trainer(
      run_fn=RUN_FN,
      examples=transform.outputs["transformed_examples"],
      transform_graph=transform.outputs["transform_graph"],
      schema=schema_gen.outputs["schema"],
      custom_config=config.trainer_config(resizer)).with_id(f"Trainer_{resizer}")


def make_pusher(config: PipelineConfig, model, model_blessing):
  """Pushes a blessed model to <output>/serving/<version>/."""
  return tfx.components.Pusher(
      model=model, model_blessing=model_blessing,
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=config.serving_dir)))


def create_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
  input_config, output_config = data_layout.example_gen_configs(
      config.data.path, config.data.layout, config.data.eval_percent)
  floor = resolve_floor(config,
                        data_layout.count_classes(config.data.path, input_config))

  example_gen = ImageExampleGen(input_base=config.data.path,
                                input_config=input_config,
                                output_config=output_config,
                                max_pixels=config.data.max_pixels)
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs["examples"])
  schema_gen = CuratedSchemaGen(statistics=statistics_gen.outputs["statistics"])
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs["statistics"],
      schema=schema_gen.outputs["schema"])
  validation_gate = ValidationGate(
      anomalies=example_validator.outputs["anomalies"])
  transform = tfx.components.Transform(
      examples=example_gen.outputs["examples"],
      schema=schema_gen.outputs["schema"],
      preprocessing_fn=PREPROCESSING_FN,
      custom_config={"input_size": config.model.input_size})
  transform.add_upstream_node(validation_gate)  # no training on bad data

  trainers = {resizer: make_trainer(config, resizer, transform, schema_gen)
              for resizer in ("learned", "bilinear")}

  evaluator = tfx.components.Evaluator(
      examples=example_gen.outputs["examples"],
      model=trainers["learned"].outputs["model"],
      baseline_model=trainers["bilinear"].outputs["model"],
      eval_config=eval_config(config.eval.min_gain, floor))
  pusher = make_pusher(config, trainers["learned"].outputs["model"],
                       evaluator.outputs["blessing"])
  report = ResultsReport(
      ingest_report=example_gen.outputs["rejected"],
      learned_run=trainers["learned"].outputs["model_run"],
      bilinear_run=trainers["bilinear"].outputs["model_run"],
      evaluation=evaluator.outputs["evaluation"],
      blessing=evaluator.outputs["blessing"],
      pushed_model=pusher.outputs["pushed_model"],
      report_dir=config.report_dir, min_gain=config.eval.min_gain, floor=floor)

  return tfx.dsl.Pipeline(
      pipeline_name=config.name,
      pipeline_root=config.pipeline_root,
      components=[example_gen, statistics_gen, schema_gen, example_validator,
                  validation_gate, transform, trainers["learned"],
                  trainers["bilinear"], evaluator, pusher, report],
      enable_cache=config.enable_cache,
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              config.metadata_path)),
      beam_pipeline_args=config.beam_pipeline_args())
