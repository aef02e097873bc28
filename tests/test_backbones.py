"""Backbones build offline by name; weights files load; ImageNet offline fails clearly."""
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf

import tasks
from trainer import backbones, networks
from trainer.model import ModelSpec, build_model

CLASSIFICATION = tasks.get("classification")


@pytest.mark.parametrize("name, size, features", [
    ("tiny_cnn", 32, 64),
    ("resnet50", 32, 2048),
    ("mobilenet_v2", 32, 1280),
    ("efficientnet_b0", 32, 1280),
    ("vit_tiny", 32, 32),
])
def test_backbones_build_offline_with_random_init(name, size, features):
  net = backbones.build_backbone(name, size)
  out = net(tf.random.uniform((2, size, size, 3)))
  assert out.shape == (2, features)


def test_vit_is_vit_s16_at_224():
  net = backbones.build_backbone("vit", 224)
  assert net.get_layer("patches").output.shape[1:] == (196, 384)  # 14x14 patches
  assert len([l for l in net.layers if l.name.endswith("_mha")]) == 12
  assert 21_000_000 < net.count_params() < 22_500_000  # ViT-S/16 is ~21.7M


def test_vit_variant_feeds_512_to_224():
  model = build_model(ModelSpec(head=CLASSIFICATION.head(2), input_size=512,
                                target_size=224, backbone="vit"))
  resizer = model.get_layer("learnable_resizer")
  assert resizer.output.shape[1:] == (224, 224, 3)
  assert model.input.shape[1:] == (512, 512, 3)


def test_weights_file_is_loaded(tmp_path):
  source = backbones.build_backbone("tiny_cnn", 32)
  path = str(tmp_path / "tiny.h5")
  source.save_weights(path)
  loaded = backbones.build_backbone("tiny_cnn", 32, weights=path)
  for a, b in zip(source.get_weights(), loaded.get_weights()):
    np.testing.assert_array_equal(a, b)


def test_imagenet_weights_offline_fail_with_a_clear_message(monkeypatch,
                                                           tmp_path):
  # Offline on any machine: an empty Keras cache and a proxy that refuses.
  monkeypatch.setenv("HOME", str(tmp_path))
  for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
    monkeypatch.setenv(var, "http://127.0.0.1:9")
  with pytest.raises(networks.WeightsUnavailableError,
                     match="--weights PATH"):
    backbones.build_backbone("mobilenet_v2", 96, weights="imagenet")


def test_unknown_backbone_names_the_choices():
  with pytest.raises(ValueError, match="densenet121"):
    backbones.build_backbone("vgg99", 32)


@pytest.mark.parametrize("name", ["mobilenet_v2"])  # same path as densenet121
def test_application_backbones_save_and_reload(tmp_path, name):
  # The Trainer exports with model.save; TFMA and the report reload it.
  from trainer.keras_lib import keras  # pylint: disable=import-outside-toplevel
  model = build_model(ModelSpec(head=CLASSIFICATION.head(2), input_size=64,
                                target_size=32, backbone=name))
  images = tf.random.uniform((2, 64, 64, 3), 0, 255)
  # As trainer/export.py saves: signatures, and no per-layer traces.
  serve = tf.function(lambda x: {"out": model(x, training=False)},
                      input_signature=[tf.TensorSpec((None, 64, 64, 3))])
  model.save(str(tmp_path / "m"), save_format="tf", save_traces=False,
             signatures={"serving_default": serve})
  reloaded = keras.models.load_model(str(tmp_path / "m"), compile=False)
  np.testing.assert_allclose(reloaded(images).numpy(), model(images).numpy(),
                             atol=1e-5)
  served = tf.saved_model.load(str(tmp_path / "m"))
  np.testing.assert_allclose(
      served.signatures["serving_default"](images)["out"].numpy(),
      model(images).numpy(), atol=1e-5)


# --weights PATH: keras.applications no-top files (what users download), a
# model this pipeline pushed, from local disk or another filesystem (ram://
# stands in for gs://).
APPLICATION_CONSTRUCTORS = {
    "densenet121": "DenseNet121", "resnet50": "ResNet50",
    "mobilenet_v2": "MobileNetV2", "efficientnet_b0": "EfficientNetB0"}


def _applications_notop_h5(name, path, size=32, seed=7):
  """A file laid out like keras.applications' *_notop.h5 downloads: the
  no-top model's save_weights (random weights here: offline)."""
  from trainer.keras_lib import keras  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(seed)
  net = getattr(keras.applications, APPLICATION_CONSTRUCTORS[name])(
      include_top=False, weights=None, input_shape=(size, size, 3))
  net.save_weights(path)
  return net.get_weights()


def _assert_same(actual, expected):
  assert len(actual) == len(expected) > 0
  for a, b in zip(actual, expected):
    np.testing.assert_array_equal(a, b)


def test_every_applications_backbone_is_covered():
  assert set(APPLICATION_CONSTRUCTORS) == set(backbones.APPLICATIONS)


@pytest.mark.parametrize("name", sorted(APPLICATION_CONSTRUCTORS))
def test_keras_applications_notop_h5_loads(tmp_path, name):
  path = str(tmp_path / f"{name}_notop.h5")
  written = _applications_notop_h5(name, path)
  net = backbones.build_backbone(name, 32, weights=path)
  _assert_same(networks.nested_model(net).get_weights(), written)


def test_weights_of_another_backbone_fail_naming_the_flag(tmp_path):
  path = str(tmp_path / "mobilenet_v2_notop.h5")
  _applications_notop_h5("mobilenet_v2", path)
  with pytest.raises(backbones.WeightsError,
                     match=r"--weights: .* does not fit the efficientnet_b0"):
    backbones.build_backbone("efficientnet_b0", 32, weights=path)


def _copy_to(local, remote):
  """Uploads a file or a folder through tf.io.gfile."""
  if os.path.isdir(local):
    for folder, _, files in os.walk(local):
      rel = os.path.relpath(folder, local)
      target = remote if rel == "." else os.path.join(remote, rel)
      tf.io.gfile.makedirs(target)
      for name in files:
        tf.io.gfile.copy(os.path.join(folder, name), os.path.join(target, name))
  else:
    tf.io.gfile.copy(local, remote)


def _ram(name):
  return f"ram://weights-{uuid.uuid4().hex}/{name}"


def test_h5_and_checkpoint_load_from_another_filesystem(tmp_path):
  source = backbones.build_backbone("tiny_cnn", 32)
  source.save_weights(str(tmp_path / "tiny.h5"))
  source.save_weights(str(tmp_path / "ckpt" / "tiny"))  # TF format: 2+ files
  h5 = _ram("tiny.h5")
  _copy_to(str(tmp_path / "tiny.h5"), h5)
  folder = _ram("ckpt")
  _copy_to(str(tmp_path / "ckpt"), folder)
  for path in (h5, folder + "/tiny"):
    loaded = backbones.build_backbone("tiny_cnn", 32, weights=path)
    _assert_same(loaded.get_weights(), source.get_weights())


def _pushed(tmp_path, backbone, seed):
  """A model as the Pusher leaves it: <serving>/<version>/saved_model.pb."""
  model = build_model(ModelSpec(head=CLASSIFICATION.head(3), input_size=64,
                                target_size=32, backbone=backbone, seed=seed))
  serving = tmp_path / "serving"
  model.save(str(serving / "1700000000"), save_format="tf", save_traces=False)
  (serving / ".1700000500.incomplete").mkdir()  # a killed push: not a version
  classifier = model.get_layer("classifier")
  return str(serving), classifier.get_layer(backbone).get_weights()


@pytest.mark.parametrize("backbone", ["tiny_cnn", "mobilenet_v2"])
def test_warm_start_from_a_pushed_model_on_another_filesystem(tmp_path,
                                                              backbone):
  serving, expected = _pushed(tmp_path, backbone, seed=3)
  remote = _ram("serving")
  _copy_to(serving, remote)
  for path in (remote, remote + "/1700000000"):  # the root: newest version
    net = backbones.build_backbone(backbone, 32, weights=path)
    _assert_same(net.get_weights(), expected)


def test_warm_start_needs_the_same_backbone(tmp_path):
  serving, _ = _pushed(tmp_path, "tiny_cnn", seed=3)
  with pytest.raises(backbones.WeightsError,
                     match="has a tiny_cnn backbone, not vit_tiny"):
    backbones.build_backbone("vit_tiny", 32, weights=serving)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.h5", "does not exist"),
    (lambda p: (p / "w.h5").write_text("not hdf5") and p / "w.h5",
     "is not an HDF5 (.h5) weights file"),
    (lambda p: (p / "empty").mkdir() or p / "empty",
     "is a folder without saved_model.pb"),
])
def test_unusable_weights_paths_are_named(tmp_path, make, message):
  path = str(make(tmp_path))
  with pytest.raises(backbones.WeightsError) as e:
    backbones.locate_weights(path)
  assert str(e.value).startswith(f"--weights: {path} {message}")
  assert "keras.applications no-top .h5" in str(e.value)  # the fix


# --weights PATH is data: a pushed model's variables are read from its
# checkpoint, never by running or deserializing what the model holds.
def _writes_marker(x, marker=""):
  with open(marker, "w", encoding="utf-8") as f:  # stands in for os.system
    f.write("ran")
  return x


def _hostile_keras_model(tmp_path, backbone, inside_backbone):
  """A pushed-model layout (trainer/model.py) with a Lambda layer that writes
  tmp_path/marker when Keras deserializes or calls it: between the resizer
  and the classifier, or inside the backbone. Returns (serving root, the
  backbone weights, marker)."""
  from trainer.keras_lib import keras, layers  # pylint: disable=import-outside-toplevel
  from trainer.model import build_classifier  # pylint: disable=import-outside-toplevel
  marker = tmp_path / "marker"
  spec = ModelSpec(head=CLASSIFICATION.head(3), input_size=64, target_size=32,
                   backbone=backbone, resizer="bilinear", seed=5)
  hostile = layers.Lambda(_writes_marker, arguments={"marker": str(marker)},
                          name="hostile")
  classifier = build_classifier(spec)
  net = classifier.get_layer(backbone)
  if inside_backbone:
    inputs = layers.Input((32, 32, 3))
    wrapped = keras.Model(inputs, net(hostile(inputs)), name=backbone)
    resized = layers.Input((32, 32, 3), name="resized")
    classifier = keras.Model(resized, layers.Dense(3, name="logits")(
        wrapped(resized)), name="classifier")
  inputs = layers.Input((64, 64, 3), name="pixels")
  x = layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
  x = layers.Resizing(32, 32, name="bilinear")(x)
  if not inside_backbone:
    x = hostile(x)
  model = keras.Model(inputs, classifier(x), name="bilinear_" + backbone)
  serving = tmp_path / "serving"
  model.save(str(serving / "1700000000"), save_format="tf", save_traces=False)
  assert marker.exists()  # the Lambda runs when Keras calls it
  marker.unlink()
  return str(serving), net.get_weights(), marker


def test_warm_start_reads_weights_without_running_the_models_lambda(tmp_path):
  serving, expected, marker = _hostile_keras_model(tmp_path, "vit_tiny",
                                                   inside_backbone=False)
  net = backbones.build_backbone("vit_tiny", 32, weights=serving)
  _assert_same(net.get_weights(), expected)
  # Another input size: the position embedding's shape differs.
  with pytest.raises(backbones.WeightsError,
                     match=r"does not fit the vit_tiny backbone \(.*shape"):
    backbones.build_backbone("vit_tiny", 64, weights=serving)
  assert not marker.exists()


def test_warm_start_from_a_hostile_backbone_fails_without_running_it(tmp_path):
  serving, _, marker = _hostile_keras_model(tmp_path, "tiny_cnn",
                                            inside_backbone=True)
  with pytest.raises(backbones.WeightsError,
                     match=f"--weights: {serving} does not fit the tiny_cnn "
                     r"backbone \(its checkpoint has no value"):
    backbones.build_backbone("tiny_cnn", 32, weights=serving)
  assert not marker.exists()


class _WritesOnLoad(tf.saved_model.experimental.TrackableResource):
  """A resource whose initializer, run when TensorFlow loads the SavedModel,
  writes a marker file."""

  def __init__(self, marker):
    super().__init__()
    self.marker = marker

  def _create_resource(self):
    return tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.string)

  def _initialize(self):
    tf.io.write_file(self.marker, "ran")


def test_warm_start_refuses_a_non_keras_saved_model_unloaded(tmp_path):
  marker = tmp_path / "marker"
  module = tf.Module()
  module.table = _WritesOnLoad(str(marker))
  path = str(tmp_path / "module")
  tf.saved_model.save(module, path)
  tf.saved_model.load(path)
  assert marker.exists()  # what loading it would do
  marker.unlink()
  # Config validation (locate_weights) stops the run before it starts.
  for use in (backbones.locate_weights,
              lambda p: backbones.build_backbone("tiny_cnn", 32, weights=p)):
    with pytest.raises(backbones.WeightsError) as e:
      use(path)
    assert str(e.value).startswith(
        f"--weights: {path} is a SavedModel without keras_metadata.pb")
    assert "keras.applications no-top .h5" in str(e.value)  # the fix
  assert not marker.exists()
