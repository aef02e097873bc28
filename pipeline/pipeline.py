"""The DAG, in order: one `create_pipeline(config)` for every runner.

ImageExampleGen -> StatisticsGen -> CuratedSchemaGen -> ExampleValidator ->
ValidationGate -> Transform -> one Trainer per candidate (Trainer_<name>:
by default learned and bilinear; --candidates) -> Evaluator (every
candidate on the same eval examples) -> ModelSelector (the cheapest not
behind the best) -> Evaluator_production (vs the model in production, via a
Resolver) -> PushDecision -> Pusher -> ResultsReport
"""
import contextlib
import os
from typing import Dict, Sequence, Tuple

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

import tasks
from components import atomic_pusher
from components.image_example_gen import ImageExampleGen
from components.model_selector import ModelSelector
from components.model_selector.component import IN_PRODUCTION
from components.production_evaluator import ProductionEvaluator
from components.production_evaluator.executor import NO_BASELINE
from components.push_decision import PushDecision
from components.results_report import ResultsReport
from components.results_report.component import RESULTS_FILE
from components.schema_curator import CuratedSchemaGen
from components.sweep_evaluator import SweepEvaluator
from components.validation_gate import ValidationGate
from pipeline import data_layout
from pipeline.config import PipelineConfig
from pipeline.progress import StepLines

PREPROCESSING_FN = "pipeline.transform_module.preprocessing_fn"
RUN_FN = "pipeline.trainer_module.run_fn"


def eval_config(candidate: str, baseline: str,
                task: str = "") -> tfma.EvalConfig:
  """What TFMA measures of both models, and the paired metric, as the task
  (its name; "": the default) says (tasks/); no thresholds.

  The same for every dataset and runner: nothing in it depends on the data,
  which compiling for Vertex (gs://, offline) can't list. Whether the
  candidate clears the floor and beats the baseline is decided by
  ModelSelector / PushDecision: the floor at run time, the difference by a
  paired test on the paired metric (gate/).
  Without thresholds TFX's Evaluator writes no `blessed` property, so on
  Vertex, where LatestBlessedModelStrategy compiles into a query for any
  ModelBlessing with blessed=1, only PushDecision's blessing can name the
  model in production. Without a baseline artifact (no model in production
  yet) TFX drops the baseline and the paired metric computes no difference.
  """
  return _eval_config([(candidate, False), (baseline, True)], task)


def eval_config_for(candidates: Sequence[str],
                    task: str = "") -> tfma.EvalConfig:
  """eval_config() for the SweepEvaluator: one model per candidate name,
  none the baseline, so the paired metric keeps every pair."""
  return _eval_config([(name, False) for name in candidates], task)


def _eval_config(models: Sequence[Tuple[str, bool]],
                 task: str) -> tfma.EvalConfig:
  """The EvalConfig of (model name, is baseline) models."""
  kind = tasks.named(task)
  label_key, prediction_key = kind.eval_keys()
  # model_type given: otherwise TFMA runs keras.models.load_model on every
  # model just to guess it, and then loads it again. TFMA needs only the
  # signatures, which any TF Serving-style loader reads.
  spec = dict(label_key=label_key, prediction_key=prediction_key,
              model_type=tfma.TF_GENERIC, signature_name="serving_default",
              preprocessing_function_names=["transform_features"])
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(name=name, is_baseline=is_baseline, **spec)
                   for name, is_baseline in models],
      slicing_specs=kind.slicing_specs(),
      # Only the metrics below: the Keras compiled loss expects one-hot labels.
      options=tfma.Options(include_default_metrics={"value": False}),
      metrics_specs=[tfma.MetricsSpec(metrics=kind.tfma_metrics())])


def make_trainer(config: PipelineConfig, candidate, transform, schema_gen):
  """The Trainer of one candidate (pipeline/candidates.py); they differ only
  in custom_config's resizer, sizes and name.

  On Vertex each is a Vertex custom job on the configured worker pools, running
  the same run_fn in the pipeline image.
  """
  inputs = dict(run_fn=RUN_FN,
                examples=transform.outputs["transformed_examples"],
                transform_graph=transform.outputs["transform_graph"],
                schema=schema_gen.outputs["schema"])
  custom_config = config.trainer_config(candidate)
  trainer = tfx.components.Trainer
  if config.vertex is not None:
    vertex, cloud = config.vertex, tfx.extensions.google_cloud_ai_platform
    job_spec = {"worker_pool_specs": vertex.worker_pool_specs()}
    if vertex.service_account:
      job_spec["service_account"] = vertex.service_account
    # custom_config["strategy"] stays the configured one ("auto" by default):
    # run_fn then picks MultiWorkerMirroredStrategy from Vertex's TF_CONFIG.
    custom_config.update({
        cloud.ENABLE_VERTEX_KEY: True,
        cloud.VERTEX_REGION_KEY: vertex.region,
        cloud.TRAINING_ARGS_KEY: {"project": vertex.project,
                                  "job_spec": job_spec},
    })
    trainer = cloud.Trainer
  return trainer(**inputs, custom_config=custom_config).with_id(
      f"Trainer_{candidate.name}")


def make_pusher(config: PipelineConfig, model, model_blessing):
  """Pushes a blessed model to <output>/serving/<version>/.

  On Vertex with an endpoint configured it also deploys that model there.
  """
  push_destination = tfx.proto.PushDestination(
      filesystem=tfx.proto.PushDestination.Filesystem(
          base_directory=config.serving_dir))
  vertex = config.vertex
  if vertex is None or not vertex.endpoint_name:
    return tfx.components.Pusher(
        model=model, model_blessing=model_blessing,
        push_destination=push_destination,
        custom_executor_spec=executor_spec.ExecutorClassSpec(
            atomic_pusher.Executor))
  from components.vertex_pusher import VertexPusher  # pylint: disable=import-outside-toplevel
  cloud = tfx.extensions.google_cloud_ai_platform
  return VertexPusher(
      model=model, model_blessing=model_blessing,
      push_destination=push_destination,
      custom_config={
          cloud.ENABLE_VERTEX_KEY: True,
          cloud.VERTEX_REGION_KEY: vertex.region,
          cloud.VERTEX_CONTAINER_IMAGE_URI_KEY: vertex.serving_image,
          cloud.SERVING_ARGS_KEY: {
              "project": vertex.project,
              "endpoint_name": vertex.endpoint_name,
              "machine_type": vertex.serving_machine_type,
          },
      }).with_id("Pusher")  # the same node id as on the local runner


def _only_with_a_model_in_production(config: PipelineConfig, model_selector):
  """Locally, the nodes inside run only when a model is in production.

  With nothing in production, Evaluator_production would repeat the first
  Evaluator's work on the same eval examples (the candidate alone), and
  PushDecision checks the floor from that evaluation instead. On Vertex no
  condition: PushDecision and ResultsReport consume its outputs from outside
  it, and KFP does not run the tasks after one its trigger condition skipped.
  There ProductionEvaluator's executor returns at once without a baseline.
  """
  if config.vertex is not None:
    return contextlib.nullcontext()
  return tfx.dsl.Cond(model_selector.outputs["model"].future()[0]
                      .custom_property(IN_PRODUCTION) == 1)


def _production_model_line(outputs) -> str:
  models = outputs.get("model", [])
  return (f"model in production: {models[0].uri}" if models
          else "no model in production yet")


def create_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
  """The DAG every runner runs."""
  return create_pipeline_with_lines(config)[0]


def create_pipeline_with_lines(config: PipelineConfig
                               ) -> Tuple[tfx.dsl.Pipeline,
                                          Dict[str, StepLines]]:
  """The pipeline, and by node id the progress lines of the steps whose
  meaning is the DAG's, not their outputs' (pipeline/progress.py)."""
  csv = bool(config.data.labels)
  # With a labels CSV the folders don't matter: every file under the data
  # folder is matched to its row; the CSV's split column, else a hash split.
  input_config, output_config = data_layout.example_gen_configs(
      config.data.path, "flat" if csv else config.data.layout,
      config.data.eval_percent)

  example_gen = ImageExampleGen(input_base=config.data.path,
                                input_config=input_config,
                                output_config=output_config,
                                max_pixels=config.data.max_pixels,
                                labels=config.data.labels,
                                target=config.data.target, task=config.task)
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
      custom_config=config.transform_config(),
      # StatisticsGen and ExampleValidator already describe and check the
      # raw data; TFDV over Transform's input again and over its raw pixel
      # bytes would add a pass over every image and tell nothing new.
      disable_statistics=True)
  transform.add_upstream_node(validation_gate)  # no training on bad data
  # It fails on anomalies, and has no output to say so otherwise.
  lines = {validation_gate.id: StepLines(done=lambda _: "no anomalies")}

  candidates = config.candidate_list()
  trainers = {c.name: make_trainer(config, c, transform, schema_gen)
              for c in candidates}
  models = {name: t.outputs["model"] for name, t in trainers.items()}
  runs = {name: t.outputs["model_run"] for name, t in trainers.items()}

  # Every candidate on the same eval examples, every pair's paired table.
  evaluator = SweepEvaluator(
      examples=example_gen.outputs["examples"], models=models,
      eval_config=eval_config_for(list(trainers), config.task),
  ).with_id("Evaluator")
  # The model last pushed by this pipeline (LatestBlessedModelStrategy over
  # PushDecision's blessings), or nothing on a first run.
  production_model = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model,
                            producer_component_id="ModelSelector",
                            output_key="model"),
      model_blessing=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.ModelBlessing,
          producer_component_id="PushDecision", output_key="blessing"),
  ).with_id("ProductionModelResolver")
  lines[production_model.id] = StepLines(done=_production_model_line)
  model_selector = ModelSelector(
      models=models, runs=runs, evaluation=evaluator.outputs["evaluation"],
      transform_graph=transform.outputs["transform_graph"],
      production_model=production_model.outputs["model"],
      min_gain=config.eval.min_gain, confidence=config.eval.confidence,
      floor=config.eval.floor, task=config.task, cost=config.eval.cost,
      budgets=config.budgets()).with_id("ModelSelector")

  # The production gate: the model last pushed by this pipeline is the
  # baseline; PushDecision blocks a candidate significantly worse than it by
  # more than `production_tolerance`.
  with _only_with_a_model_in_production(config, model_selector):
    production_evaluator = ProductionEvaluator(
        examples=example_gen.outputs["examples"],
        model=model_selector.outputs["model"],
        baseline_model=production_model.outputs["model"],
        eval_config=eval_config("candidate", "production", config.task),
    ).with_id("Evaluator_production")
  lines[production_evaluator.id] = StepLines(skipped=f"skipped: {NO_BASELINE}")
  push_decision = PushDecision(
      model=model_selector.outputs["model"],
      production_evaluation=production_evaluator.outputs["evaluation"],
      production_model=production_model.outputs["model"],
      # The floor for the first push, when Evaluator_production did not run.
      evaluation=evaluator.outputs["evaluation"],
      tolerance=config.eval.production_tolerance,
      confidence=config.eval.confidence,
      push_equal=int(config.eval.push_equal), task=config.task)
  pusher = make_pusher(config, model_selector.outputs["model"],
                       push_decision.outputs["blessing"])
  report = ResultsReport(
      examples=example_gen.outputs["examples"],
      ingest_report=example_gen.outputs["rejected"],
      statistics=statistics_gen.outputs["statistics"],
      models=models, runs=runs, evaluation=evaluator.outputs["evaluation"],
      selected_model=model_selector.outputs["model"],
      production_evaluation=production_evaluator.outputs["evaluation"],
      push_blessing=push_decision.outputs["blessing"],
      pushed_model=pusher.outputs["pushed_model"],
      report_dir=config.report_dir, min_gain=config.eval.min_gain,
      production_tolerance=config.eval.production_tolerance,
      confidence=config.eval.confidence,
      input_size=config.transform_config()["input_size"],
      tensorboard_dir=config.tensorboard_dir,
      tensorboard_run=config.tensorboard_run).with_id("ResultsReport")
  # Its outputs are files, not artifacts.
  lines[report.id] = StepLines(
      done=lambda _: f"wrote {os.path.join(config.report_dir, RESULTS_FILE)}")

  dag = tfx.dsl.Pipeline(
      pipeline_name=config.name,
      pipeline_root=config.pipeline_root,
      components=[example_gen, statistics_gen, schema_gen, example_validator,
                  validation_gate, transform, *trainers.values(), evaluator,
                  model_selector,
                  production_model, production_evaluator, push_decision,
                  pusher, report],
      enable_cache=config.enable_cache,
      # Vertex has its own ML Metadata; the SQLite config would create its
      # folder on GCS at compile time.
      metadata_connection_config=None if config.vertex else (
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              config.metadata_path)),
      beam_pipeline_args=config.beam_pipeline_args())
  return dag, lines
