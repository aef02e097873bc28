"""Vertex AI: the local DAG compiles, offline, into a Vertex AI PipelineJob with
Dataflow, multi-worker GPU custom jobs and an endpoint; submit fails cleanly
without credentials; the code stays Python 3.10 compatible."""
import json
import os
import subprocess
import sys

import pytest
import tensorflow_model_analysis as tfma
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec
from tfx.extensions.google_cloud_ai_platform import runner as cloud_runner
from tfx.types import standard_artifacts
from tfx.utils import import_utils

from components import IngestReport
from components.vertex_pusher.component import VERTEX_MODEL, Executor
from pipeline import cli, vertex_runner
from pipeline.config import (VERTEX_JOB_NAME, DataConfig, PipelineConfig,
                             VertexConfig)
from pipeline.pipeline import create_pipeline, make_pusher
from testing.helpers import no_network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "europe-docker.pkg.dev/fake-project/resizer/pipeline:test"
SA = "pipeline@fake-project.iam.gserviceaccount.com"
# From the config file; the flags below override replica_count.
FILE_SETTINGS = {"project": "fake-project", "region": "europe-west4",
                 "image": IMAGE, "service_account": SA, "replica_count": 1}
FLAGS = ["--data", "gs://fake-bucket/images", "--layout", "splits",
         "--pipeline-root", "gs://fake-bucket/resizer",
         "--accelerator-type", "NVIDIA_L4", "--accelerator-count", "2",
         "--replica-count", "3", "--trainer-machine-type", "g2-standard-24",
         "--dataflow-max-workers", "7",
         "--dataflow-temp-location", "gs://fake-bucket/tmp"]
DATAFLOW_ARGS = ["--runner=DataflowRunner", "--project=fake-project",
                 "--region=europe-west4",
                 "--temp_location=gs://fake-bucket/tmp",
                 "--machine_type=n1-standard-4", "--max_num_workers=7",
                 f"--sdk_container_image={IMAGE}",
                 f"--service_account_email={SA}"]
cloud = tfx.extensions.google_cloud_ai_platform


def compile_vertex(tmp_path, extra=()):
  """Runs `resizer-pipeline compile` offline; returns (job dict, attempts)."""
  settings = tmp_path / "vertex.json"
  settings.write_text(json.dumps(FILE_SETTINGS))
  out = tmp_path / "pipeline.json"
  with no_network() as attempts:
    rc = cli.main(["compile", "--platform", "vertex", "--output", str(out),
                   "--config", str(settings)] + FLAGS + list(extra))
  assert rc == 0
  return json.loads(out.read_text()), attempts


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
  return compile_vertex(tmp_path_factory.mktemp("endpoint"),
                        ["--endpoint-name", "resizer-endpoint"])


def parse(job):
  """KubeflowV2DagRunner writes a PipelineJob: its PipelineSpec, executors."""
  spec = json_format.ParseDict(job["pipelineSpec"],
                               pipeline_spec_pb2.PipelineSpec())
  deployment = pipeline_spec_pb2.PipelineDeploymentConfig()
  # deploymentSpec is a Struct in PipelineSpec; the executors are typed here.
  json_format.ParseDict(job["pipelineSpec"]["deploymentSpec"], deployment)
  return spec, deployment.executors


@pytest.fixture(scope="module")
def spec(compiled):
  return parse(compiled[0])[0]


@pytest.fixture(scope="module")
def executors(compiled):
  return parse(compiled[0])[1]


@pytest.fixture(scope="module")
def local_pipeline(tmp_path_factory):
  """The DAG the local runner runs, from the same settings less Vertex."""
  config = cli.compile_config({**FILE_SETTINGS, "layout": "splits",
                               "data": "gs://fake-bucket/images"})
  config.output, config.vertex = str(tmp_path_factory.mktemp("local")), None
  return create_pipeline(config)


def container(spec, executors, task):
  label = spec.components[spec.root.dag.tasks[task].component_ref.name]
  return executors[label.executor_label].container


def param(spec, task, name):
  value = spec.root.dag.tasks[task].inputs.parameters[name].runtime_value
  return value.constant_value.string_value


def executor_class(spec, executors, task):
  args = list(container(spec, executors, task).args)
  return args[args.index("--executor_class_path") + 1]


def test_the_local_dag_with_the_same_dependencies(spec, local_pipeline):
  expected = {c.id: {u.id for u in c.upstream_nodes}
              for c in local_pipeline.components}
  def node_of(task):
    # A LatestBlessedModelStrategy Resolver compiles into two tasks, <id>-...
    return next(n for n in expected if task == n or task.startswith(n + "-"))

  compiled = {}
  for name, task in spec.root.dag.tasks.items():
    node = node_of(name)
    compiled.setdefault(node, set()).update(
        node_of(d) for d in task.dependent_tasks if node_of(d) != node)
  assert compiled == expected
  assert {"Trainer_learned", "Trainer_bilinear", "Pusher"} <= set(expected)


def test_runs_the_configured_image_and_root(compiled, spec, executors,
                                            local_pipeline):
  job, _ = compiled
  assert job["runtimeConfig"]["gcsOutputDirectory"] == \
      "gs://fake-bucket/resizer/pipeline_root"
  containers = [e.container for e in executors.values()
                if e.WhichOneof("spec") == "container"]
  resolvers = [c for c in local_pipeline.components
               if isinstance(c, tfx.dsl.Resolver)]
  assert len(containers) == len(local_pipeline.components) - len(resolvers)
  assert {c.image for c in containers} == {IMAGE}
  # The project code is named by import path: the image's installed package.
  assert param(spec, "Trainer_learned", "run_fn") == \
      "pipeline.trainer_module.run_fn"
  assert param(spec, "Transform", "preprocessing_fn") == \
      "pipeline.transform_module.preprocessing_fn"
  assert executor_class(spec, executors, "ImageExampleGen") == \
      "components.image_example_gen.executor.Executor"


def test_custom_artifact_types_import_by_schema_title(spec):
  # Step containers load custom artifact classes from the schema title.
  schema = spec.components["ResultsReport"].input_definitions.artifacts[
      "ingest_report"].artifact_type.instance_schema
  assert "title: components.IngestReport" in schema
  assert import_utils.import_class_by_path("components.IngestReport") is \
      IngestReport


@pytest.mark.parametrize("resizer", ["learned", "bilinear"])
def test_trainers_are_multi_worker_gpu_custom_jobs(spec, executors, resizer):
  task = f"Trainer_{resizer}"
  assert executor_class(spec, executors, task) == \
      "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor"
  custom = json.loads(param(spec, task, "custom_config"))
  pool = {"machine_spec": {"machine_type": "g2-standard-24",
                           "accelerator_type": "NVIDIA_L4",
                           "accelerator_count": 2},
          "container_spec": {"image_uri": IMAGE}}
  assert custom[cloud.TRAINING_ARGS_KEY] == {
      "project": "fake-project",
      "job_spec": {"worker_pool_specs": [{**pool, "replica_count": 1},
                                         {**pool, "replica_count": 2}],
                   "service_account": SA}}
  assert custom[cloud.ENABLE_VERTEX_KEY] is True
  assert custom[cloud.VERTEX_REGION_KEY] == "europe-west4"
  # run_fn picks MultiWorkerMirroredStrategy from Vertex's TF_CONFIG.
  assert custom["strategy"] == "auto" and custom["resizer"] == resizer


def test_beam_components_run_on_dataflow(spec, executors, local_pipeline):
  beam = {c.id for c in local_pipeline.components
          if isinstance(c.executor_spec, executor_spec.BeamExecutorSpec)}
  assert {"ImageExampleGen", "StatisticsGen", "Transform", "Evaluator"} <= beam
  for task in beam:
    args = container(spec, executors, task).args
    assert args[-len(DATAFLOW_ARGS):] == DATAFLOW_ARGS, task
  # ExampleGen's driver (span and fingerprint) gets them too.
  driver = container(spec, executors, "ImageExampleGen").lifecycle
  assert driver.pre_cache_check.args[-len(DATAFLOW_ARGS):] == DATAFLOW_ARGS
  assert not any(a.startswith("--direct_") for e in executors.values()
                 for a in e.container.args)


def test_image_example_gen_pre_cache_check_is_the_project_driver(
    compiled, spec, executors):
  """KubeflowV2 compiles TFX's ExampleGen driver in; compile_pipeline swaps
  in the project's (ImageInputProcessor's fingerprint: every file), keeping
  the args. tests/test_vertex_entrypoint.py runs it."""
  hook = container(spec, executors, "ImageExampleGen").lifecycle
  assert list(hook.pre_cache_check.command) == [
      "python", "-m", "components.image_example_gen.vertex_driver"]
  args = list(hook.pre_cache_check.args)
  assert args == ["--json_serialized_invocation_args", "{{$}}"] + \
      DATAFLOW_ARGS
  # The only ExampleGen, and nothing else names either driver.
  text = json.dumps(compiled[0])
  assert "file_based_example_gen.driver" not in text
  assert text.count("image_example_gen.vertex_driver") == 1


def test_an_unexpected_pre_cache_check_fails_the_compile(compiled):
  """A TFX whose compiler no longer puts its driver there: fail, not ship
  a DAG whose cache key misses nested images."""
  job = json.loads(json.dumps(compiled[0]))
  spec = job["pipelineSpec"]
  component = spec["root"]["dag"]["tasks"]["ImageExampleGen"]["componentRef"]
  label = spec["components"][component["name"]]["executorLabel"]
  hook = spec["deploymentSpec"]["executors"][label]["container"]["lifecycle"]
  hook["preCacheCheck"]["command"] = ["python", "-m", "tfx.some.new.driver"]
  with pytest.raises(RuntimeError, match="TFX's compiler changed"):
    vertex_runner.use_image_driver(job)


def query_conditions(query):
  """`a="x" AND b=1` (the compiled resolver filters) -> {"a": "x", "b": "1"}."""
  return dict((k.strip(), v.strip().strip('"')) for k, v in
              (c.split("=", 1) for c in query.split(" AND ")))


def schema_title(artifact_spec):
  return yaml.safe_load(artifact_spec.artifact_type.instance_schema)["title"]


def test_production_resolver_matches_only_what_push_decision_blessed(
    spec, executors):
  """KubeflowV2 compiles LatestBlessedModelStrategy into two ML Metadata
  queries: the latest ModelBlessing with blessed=1 in this pipeline (the
  channel's producer_component_id does not survive), then the Model named by
  its current_model_id. So no other step of the DAG may write a blessed=1
  ModelBlessing."""
  tasks = spec.root.dag.tasks
  blessing_task = "ProductionModelResolver-model-blessing-resolver"
  model_task = "ProductionModelResolver-model-resolver"

  def query(task, key):
    label = spec.components[tasks[task].component_ref.name].executor_label
    return executors[label].resolver.output_artifact_queries[key].filter

  blessing_query = query_conditions(query(blessing_task, "model_blessing"))
  assert blessing_query == {"schema_title": "tfx.ModelBlessing",
                            "state": "LIVE",
                            "metadata.blessed.number_value": "1"}
  # Every step whose output the query could match.
  producers = {name for name, task in tasks.items()
               for output in spec.components[
                   task.component_ref.name].output_definitions.artifacts.values()
               if schema_title(output) == blessing_query["schema_title"]}
  # The candidates' evaluation (SweepEvaluator) writes no blessing at all.
  assert producers == {"Evaluator_production", "PushDecision", blessing_task}
  assert executor_class(spec, executors, "Evaluator") == \
      "components.sweep_evaluator.executor.Executor"
  # TFX's, or with nothing in production blessed=0 and no evaluation
  # (components/production_evaluator; tests/test_vertex_entrypoint.py runs it).
  assert executor_class(spec, executors, "Evaluator_production") == \
      "components.production_evaluator.executor.Executor"
  for name in ("Evaluator_production",):
    # TFX's Evaluator writes `blessed` only when the EvalConfig has
    # thresholds (tfx/components/evaluator/executor.py, run_validation).
    config = json_format.Parse(param(spec, name, "eval_config"),
                               tfma.EvalConfig())
    for has_baseline in (True, False):
      config = tfma.utils.update_eval_config_with_defaults(
          config, has_baseline=has_baseline, rubber_stamp=True)
      assert not tfma.metrics.metric_thresholds_from_metrics_specs(
          config.metrics_specs, eval_config=config), name
  assert executor_class(spec, executors, "PushDecision") == \
      "components.push_decision.component.Executor"
  # The model is the one the matched blessing names (PushDecision's
  # current_model_id; tests/test_vertex_entrypoint.py runs it).
  assert query_conditions(query(model_task, "model")) == {
      "schema_title": "tfx.Model", "state": "LIVE",
      "name": "{{$.inputs.artifacts['input'].metadata['current_model_id']}}"}
  assert tasks[model_task].inputs.artifacts["input"].task_output_artifact \
      .producer_task == blessing_task
  # ... and that model is what Evaluator_production and PushDecision compare
  # the candidate with.
  for task in ("Evaluator_production", "PushDecision"):
    key = "baseline_model" if task.startswith("Evaluator") else \
        "production_model"
    source = tasks[task].inputs.artifacts[key].task_output_artifact
    assert (source.producer_task, source.output_artifact_key) == \
        (model_task, "model")


def test_floor_is_resolved_at_run_time(spec):
  # The class count of gs:// data is unknown when compiling; ModelSelector
  # reads it from the Transform vocabulary (gate/floor.py).
  selector = spec.root.dag.tasks["ModelSelector"]
  assert "floor" not in selector.inputs.parameters  # None: above chance
  source = selector.inputs.artifacts["transform_graph"].task_output_artifact
  assert (source.producer_task, source.output_artifact_key) == \
      ("Transform", "transform_graph")
  assert "floor" not in spec.root.dag.tasks["ResultsReport"].inputs.parameters


def test_tensorboard_runs_are_named_by_the_vertex_job(spec):
  """Compiled once, run many times: the run's name is KFP's placeholder of
  the job's name, resolved per job; the log root is on Cloud Storage."""
  root = "gs://fake-bucket/resizer/tensorboard"
  assert param(spec, "ResultsReport", "tensorboard_run") == VERTEX_JOB_NAME
  assert param(spec, "ResultsReport", "tensorboard_dir") == root
  for task in ("Trainer_learned", "Trainer_bilinear"):
    custom = json.loads(param(spec, task, "custom_config"))
    assert custom["tensorboard_dir"] == root


def test_the_eval_config_is_the_same_for_local_and_gcs_data(spec, tmp_path):
  """Top-5 included, so both runs report it: nothing in the EvalConfig may
  depend on the class count, which compiling can't read from gs://. Six
  local class folders: enough for top-5 to mean something."""
  data = tmp_path / "images"
  for split in ("train", "validation"):
    for i in range(6):
      (data / split / f"class{i}").mkdir(parents=True)
  local = {c.id: c for c in create_pipeline(PipelineConfig(
      output=str(tmp_path / "out"),
      data=DataConfig(path=str(data), layout="splits"))).components}
  for task in ("Evaluator", "Evaluator_production"):
    compiled = json_format.Parse(param(spec, task, "eval_config"),
                                 tfma.EvalConfig())
    assert json_format.Parse(local[task].exec_properties["eval_config"],
                             tfma.EvalConfig()) == compiled, task
    assert "SparseTopKCategoricalAccuracy" in {
        m.class_name for m in compiled.metrics_specs[0].metrics}


def test_a_configured_floor_is_compiled_as_a_parameter(tmp_path):
  job, _ = compile_vertex(tmp_path, ["--floor", "0.6"])
  spec, _ = parse(job)
  assert spec.root.dag.tasks["ModelSelector"].inputs.parameters[
      "floor"].runtime_value.constant_value.double_value == 0.6


def test_pusher_pushes_to_gcs_and_deploys_to_the_endpoint(spec, executors):
  assert executor_class(spec, executors, "Pusher") == \
      "components.vertex_pusher.component.Executor"
  assert json.loads(param(spec, "Pusher", "push_destination")) == {
      "filesystem": {"base_directory": "gs://fake-bucket/resizer/serving"}}
  assert json.loads(param(spec, "Pusher", "custom_config")) == {
      cloud.ENABLE_VERTEX_KEY: True,
      cloud.VERTEX_REGION_KEY: "europe-west4",
      cloud.VERTEX_CONTAINER_IMAGE_URI_KEY: VertexConfig.serving_image,
      cloud.SERVING_ARGS_KEY: {"project": "fake-project",
                               "endpoint_name": "resizer-endpoint",
                               "machine_type": "n1-standard-4"}}


def test_without_endpoint_the_pusher_pushes_to_gcs_only(tmp_path):
  job, attempts = compile_vertex(tmp_path)
  spec, executors = parse(job)
  # The project's Pusher executor: all-or-nothing locally, TFX's copy on gs://.
  assert executor_class(spec, executors, "Pusher") == \
      "components.atomic_pusher.executor.Executor"
  assert param(spec, "Pusher", "custom_config") == "null"
  assert json.loads(param(spec, "Pusher", "push_destination")) == {
      "filesystem": {"base_directory": "gs://fake-bucket/resizer/serving"}}
  assert "resizer-endpoint" not in json.dumps(job)
  assert attempts == []


def test_compiling_is_offline_and_uploads_no_module(compiled, spec):
  job, attempts = compiled
  assert attempts == []
  text = json.dumps(job)
  for needle in ("module_file", "module_path", ".whl", "_pip_dependencies"):
    assert needle not in text
  for task in spec.root.dag.tasks.values():
    assert "module_file" not in task.inputs.parameters


def vertex_config(tmp_path, **vertex):
  return PipelineConfig(output=str(tmp_path), vertex=VertexConfig(
      project="fake-project", image=IMAGE, **vertex))


def run_pusher(tmp_path, blessed, monkeypatch):
  """VertexPusher's executor on a fake SavedModel, deploys recorded."""
  config = vertex_config(tmp_path, endpoint_name="resizer-endpoint")
  pusher = make_pusher(
      config, tfx.dsl.Channel(type=standard_artifacts.Model),
      tfx.dsl.Channel(type=standard_artifacts.ModelBlessing))
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / "model")
  os.makedirs(os.path.join(model.uri, "Format-Serving", "variables"))
  for name in ("saved_model.pb", "variables/variables.index"):
    with open(os.path.join(model.uri, "Format-Serving", name), "w") as f:
      f.write(name)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / "blessing")
  blessing.set_int_custom_property("blessed", int(blessed))
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / "pushed")
  deploys = []
  monkeypatch.setattr(cloud_runner, "deploy_model_for_aip_prediction",
                      lambda **kw: deploys.append(kw) or "projects/1/models/7")
  Executor().Do(
      {"model": [model], "model_blessing": [blessing]},
      {"pushed_model": [pushed]},
      {key: pusher.exec_properties[key]  # JSON, as at run time
       for key in ("push_destination", "custom_config")})
  return config, pushed, deploys


def test_vertex_pusher_pushes_to_the_folder_then_deploys(tmp_path, monkeypatch):
  config, pushed, deploys = run_pusher(tmp_path, True, monkeypatch)
  version = pushed.get_string_custom_property("pushed_version")
  serving = os.path.join(config.serving_dir, version)
  assert sorted(os.listdir(serving)) == ["saved_model.pb", "variables"]
  assert pushed.get_string_custom_property("pushed_destination") == serving
  assert pushed.get_string_custom_property(VERTEX_MODEL) == \
      "projects/1/models/7"
  assert [(d["serving_path"], d["endpoint_region"],
           d["serving_container_image_uri"], d["ai_platform_serving_args"],
           d["enable_vertex"]) for d in deploys] == [
               (pushed.uri, "us-central1", VertexConfig.serving_image,
                {"project": "fake-project", "endpoint_name": "resizer-endpoint",
                 "machine_type": "n1-standard-4"}, True)]


def test_vertex_pusher_deploys_nothing_unblessed(tmp_path, monkeypatch):
  config, pushed, deploys = run_pusher(tmp_path, False, monkeypatch)
  assert deploys == [] and not os.path.exists(config.serving_dir)
  assert pushed.get_int_custom_property("pushed") == 0


@pytest.mark.parametrize("flags, message", [
    (["--data", "/tmp/images"], "--data: Vertex and Dataflow workers read"),
    (["--pipeline-root", "out"], "--pipeline-root: Vertex steps write to"),
    (["--layout", "auto"], "--layout: can't look inside gs://fake-bucket"),
    (["--strategy", "mirrored"], "--strategy: 3 replicas train as one cluster"),
    (["--accelerator-type", ""], "--accelerator-type: give the GPU type"),
    (["--image", ""], "--image: give the pipeline image"),
])
def test_bad_vertex_settings_exit_2_with_one_line(tmp_path, capsys, flags,
                                                  message):
  settings = tmp_path / "vertex.json"
  settings.write_text(json.dumps(FILE_SETTINGS))
  rc = cli.main(["compile", "--platform", "vertex", "--output",
                 str(tmp_path / "p.json"), "--config", str(settings)]
                + FLAGS + flags)
  err = capsys.readouterr().err.strip()
  assert rc == 2 and err.startswith(f"resizer-pipeline: error: {message}")
  assert len(err.splitlines()) == 1 and not (tmp_path / "p.json").exists()


def test_unknown_config_file_setting(tmp_path, capsys):
  settings = tmp_path / "vertex.json"
  settings.write_text(json.dumps({"replicas": 2}))
  rc = cli.main(["compile", "--platform", "vertex", "--config", str(settings)])
  assert rc == 2
  assert "--config: unknown setting 'replicas'" in capsys.readouterr().err


@pytest.mark.parametrize("credentials", ["missing key file", "none at all"])
def test_submit_without_credentials_fails_with_one_line(
    compiled, tmp_path, monkeypatch, capfd, credentials):
  job, _ = compiled
  pipeline_file = tmp_path / "pipeline.json"
  pipeline_file.write_text(json.dumps(job))
  monkeypatch.setenv("HOME", str(tmp_path))
  monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud login
  if credentials == "missing key file":
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS",
                       str(tmp_path / "missing.json"))
  else:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
  capfd.readouterr()
  with no_network() as attempts:
    rc = cli.main(["submit", "--pipeline", str(pipeline_file), "--project",
                   "fake-project", "--region", "europe-west4"])
  err = capfd.readouterr().err.strip()
  assert rc == 1
  # Without any credentials google-auth asks the GCE metadata server (refused
  # here at once; NO_GCE_CHECK would be read only at import); nothing else.
  assert set(attempts) <= ({"metadata.google.internal", "169.254.169.254"}
                           if credentials == "none at all" else set())
  assert err.splitlines() == [err]
  assert err.startswith("resizer-pipeline: error: no Google Cloud credentials")
  assert "gcloud auth application-default login" in err


def test_sources_are_python_310_compatible(tmp_path):
  def run(*paths):
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
         os.path.join(ROOT, "tests", "ruff.toml"), *paths],
        cwd=ROOT, capture_output=True, text=True, check=False)

  result = run("pipeline", "components", "tasks", "trainer", "gate", "schema",
               "tests",
               "bench")
  assert result.returncode == 0, result.stdout
  # The rules do catch 3.11-only code.
  probe = tmp_path / "py311.py"
  probe.write_text("import tomllib\ntry:\n  pass\nexcept* ValueError:\n"
                   "  raise ExceptionGroup('x', [])\n")
  result = run(str(probe))
  assert result.returncode == 1
  for needle in ("`tomllib` is banned", "Cannot use `except*` on Python 3.10",
                 "Undefined name `ExceptionGroup`"):
    assert needle in result.stdout


def test_regression_from_a_gcs_labels_csv_compiles(tmp_path):
  job, attempts = compile_vertex(tmp_path, [
      "--labels", "gs://fake-bucket/labels.csv", "--target", "score",
      "--task", "regression", "--target-transform", "log1p"])
  assert not attempts  # the CSV is read at run time, on Vertex
  spec, _ = parse(job)
  gen = spec.root.dag.tasks["ImageExampleGen"].inputs.parameters
  assert gen["labels"].runtime_value.constant_value.string_value == \
      "gs://fake-bucket/labels.csv"
  assert param(spec, "ImageExampleGen", "target") == "score"
  assert param(spec, "ImageExampleGen", "task") == "regression"
  # The CSV's split column or a hash split, whatever folders the data has.
  assert json.loads(param(spec, "ImageExampleGen", "input_config")) == {
      "splits": [{"name": "single_split", "pattern": "*/*"}]}
  transform = json.loads(param(spec, "Transform", "custom_config"))
  assert transform == {"input_size": 300, "task": "regression",
                       "target_transform": "log1p"}
  trainer = json.loads(param(spec, "Trainer_learned", "custom_config"))
  assert trainer["task"] == "regression" and trainer["loss"] == "mse"
  evaluation = json.loads(param(spec, "Evaluator", "eval_config"))
  names = {m["class_name"] for m in evaluation["metrics_specs"][0]["metrics"]}
  assert {"MeanSquaredError", "MeanAbsoluteError",
          "PairedSquaredError"} <= names
  assert evaluation["model_specs"][0]["label_key"] == "target_raw"
  assert param(spec, "ModelSelector", "task") == "regression"
  assert param(spec, "PushDecision", "task") == "regression"


def test_a_gcs_labels_csv_needs_the_task(tmp_path, capsys):
  settings = tmp_path / "vertex.json"
  settings.write_text(json.dumps(FILE_SETTINGS))
  with no_network():
    rc = cli.main(["compile", "--platform", "vertex", "--output",
                   str(tmp_path / "p.json"), "--config", str(settings)]
                  + FLAGS + ["--labels", "gs://fake-bucket/labels.csv"])
  assert rc == 2
  assert "--task: gs://fake-bucket/labels.csv is read at run time" in \
      capsys.readouterr().err

def test_evaluator_production_is_conditional_on_the_local_runner_only(
    spec, local_pipeline):
  # Vertex: PushDecision and ResultsReport read its outputs, so it always
  # runs; its executor evaluates nothing without a baseline (see
  # test_vertex_entrypoint.py).
  assert not spec.root.dag.tasks["Evaluator_production"].trigger_policy.condition
  # Locally: only when ModelSelector recorded a model in production.
  from tfx.dsl.compiler import compiler  # pylint: disable=import-outside-toplevel
  ir = compiler.Compiler().compile(local_pipeline)
  nodes = {n.pipeline_node.node_info.id: n.pipeline_node for n in ir.nodes}
  [condition] = nodes["Evaluator_production"].inputs.conditionals.values()
  expression = str(condition.placeholder_expression)
  assert "in_production" in expression and "ModelSelector" in expression
  assert not any(nodes[n].inputs.conditionals for n in nodes
                 if n != "Evaluator_production")


def test_the_image_copies_every_package_the_project_installs():
  """The Dockerfile copies source folders one by one; a package missing
  there (gate/ once was) breaks every Vertex step that imports it."""
  with open(os.path.join(ROOT, "Dockerfile"), encoding="utf-8") as f:
    dockerfile = f.read()
  with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
    setup_py = f.read()
  installed = {name for name in os.listdir(ROOT)
               if f'"{name}*"' in setup_py}  # setup.py's find_packages
  assert installed == {"pipeline", "components", "tasks", "trainer", "gate",
                       "schema"}
  for name in installed:
    assert f"COPY {name}/ {name}/" in dockerfile, name


@pytest.mark.parametrize("old, new", [
    (["--target", "vertex"], "--target vertex is deprecated; use --platform "
     "vertex"),
    (["--platform", "vertex", "--target-column", "score"],
     "--target-column is deprecated; use --target"),
])
def test_the_old_compile_spellings_still_work_and_say_so(tmp_path, capsys,
                                                         old, new):
  """compile's --target named the platform and --target-column the CSV's
  column; now --target means the column everywhere, as in run."""
  settings = tmp_path / "vertex.json"
  settings.write_text(json.dumps(FILE_SETTINGS))
  out = tmp_path / "p.json"
  with no_network():
    rc = cli.main(["compile", *old, "--output", str(out), "--config",
                   str(settings), "--labels", "gs://fake-bucket/labels.csv",
                   "--task", "regression"] + FLAGS)
  err = capsys.readouterr().err
  assert rc == 0 and f"resizer-pipeline: warning: {new}" in err
  spec, _ = parse(json.loads(out.read_text()))
  expected = "score" if "--target-column" in old else ""
  assert param(spec, "ImageExampleGen", "target") == expected


def test_compile_without_a_platform_says_which(tmp_path, capsys):
  assert cli.main(["compile", "--output", str(tmp_path / "p.json")]) == 2
  assert "--platform: give the platform to compile for: vertex" in \
      capsys.readouterr().err


def test_a_sweep_compiles_one_custom_job_per_candidate(tmp_path):
  """--candidates: one Trainer per candidate, each its own Vertex custom job
  with its sizes, all feeding the one evaluation and the selector."""
  job, attempts = compile_vertex(tmp_path, [
      "--input-size", "320", "--candidates", "bilinear:160",
      "learned:320-160", "learned:320-80", "--cost", "latency",
      "--max-gflops", "3"])
  assert not attempts
  spec, executors = parse(job)
  trainers = {"bilinear": (320, 160), "learned_320_160": (320, 160),
              "learned_320_80": (320, 80)}
  for name, (size_in, size_out) in trainers.items():
    task = f"Trainer_{name}"
    assert executor_class(spec, executors, task) == (
        "tfx.extensions.google_cloud_ai_platform.trainer.executor."
        "GenericExecutor")
    custom = json.loads(param(spec, task, "custom_config"))
    assert custom[cloud.ENABLE_VERTEX_KEY] is True
    assert (custom["candidate"], custom["input_size"], custom["target_size"],
            custom["stored_size"]) == (name, size_in, size_out, 320)
  tasks = spec.root.dag.tasks
  assert {t for t in tasks if t.startswith("Trainer_")} == {
      f"Trainer_{n}" for n in trainers}
  for step, prefixes in (("Evaluator", ("model_",)),
                         ("ModelSelector", ("model_", "run_")),
                         ("ResultsReport", ("model_", "run_"))):
    inputs = set(tasks[step].inputs.artifacts)
    for prefix in prefixes:
      assert {f"{prefix}{n}" for n in trainers} <= inputs, (step, inputs)
    assert {f"Trainer_{n}" for n in trainers} <= set(
        tasks[step].dependent_tasks)
  assert json.loads(param(spec, "ModelSelector", "candidates")) == list(
      trainers)
  assert param(spec, "ModelSelector", "cost") == "latency"
  assert tasks["ModelSelector"].inputs.parameters[
      "max_gflops"].runtime_value.constant_value.double_value == 3.0
  assert json.loads(param(spec, "Transform", "custom_config"))[
      "input_size"] == 320
