"""What a Vertex worker does inside the pipeline image: every custom step of the
compiled PipelineJob, run through TFX's container entrypoint
(kubeflow_v2_run_executor, the Dockerfile image's command) with the args the
compiled spec gives it and an ExecutorInput as Vertex fills it in: artifacts
with Vertex ML Metadata names, URIs and metadata, parameters from the spec.
Artifact URIs are on ram:// (only tf.io.gfile / TFX fileio reach them, as
gs:// on Vertex); one step's output metadata feeds the next, as on Vertex.
Parameters that name gs:// places (the data folder, the report folder, the
push destination) are pointed at ram:// or a local folder. ImageExampleGen
runs its compiled pre-cache check (the project's driver,
components/image_example_gen/vertex_driver.py) first; Beam steps
get the local runner's DirectRunner args in place of the compiled Dataflow
ones, the only args changed.
"""
import importlib
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.orchestration.kubeflow.v2.container import \
    kubeflow_v2_run_executor as entrypoint
from tfx.components.example_gen import input_processor
from tfx.proto import example_gen_pb2, pusher_pb2
from tfx.utils import proto_utils

import tasks
from components import tfx_internals
from components.image_example_gen.component import ImageInputProcessor
from components.image_example_gen.report import REJECTED_FILE, SUMMARY_FILE
from components.image_example_gen.input_folder import input_fingerprint
from components.production_evaluator.executor import NO_BASELINE, NOT_EVALUATED
from components.results_report.component import comparison_text
from components.validation_gate.anomalies_test import statistics
from components.validation_gate.component import DataAnomalyError
from components.vertex_pusher.component import VERTEX_MODEL
from gate.tfma_metric import TOP5
from pipeline.config import PipelineConfig, VertexConfig
from testing.helpers import (FakeVertex, copy_tree, cost_record, jpeg_bytes,
                             no_network, ram_root, tensorboard_events,
                             tiny_dataset, write_evaluation, write_file,
                             write_label_vocab, write_model)
from tests.test_vertex_compile import (ROOT, compile_vertex, executor_class,
                                       param, parse, query_conditions)
from trainer import features
from trainer.model import ModelSpec, build_model
from trainer.training import MODEL_INFO

CLASSIFICATION = tasks.get("classification")

STORE = ("projects/fake-project/locations/europe-west4/metadataStores/default/"
         "artifacts/")
CLASSES = ["checker", "horizontal", "vertical"]
# A Vertex pipeline job's name, as KFP resolves {{$.pipeline_job_name}}.
JOB_NAME = "learnable-resizer-20260102030405"
cloud = tfx.extensions.google_cloud_ai_platform


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
  job, _ = compile_vertex(tmp_path_factory.mktemp("entrypoint"))
  return parse(job)


def _counter():
  n = 0
  while True:
    n += 1
    yield n


_IDS = _counter()


def artifact(uri, metadata=None):
  """A RuntimeArtifact as Vertex passes it: a metadata store name, a URI and
  the properties it recorded."""
  return {"name": f"{STORE}{next(_IDS)}", "uri": uri,
          "metadata": metadata or {}}


def executor_input(compiled, task, inputs, outputs, root, parameters=None):
  """The ExecutorInput Vertex gives `task`'s container and its pre-cache
  check: the compiled parameters (`parameters` overrides some), the input
  artifacts, fresh output artifacts, and the task's executor_output.json.

  inputs: {key: artifact(...)}; outputs: {key: uri, or a reported artifact
  (output_artifact(...)) that the task already wrote, e.g. from its driver}.
  """
  spec, _ = compiled
  task_spec = spec.root.dag.tasks[task]
  component = spec.components[task_spec.component_ref.name]
  message = pipeline_spec_pb2.ExecutorInput()
  for name, value in task_spec.inputs.parameters.items():
    message.inputs.parameters[name].CopyFrom(
        value.runtime_value.constant_value)
  for name, value in (parameters or {}).items():
    message.inputs.parameters[name].string_value = value
  for key, given in inputs.items():
    runtime = message.inputs.artifacts[key].artifacts.add()
    runtime.type.CopyFrom(
        component.input_definitions.artifacts[key].artifact_type)
    runtime.name, runtime.uri = given["name"], given["uri"]
    json_format.ParseDict(given["metadata"], runtime.metadata)
  for key, given in outputs.items():
    if isinstance(given, str):
      given = {"name": f"{STORE}{next(_IDS)}", "uri": given, "metadata": {}}
    runtime = message.outputs.artifacts[key].artifacts.add()
    runtime.type.CopyFrom(
        component.output_definitions.artifacts[key].artifact_type)
    runtime.name, runtime.uri = given["name"], given["uri"]
    json_format.ParseDict(given["metadata"], runtime.metadata)
  message.outputs.output_file = os.path.join(root, task, "executor_output.json")
  return message


def command_args(args, message, beam_args=None):
  """The compiled args with Vertex's {{$}} filled in. beam_args: replaces the
  compiled Beam args (all those after {{$}}: Dataflow's)."""
  args = list(args)
  filled = [json_format.MessageToJson(message) if a == "{{$}}" else a
            for a in args]
  if beam_args is None:
    return filled
  cut = args.index("{{$}}") + 1
  assert "--runner=DataflowRunner" in args[cut:], args
  return filled[:cut] + list(beam_args)


def read_output(message):
  """{key: reported artifact} and the parameters of the ExecutorOutput the
  step wrote."""
  output = pipeline_spec_pb2.ExecutorOutput()
  with tf.io.gfile.GFile(message.outputs.output_file) as f:
    json_format.Parse(f.read(), output)
  artifacts = {key: json_format.MessageToDict(
      artifacts.artifacts[0], preserving_proto_field_name=True)
               for key, artifacts in output.artifacts.items()}
  return artifacts, {key: json_format.MessageToDict(value)
                     for key, value in output.parameter_values.items()}


def run_step(compiled, task, inputs, outputs, root, parameters=None,
             beam_args=None):
  """Runs `task`'s container args through the entrypoint's main; returns its
  output artifacts as the ExecutorOutput reports them (name, uri, metadata).

  inputs: {key: artifact(...)}; outputs: see executor_input; parameters:
  overrides of the compiled constants; beam_args: see command_args.
  """
  spec, executors = compiled
  component = spec.components[spec.root.dag.tasks[task].component_ref.name]
  container = executors[component.executor_label].container
  message = executor_input(compiled, task, inputs, outputs, root, parameters)
  assert list(container.command) == [
      "python", "-m",
      "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
  entrypoint.main(tfx_internals.parse_vertex_entrypoint_flags(
      [entrypoint.__file__] + command_args(container.args, message,
                                           beam_args)))
  return read_output(message)[0]


def output_artifact(reported):
  """An output as the next step receives it on Vertex."""
  return {"name": reported["name"], "uri": reported["uri"],
          "metadata": reported.get("metadata", {})}


def matches(query, reported):
  """Whether a compiled resolver query (the subset of the ML Metadata filter
  grammar KubeflowV2 writes) selects an artifact a step reported."""
  for key, value in query_conditions(query).items():
    if key == "schema_title" or key == "state":
      continue  # checked against the spec in test_vertex_compile
    if key == "name":
      ok = reported["name"] == value
    elif key.startswith("metadata.") and key.endswith(".number_value"):
      field = key[len("metadata."):-len(".number_value")]
      ok = reported.get("metadata", {}).get(field) == float(value)
    else:
      raise AssertionError(f"unexpected condition {key} in {query}")
    if not ok:
      return False
  return True


def resolver_query(compiled, task, key):
  spec, executors = compiled
  label = spec.components[
      spec.root.dag.tasks[task].component_ref.name].executor_label
  return executors[label].resolver.output_artifact_queries[key].filter


def render(query, blessing):
  """The model query with its placeholder filled from the blessing found."""
  placeholder = "{{$.inputs.artifacts['input'].metadata['current_model_id']}}"
  return query.replace(placeholder,
                       str(blessing["metadata"]["current_model_id"]))


# ---- ImageExampleGen: the project's driver, then the executor -------------

DRIVER = "components.image_example_gen.vertex_driver"
TFX_DRIVER = "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"
# Dataflow can't run offline: the Beam steps get the args the local runner
# gives Beam (in-process DirectRunner) in place of the compiled Dataflow ones,
# and nothing else changes.
DIRECT_ARGS = ["--runner=DirectRunner"] + PipelineConfig().beam_pipeline_args()


def run_driver(compiled, task, outputs, root, parameters=None, module=DRIVER):
  """Runs `task`'s lifecycle pre_cache_check in-process with its compiled
  command and args (Beam args included: the driver ignores them); returns
  what its ExecutorOutput reports: ({key: artifact}, {parameter: value}).
  module: another driver to run with the same args (TFX's, for contrast)."""
  spec, executors = compiled
  component = spec.components[spec.root.dag.tasks[task].component_ref.name]
  hook = executors[component.executor_label].container.lifecycle
  assert list(hook.pre_cache_check.command) == ["python", "-m", DRIVER]
  message = executor_input(compiled, task, {}, outputs, root, parameters)
  driver = importlib.import_module(module)
  driver.main(tfx_internals.parse_example_gen_driver_flags(
      [driver.__file__] + command_args(hook.pre_cache_check.args, message)))
  # The project's driver swaps TFX's processor class only while it runs.
  assert input_processor.FileBasedInputProcessor.__module__ == \
      input_processor.__name__
  return read_output(message)


@pytest.fixture(scope="module")
def example_gen(compiled, tmp_path_factory):
  """The compiled ImageExampleGen step as Vertex runs it: the project's
  driver (the pre-cache check) writes span and fingerprint to the task's
  executor_output.json; the executor then runs through the entrypoint, which
  reads that file first, with the examples artifact as the driver reported
  it. (The entrypoint merges the driver's values into `parameter_values`
  but, without the 2.1 spec's inputs-spec arg, takes exec properties from
  the compiled `parameters`: the same here, see the driver test.) The data
  follows the compiled --layout splits, on ram:// (for
  gs://fake-bucket/images); the outputs are on ram:// too."""
  local = tmp_path_factory.mktemp("images")
  tiny_dataset(local / "train", per_class=3, size=32)
  tiny_dataset(local / "validation", per_class=2, size=32, seed=1)
  (local / "train" / "checker" / "empty.jpg").write_bytes(b"")  # rejected
  (local / "test" / "checker").mkdir(parents=True)
  (local / "test" / "checker" / "0.jpg").write_bytes(jpeg_bytes())  # not read
  root = ram_root("entrypoint-example-gen")
  data = f"{root}/images"
  copy_tree(local, data)
  parameters = {"input_base": data}
  # The executor rewrites the executor_output.json the driver wrote: on local
  # disk, as gs:// replaces an object; TensorFlow's ram:// appends instead.
  task_root = str(tmp_path_factory.mktemp("example-gen-task"))
  with no_network() as attempts:
    driver_outputs, driver_parameters = run_driver(
        compiled, "ImageExampleGen",
        {"examples": f"{root}/ImageExampleGen/examples"}, task_root,
        parameters)
    outputs = run_step(
        compiled, "ImageExampleGen", {},
        {"examples": output_artifact(driver_outputs["examples"]),
         "rejected": f"{root}/ImageExampleGen/rejected"},
        task_root, parameters, beam_args=DIRECT_ARGS)
  assert attempts == []
  return {"local": local, "data": data, "driver": driver_outputs,
          "driver_parameters": driver_parameters, "outputs": outputs}


def test_example_gen_driver_reports_span_and_the_whole_tree_fingerprint(
    compiled, example_gen):
  """The fingerprint is ImageInputProcessor's, as locally: every file under
  the data folder (test/ and the rejected empty.jpg included), not TFX's
  (only what the split patterns match)."""
  spec, _ = compiled
  fingerprint = input_fingerprint(example_gen["data"])
  assert fingerprint.startswith("files:17,")  # 15 images, empty.jpg, test/
  # Patterns without {SPAN} or {VERSION}: span 0, no version, and the
  # input_config unchanged.
  assert example_gen["driver_parameters"] == {
      "span": 0, "input_fingerprint": fingerprint,
      "input_config": param(spec, "ImageExampleGen", "input_config")}
  # TFX's driver code records span as a custom property, which Vertex
  # metadata prefixes because Examples also has a `span` property.
  assert example_gen["driver"]["examples"]["metadata"] == {
      "custom:span": 0, "input_fingerprint": fingerprint}


def count_records(split_uri):
  files = tf.io.gfile.glob(f"{split_uri}/*.gz")
  assert files, split_uri
  return sum(1 for _ in tf.data.TFRecordDataset(files,
                                                compression_type="GZIP"))


def test_example_gen_executor_after_the_driver(example_gen):
  examples = example_gen["outputs"]["examples"]
  # The artifact the driver reported, now with the executor's metadata too.
  assert examples["name"] == example_gen["driver"]["examples"]["name"]
  assert examples["metadata"]["split_names"] == '["train", "eval"]'
  assert examples["metadata"]["custom:span"] == 0
  assert examples["metadata"]["input_fingerprint"] == \
      example_gen["driver_parameters"]["input_fingerprint"]
  counts = {split: count_records(f"{examples['uri']}/Split-{split}")
            for split in ("train", "eval")}
  assert counts == {"train": 9, "eval": 6}
  report = example_gen["outputs"]["rejected"]
  with tf.io.gfile.GFile(f"{report['uri']}/{SUMMARY_FILE}") as f:
    summary = json.load(f)
  assert summary["splits"] == counts
  assert (summary["seen"], summary["ingested"], summary["rejected"]) == \
      (17, 15, 2)
  assert summary["not_read"] == {"test": 1}
  assert {k: v["ingested"] for k, v in summary["classes"].items()} == {
      f"{split}/{c}": n for split, n in (("train", 3), ("validation", 2))
      for c in CLASSES}
  assert {k: report["metadata"][k] for k in ("seen", "ingested",
                                              "rejected")} == {
      "seen": 17, "ingested": 15, "rejected": 2}
  with tf.io.gfile.GFile(f"{report['uri']}/{REJECTED_FILE}") as f:
    assert [json.loads(line)["path"] for line in f] == [
        "test/checker/0.jpg", "train/checker/empty.jpg"]


def test_vertex_fingerprint_sees_a_nested_image(compiled, tmp_path):
  """An image added to a subfolder of a class folder is ingested (as that
  class), so it changes the compiled driver's fingerprint, Vertex's cache key
  for the step, as it changes the local driver's (ImageInputProcessor). TFX's
  own driver, which KubeflowV2 compiles in, stats what train/*/* matches,
  where the subfolder is one entry without size or mtime (on ram:// here,
  and on gs://, whose glob in TensorFlow matches the folders of the objects
  it lists too): its fingerprint stays, and Vertex would reuse stale
  examples."""
  root = ram_root("entrypoint-fingerprint")
  data = f"{root}/images"
  for rel in ("train/cats/a.jpg", "train/dogs/b.jpg", "train/dogs/more/c.jpg",
              "validation/cats/d.jpg", "validation/dogs/e.jpg"):
    write_file(f"{data}/{rel}", jpeg_bytes())
  spec, _ = compiled
  splits = json_format.Parse(param(spec, "ImageExampleGen", "input_config"),
                             example_gen_pb2.Input()).splits

  def fingerprints(run):
    found = {}
    for name, module in (("vertex", DRIVER), ("tfx", TFX_DRIVER)):
      _, parameters = run_driver(
          compiled, "ImageExampleGen",
          {"examples": f"{root}/{run}/{name}/examples"},
          str(tmp_path / run / name), {"input_base": data}, module=module)
      found[name] = parameters["input_fingerprint"]
    local = ImageInputProcessor(data, splits)
    span, version = local.resolve_span_and_version()
    found["local"] = local.get_input_fingerprint(span, version)
    return found

  before = fingerprints("before")
  write_file(f"{data}/train/dogs/more/f.jpg", jpeg_bytes(color=(0, 0, 200)))
  after = fingerprints("after")
  assert after["vertex"] != before["vertex"]
  assert after["vertex"] == after["local"] == input_fingerprint(data)
  assert before["vertex"] == before["local"]
  assert after["vertex"].startswith("files:6,")
  # What the project driver replaces: TFX's misses it.
  assert after["tfx"] == before["tfx"]
  assert "split:train,num_files:3," in after["tfx"]  # a.jpg, b.jpg, more/


def test_the_compiled_driver_command_runs_as_a_process(compiled, tmp_path):
  """`python -m components.image_example_gen.vertex_driver` with the compiled
  args, Dataflow's included, as the pre-cache check's container runs it (on
  a local folder: ram:// is per process)."""
  spec, executors = compiled
  component = spec.components[
      spec.root.dag.tasks["ImageExampleGen"].component_ref.name]
  hook = executors[component.executor_label].container.lifecycle
  data = tmp_path / "images"
  for rel in ("train/cats/a.jpg", "train/dogs/more/b.jpg",
              "validation/cats/c.jpg"):
    write_file(str(data / rel), jpeg_bytes())
  message = executor_input(compiled, "ImageExampleGen", {},
                           {"examples": str(tmp_path / "examples")},
                           str(tmp_path / "task"), {"input_base": str(data)})
  command = list(hook.pre_cache_check.command)
  assert command[0] == "python"  # the image's; this venv's here
  env = {**os.environ, "PYTHONPATH": ROOT}
  done = subprocess.run(
      [sys.executable] + command[1:] + command_args(
          hook.pre_cache_check.args, message),
      cwd=ROOT, env=env, capture_output=True, text=True, check=False,
      timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  _, parameters = read_output(message)
  assert parameters["input_fingerprint"] == input_fingerprint(str(data))
  assert parameters["input_fingerprint"].startswith("files:3,")


# ---- data validation steps -------------------------------------------------

def stats_artifact(root, train, eval_):
  uri = f"{root}/statistics"
  for split, examples in (("train", train), ("eval", eval_)):
    write_file(f"{uri}/Split-{split}/FeatureStats.pb",
               statistics(examples).SerializeToString())
  return artifact(uri, {"split_names": '["train", "eval"]'})


def test_curated_schema_gen_writes_the_class_domain(compiled, tmp_path):
  from components.validation_gate.anomalies_test import examples  # pylint: disable=import-outside-toplevel
  root = ram_root("entrypoint-schema")
  outputs = run_step(compiled, "CuratedSchemaGen",
                     {"statistics": stats_artifact(
                         root, examples(["dogs", "cats", "dogs"]),
                         examples(["cats"]))},
                     {"schema": f"{root}/schema"}, root)
  schema = tfdv.load_schema_text(
      os.path.join(outputs["schema"]["uri"], "schema.pbtxt"))
  assert list(tfdv.get_domain(schema, features.LABEL).value) == ["cats",
                                                                 "dogs"]
  assert outputs["schema"]["metadata"]["tfx_version"]


def anomalies_artifact(root, problem):
  uri = f"{root}/anomalies"
  for split in ("train", "eval"):
    anomalies = anomalies_pb2.Anomalies()
    if problem and split == "eval":
      info = anomalies.anomaly_info[features.LABEL]
      info.reason.add(short_description="Unexpected string values",
                      description="Examples contain values missing from the "
                      "schema: zebra (~25% of the examples).")
    write_file(f"{uri}/Split-{split}/SchemaDiff.pb",
               anomalies.SerializeToString())
  return artifact(uri, {"split_names": '["train", "eval"]'})


def test_validation_gate_passes_clean_data_and_stops_on_anomalies(compiled):
  root = ram_root("entrypoint-gate")
  assert run_step(compiled, "ValidationGate",
                  {"anomalies": anomalies_artifact(root, problem=False)}, {},
                  root) == {}
  with pytest.raises(DataAnomalyError, match="zebra") as raised:
    run_step(compiled, "ValidationGate",
             {"anomalies": anomalies_artifact(f"{root}/bad", problem=True)},
             {}, root)
  assert f"split 'eval', feature '{features.LABEL}'" in str(raised.value)


# ---- the gates, the push and the report, chained as on Vertex --------------

@pytest.fixture(scope="module")
def run(compiled, tmp_path_factory):
  """ModelSelector -> Evaluator_production and PushDecision (nothing in
  production yet) -> Pusher -> ResultsReport, then the next run's
  PushDecision with the same model in production."""
  root = ram_root("entrypoint-run")
  steps = {}
  learned = artifact(f"{root}/Trainer_learned/model")
  bilinear = artifact(f"{root}/Trainer_bilinear/model")
  # The report draws the learned resizer's output: a real (tiny) model.
  build_model(ModelSpec(head=CLASSIFICATION.head(3), input_size=32,
                        target_size=16)).save(
      os.path.join(learned["uri"], "Format-Serving"), save_format="tf",
      save_traces=False)
  write_model(bilinear["uri"], {"saved_model.pb": b"bilinear"})
  evaluation = artifact(f"{root}/Evaluator/evaluation")
  # Top-5 is always measured; with 3 classes TFMA gives 1.0.
  write_evaluation(evaluation["uri"], {"learned": 0.9, "bilinear": 0.5},
                   pairs={("learned", "bilinear"): (60, 25, 1)},
                   metrics={"learned": {TOP5: 1.0}, "bilinear": {TOP5: 1.0}})
  transform_graph = artifact(f"{root}/Transform/transform_graph")
  write_label_vocab(transform_graph["uri"], CLASSES)
  runs = {}
  for name, gflops in (("learned", 2.0), ("bilinear", 1.0)):
    # Not under .../model: ram:// lists by prefix, so .../model_run would be
    # copied with the model.
    runs[name] = artifact(f"{root}/runs/Trainer_{name}/model_run")
    write_file(f"{runs[name]['uri']}/{MODEL_INFO}", json.dumps(
        {"params": 1000, "trainable_params": 900, "class_names": CLASSES,
         "resizer": name, "input_size": 32, "target_size": 16,
         "train_sample_top1": 0.95, "cost": cost_record(gflops * 1e9),
         "history": {"loss": [1.0, 0.5], "accuracy": [0.5, 0.8],
                     "val_loss": [1.1, 0.6], "val_accuracy": [0.4, 0.7]}}))
  steps["ModelSelector"] = run_step(
      compiled, "ModelSelector",
      {"model_learned": learned, "model_bilinear": bilinear,
       "run_learned": runs["learned"], "run_bilinear": runs["bilinear"],
       "evaluation": evaluation, "transform_graph": transform_graph},
      {"model": f"{root}/ModelSelector/model"}, root)
  candidate = output_artifact(steps["ModelSelector"]["model"])

  examples = artifact(f"{root}/ImageExampleGen/examples",
                      {"split_names": '["train", "eval"]'})
  with tf.io.TFRecordWriter(
      f"{examples['uri']}/Split-eval/data_tfrecord-00000.gz",
      options="GZIP") as writer:
    for name in CLASSES:
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[jpeg_bytes()])),
          features.LABEL: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[name.encode()]))})).SerializeToString())
  # No baseline: the resolver found nothing. Its compiled Beam args (Dataflow)
  # are kept: nothing may be started.
  steps["Evaluator_production"] = run_step(
      compiled, "Evaluator_production",
      {"examples": examples, "model": candidate},
      {"evaluation": f"{root}/Evaluator_production/evaluation",
       "blessing": f"{root}/Evaluator_production/blessing"}, root)
  production_evaluation = output_artifact(
      steps["Evaluator_production"]["evaluation"])
  steps["PushDecision"] = run_step(
      compiled, "PushDecision",
      {"model": candidate, "production_evaluation": production_evaluation,
       "evaluation": evaluation},
      {"blessing": f"{root}/PushDecision/blessing"}, root)
  blessing = output_artifact(steps["PushDecision"]["blessing"])

  serving = tmp_path_factory.mktemp("serving")
  destination = proto_utils.proto_to_json(pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(
          base_directory=str(serving))))
  steps["Pusher"] = run_step(
      compiled, "Pusher", {"model": candidate, "model_blessing": blessing},
      {"pushed_model": f"{root}/Pusher/pushed_model"}, root,
      parameters={"push_destination": destination})

  ingest = artifact(f"{root}/ImageExampleGen/rejected")
  write_file(f"{ingest['uri']}/{SUMMARY_FILE}", json.dumps(
      {"splits": {"train": 240, "eval": 60}, "rejected": 2, "seen": 302}))
  report_dir = f"{root}/report"
  steps["ResultsReport"] = run_step(
      compiled, "ResultsReport",
      {"examples": examples, "ingest_report": ingest,
       "model_learned": learned, "run_learned": runs["learned"],
       "model_bilinear": bilinear, "run_bilinear": runs["bilinear"],
       "evaluation": evaluation, "selected_model": candidate,
       "production_evaluation": production_evaluation,
       "push_blessing": blessing,
       "pushed_model": output_artifact(steps["Pusher"]["pushed_model"])},
      # KFP resolves the compiled tensorboard_run placeholder to the job name.
      {}, root, parameters={"report_dir": report_dir,
                            "tensorboard_dir": f"{root}/tensorboard",
                            "tensorboard_run": JOB_NAME})

  # The next run: the resolver found this candidate, and it is trained again
  # from the cache (same files, same fingerprint).
  again = artifact(f"{root}/2/Evaluator_production/evaluation")
  write_evaluation(again["uri"], {"candidate": 0.9, "production": 0.9},
                   paired={"candidate": (60, 0, 0)})
  steps["PushDecision_again"] = run_step(
      compiled, "PushDecision",
      {"model": {**candidate, "name": f"{STORE}{next(_IDS)}"},
       "production_evaluation": again, "production_model": candidate},
      {"blessing": f"{root}/2/PushDecision/blessing"}, f"{root}/2")
  return {"steps": steps, "candidate": candidate, "serving": serving,
          "report_dir": report_dir, "tensorboard": f"{root}/tensorboard"}


def test_model_selector_resolves_the_floor_from_the_vocabulary(run):
  model = run["steps"]["ModelSelector"]["model"]
  metadata = model["metadata"]
  assert metadata["selected"] == "learned"
  assert metadata["floor"] == pytest.approx(1 / 3 + 1e-6)
  assert metadata["num_classes"] == 3
  assert json.loads(metadata["comparison"])["outcome"] == "ahead"
  with tf.io.gfile.GFile(os.path.join(model["uri"], "Format-Serving",
                                      "saved_model.pb"), "rb") as f:
    assert f.read().startswith(b"\x08")  # the learned SavedModel's proto


def test_evaluator_production_evaluates_nothing_without_a_baseline(run):
  evaluation = run["steps"]["Evaluator_production"]["evaluation"]
  assert evaluation["metadata"][NOT_EVALUATED] == NO_BASELINE
  assert not tf.io.gfile.exists(evaluation["uri"])  # no TFMA output
  blessing = run["steps"]["Evaluator_production"]["blessing"]
  assert blessing["metadata"]["blessed"] == 0
  # So PushDecision checked the floor on the learned-vs-bilinear evaluation.
  assert run["steps"]["PushDecision"]["blessing"]["metadata"]["decision"] == \
      "push"


def test_push_decision_blessing_names_the_model_for_the_resolver(compiled, run):
  blessing = run["steps"]["PushDecision"]["blessing"]
  candidate = run["candidate"]
  assert blessing["metadata"]["decision"] == "push"
  # The entrypoint turned the hashed id back into the model's name, which is
  # what the compiled model query looks the production model up by.
  assert blessing["metadata"]["current_model_id"] == candidate["name"]
  blessing_query = resolver_query(
      compiled, "ProductionModelResolver-model-blessing-resolver",
      "model_blessing")
  model_query = resolver_query(
      compiled, "ProductionModelResolver-model-resolver", "model")
  assert matches(blessing_query, blessing)
  assert matches(render(model_query, blessing), candidate)
  assert not matches(render(model_query, blessing),
                     run["steps"]["PushDecision_again"]["blessing"])


def test_a_rerun_of_the_production_model_is_not_blessed(compiled, run):
  blessing = run["steps"]["PushDecision_again"]["blessing"]
  assert blessing["metadata"]["decision"] == "same_as_production"
  assert not matches(resolver_query(
      compiled, "ProductionModelResolver-model-blessing-resolver",
      "model_blessing"), blessing)


def test_pusher_pushes_the_blessed_model(run):
  pushed = run["steps"]["Pusher"]["pushed_model"]["metadata"]
  assert pushed["pushed"] == 1
  version = pushed["pushed_version"]
  assert pushed["pushed_destination"] == os.path.join(str(run["serving"]),
                                                      version)
  # Beside the version, the report's model card (ResultsReport ran after).
  assert sorted(os.listdir(run["serving"])) == [
      version, f"{version}.model_card.html", f"{version}.model_card.md"]
  assert os.path.isfile(os.path.join(run["serving"], version,
                                     "saved_model.pb"))


def test_results_report_records_the_run_time_floor(run):
  with tf.io.gfile.GFile(f"{run['report_dir']}/results.json") as f:
    results = json.load(f)
  assert results["thresholds"]["floor"] == pytest.approx(1 / 3 + 1e-6)
  assert results["pushed"] == "learned" and results["selected"] == "learned"
  assert results["pushed_path"] == \
      run["steps"]["Pusher"]["pushed_model"]["metadata"]["pushed_destination"]
  assert results["reason"].startswith("learned pushed: ")
  assert "it is the first model in production" in results["reason"]
  assert results["examples"] == {"train": 240, "eval": 60}
  # 3 classes in the Transform vocabulary (ModelSelector's count, read from
  # its metadata): no top-5.
  for model in results["models"].values():
    assert model["top5"] is None and TOP5 not in model["metrics"]
  for name in ("results.md", "resized.png", "training.png"):
    assert tf.io.gfile.stat(f"{run['report_dir']}/{name}").length > 0
  # Beside the job's Trainers in TensorBoard, through tf.io.gfile.
  _, text, _, _ = tensorboard_events(
      f"{run['tensorboard']}/{JOB_NAME}/comparison")["comparison"]
  assert text.item().decode() == comparison_text(results)


# ---- the VertexPusher: compiled with --endpoint-name ------------------------

@pytest.fixture(scope="module")
def compiled_endpoint(tmp_path_factory):
  job, _ = compile_vertex(tmp_path_factory.mktemp("entrypoint-endpoint"),
                          ["--endpoint-name", "resizer-endpoint"])
  return parse(job)


def files(uri):
  """{path relative to uri: bytes} of every file under uri."""
  found = {}
  for folder, _, names in tf.io.gfile.walk(uri):
    for name in names:
      path = os.path.join(folder, name)
      with tf.io.gfile.GFile(path, "rb") as f:
        found[os.path.relpath(path, uri)] = f.read()
  return found


def test_vertex_pusher_pushes_the_version_and_deploys_it(compiled_endpoint,
                                                         run, monkeypatch):
  """The candidate and blessing of the run above, through the Pusher task of
  a DAG compiled with an endpoint (the VertexPusher), with only
  google.cloud.aiplatform's calls faked (FakeVertex)."""
  spec, executors = compiled_endpoint
  assert executor_class(spec, executors, "Pusher") == \
      "components.vertex_pusher.component.Executor"
  custom = json.loads(param(spec, "Pusher", "custom_config"))
  serving = custom[cloud.SERVING_ARGS_KEY]
  assert (serving["endpoint_name"], serving["machine_type"]) == (
      "resizer-endpoint", VertexConfig.serving_machine_type)
  root = ram_root("entrypoint-vertex-pusher")
  destination = proto_utils.proto_to_json(pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(
          base_directory=f"{root}/serving")))
  vertex = FakeVertex()
  vertex.install(monkeypatch)
  with no_network() as attempts:
    pushed = run_step(
        compiled_endpoint, "Pusher",
        {"model": run["candidate"],
         "model_blessing": output_artifact(
             run["steps"]["PushDecision"]["blessing"])},
        {"pushed_model": f"{root}/Pusher/pushed_model"}, root,
        parameters={"push_destination": destination})["pushed_model"]
  assert attempts == []
  metadata = pushed["metadata"]
  version = metadata["pushed_version"]
  assert metadata["pushed"] == 1
  assert metadata["pushed_destination"] == f"{root}/serving/{version}"
  assert metadata[VERTEX_MODEL] == "projects/p/locations/r/models/42"
  # The pushed version is the candidate's SavedModel; TFX's cloud pusher
  # uploads its own copy of it, in the PushedModel folder.
  model = files(os.path.join(run["candidate"]["uri"], "Format-Serving"))
  assert "saved_model.pb" in model
  assert files(metadata["pushed_destination"]) == model
  assert files(pushed["uri"]) == model

  assert vertex.named("init") == [{"project": "fake-project",
                                   "location": custom[cloud.VERTEX_REGION_KEY]}]
  assert custom[cloud.VERTEX_REGION_KEY] == "europe-west4"
  [upload] = vertex.named("upload")
  assert upload["artifact_uri"] == pushed["uri"]
  assert upload["serving_container_image_uri"] == \
      custom[cloud.VERTEX_CONTAINER_IMAGE_URI_KEY] == VertexConfig.serving_image
  assert upload["display_name"][0] == "v" and \
      upload["display_name"][1:].isdigit()  # TFX's v<unix time>
  assert [c["display_name"] for c in vertex.named("create_endpoint")] == [
      "resizer-endpoint"]
  assert vertex.named("deploy") == [{"endpoint": "resizer-endpoint",
                                     "machine_type": "n1-standard-4",
                                     "traffic_percentage": 100}]
