"""pipeline/model_check: ALLOWED_OPS is what this pipeline's exports use, and
what else a SavedModel could run is refused."""
import collections

import pytest
import tensorflow as tf

import tasks
from pipeline import model_check
from pipeline.config import PipelineConfig, trainer_settings
from testing.helpers import transform_output
from trainer import backbones, training
from trainer.export import export
from trainer.keras_lib import keras
from trainer.resizer import INTERPOLATIONS, learnable_resizer

# protectai/modelscan's unsafe TensorFlow operators: modelscan/settings.py,
# DEFAULT_SETTINGS["scanners"]["modelscan.scanners.SavedModelTensorflowOpScan"]
# ["unsafe_tf_operators"] (commit 8b8ed4bf, August 2025).
MODELSCAN_UNSAFE_TF_OPERATORS = ("ReadFile", "WriteFile")
# More ops that reach outside the graph: files, Python, printing to stderr
# (TensorFlow's saved_model_cli scan denylist has PrintV2).
OUTSIDE_OPS = ("EagerPyFunc", "ImmutableConst", "MatchingFiles", "PrintV2",
               "PyFunc", "PyFuncStateless", "Save", "SaveSlices",
               "TFRecordDataset", "WriteAudioSummary", "WriteSummary")


def _missing(ops):
  """The lines to add to ALLOWED_OPS for `ops`, and what uses them."""
  allowed = set(model_check.ALLOWED_OPS) | set(model_check.SAVER_OPS) | \
      set(model_check.ASSET_FILE_OPS)
  missing = sorted(set(ops) - allowed)
  return missing, "add to ALLOWED_OPS in pipeline/model_check.py:\n" + \
      "".join(f'    "{op}",  # in {", ".join(sorted(ops[op])[:2])}\n'
              for op in missing)


def test_allowed_ops_are_a_sorted_list_without_outside_ops():
  assert list(model_check.ALLOWED_OPS) == sorted(set(model_check.ALLOWED_OPS))
  everything = set(model_check.ALLOWED_OPS) | set(model_check.SAVER_OPS) | \
      set(model_check.ASSET_FILE_OPS)
  assert not everything & set(MODELSCAN_UNSAFE_TF_OPERATORS)
  assert not everything & set(OUTSIDE_OPS)


@pytest.fixture(scope="module")
def transform_outputs(tmp_path_factory):
  root = tmp_path_factory.mktemp("transform")
  return {t: transform_output(root / t, t, target_transform="log1p"
                              if t == "regression" else "none")
          for t in ("classification", "regression")}


@pytest.mark.parametrize("model_task, resizer, precision", [
    ("classification", "learned", "float32"),
    ("classification", "bilinear", "mixed_float16"),
    ("regression", "learned", "float32"),
    ("regression", "bilinear", "float32"),
])
def test_exports_use_only_allowed_ops_where_allowed(
    transform_outputs, tmp_path, model_task, resizer, precision):
  """The Trainer's own export code (trainer/export.py) on tiny models; the
  backbones' own ops: test_backbone_forward_ops_are_allowed."""
  output = transform_outputs[model_task]
  kind = tasks.get(model_task)
  names = kind.class_names(output)
  config = PipelineConfig()  # the pipeline's defaults, as a Trainer gets them
  config.model.input_size, config.model.target_size = 16, 8
  config.model.backbone, config.train.seed = "tiny_cnn", 1
  config.data.task = model_task
  config.task_settings["regression"].target_transform = "log1p"
  settings = trainer_settings(config.trainer_config(resizer))
  spec = training.model_spec(settings.model, resizer, kind.head(len(names)),
                             settings.train.seed)
  keras.mixed_precision.set_global_policy(precision)
  try:
    model = training.compile_model(spec, settings.train, kind,
                                   settings.task_settings)
    export(model, str(tmp_path), output, names, spec.input_size, kind,
           settings.task_settings, settings.max_pixels)
  finally:
    keras.mixed_precision.set_global_policy("float32")
  saved_model = model_check.read(str(tmp_path))
  ops = collections.defaultdict(set)
  for meta_graph in saved_model.meta_graphs:
    for op, places in model_check.graph_ops(meta_graph.graph_def).items():
      ops[op] |= places
  missing, message = _missing(ops)
  assert not missing, message
  found = model_check.problems(saved_model)
  assert not found, model_check.describe(found)
  # The checks saw the parts that need them.
  assert set(model_check.SAVER_OPS) <= set(ops)
  assert ("InitializeTableFromTextFileV2" in ops) == (
      model_task == "classification")


@pytest.mark.parametrize("name", backbones.BACKBONES)
def test_backbone_forward_ops_are_allowed(name):
  net = backbones.build_backbone(name, 32)
  forward = tf.function(lambda x: net(x, training=False), autograph=False)
  graph = forward.get_concrete_function(
      tf.TensorSpec([None, 32, 32, 3], tf.float32)).graph.as_graph_def()
  ops = model_check.graph_ops(graph)  # nested functions' bodies included
  assert "Conv2D" in ops
  missing, message = _missing(ops)
  assert not missing, message


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_resizer_forward_ops_are_allowed(interpolation):
  resizer = learnable_resizer((8, 8), 4, 1, interpolation)
  forward = tf.function(lambda x: resizer(x, training=False), autograph=False)
  ops = model_check.graph_ops(forward.get_concrete_function(
      tf.TensorSpec([None, 16, 16, 3], tf.float32)).graph.as_graph_def())
  missing, message = _missing(ops)
  assert not missing, message


class _Table(tf.saved_model.experimental.TrackableResource):
  """A vocabulary table whose initializer reads `path`, a constant in the
  graph instead of a model asset."""

  def __init__(self, path):
    super().__init__()
    self.path = path

  def _create_resource(self):
    return tf.raw_ops.HashTableV2(key_dtype=tf.int64, value_dtype=tf.string)

  def _initialize(self):
    tf.raw_ops.InitializeTableFromTextFileV2(
        table_handle=self.resource_handle, filename=tf.constant(self.path),
        key_index=-2, value_index=-1)


def test_a_vocabulary_file_must_be_a_model_asset(tmp_path):
  secret = tmp_path / "secret.txt"
  secret.write_text("line one\n")
  module = tf.Module()
  module.table = _Table(str(secret))
  module.lookup = tf.function(
      lambda: tf.raw_ops.LookupTableFindV2(
          table_handle=module.table.resource_handle,
          keys=tf.constant([0], tf.int64), default_value=""),
      input_signature=[])
  tf.saved_model.save(module, str(tmp_path / "m"))
  found = model_check.problems(model_check.read(str(tmp_path / "m")))
  assert list(found) == [
      "InitializeTableFromTextFileV2 on a file that is not a model asset"]
  assert all("_initializer" in place
             for place in found["InitializeTableFromTextFileV2 on a file "
                                "that is not a model asset"])


def test_checkpoint_ops_outside_the_saver_and_assets_outside_assets(tmp_path):
  module = tf.Module()
  module.v = tf.Variable([1.0])

  @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
  def restore(prefix):
    return tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=["v"],
                                shape_and_slices=[""], dtypes=[tf.float32])
  module.restore = restore
  path = str(tmp_path / "m")
  tf.saved_model.save(module, path, signatures={"serving_images": restore})
  saved_model = model_check.read(path)
  saved_model.meta_graphs[0].asset_file_def.add(filename="../../etc/passwd")
  found = model_check.problems(saved_model)
  assert sorted(found) == [
      "RestoreV2 outside the saver's functions",
      "asset file '../../etc/passwd' outside the model's assets folder"]
  assert all("restore" in place
             for place in found["RestoreV2 outside the saver's functions"])
  # The traced restore function that saver_def points at keeps its RestoreV2.
  assert not [p for p in found["RestoreV2 outside the saver's functions"]
              if "_traced_restore" in p]


def test_check_names_the_refused_ops_and_their_functions(tmp_path):
  @tf.function(input_signature=[])
  def serve():
    tf.io.write_file("marker", tf.io.read_file("/etc/hostname"))
    return tf.constant(0)
  path = str(tmp_path / "m")
  tf.saved_model.save(tf.Module(), path, signatures={"serving_images": serve})
  with pytest.raises(model_check.ModelCheckError) as e:
    model_check.check(path)
  message = str(e.value)
  assert message.startswith(
      f"{path} runs what the models of this pipeline don't: ReadFile (in "
      "__inference_")
  assert "; WriteFile (in __inference_" in message
  with pytest.raises(model_check.ModelCheckError,
                     match="saved_model.pb is not a SavedModel"):
    (tmp_path / "m" / "saved_model.pb").write_bytes(b"\xff" * 9)
    model_check.check(path)
