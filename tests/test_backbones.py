"""Backbones build offline by name; weights files load; ImageNet offline fails clearly."""
import numpy as np
import pytest
import tensorflow as tf

from trainer import backbones
from trainer.model import ModelSpec, build_model


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
  model = build_model(ModelSpec(num_classes=2, input_size=512, target_size=224,
                                backbone="vit"))
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
  with pytest.raises(backbones.WeightsUnavailableError,
                     match="--weights PATH"):
    backbones.build_backbone("mobilenet_v2", 96, weights="imagenet")


def test_unknown_backbone_names_the_choices():
  with pytest.raises(ValueError, match="densenet121"):
    backbones.build_backbone("vgg99", 32)


@pytest.mark.parametrize("name", ["mobilenet_v2"])  # same path as densenet121
def test_application_backbones_save_and_reload(tmp_path, name):
  # The Trainer exports with model.save; TFMA and the report reload it.
  from trainer.keras_lib import keras  # pylint: disable=import-outside-toplevel
  model = build_model(ModelSpec(num_classes=2, input_size=64, target_size=32,
                                backbone=name))
  images = tf.random.uniform((2, 64, 64, 3), 0, 255)
  model.save(str(tmp_path / "m"), save_format="tf")
  reloaded = keras.models.load_model(str(tmp_path / "m"), compile=False)
  np.testing.assert_allclose(reloaded(images).numpy(), model(images).numpy(),
                             atol=1e-5)
  served = tf.saved_model.load(str(tmp_path / "m"))
  np.testing.assert_allclose(served(images).numpy(), model(images).numpy(),
                             atol=1e-5)
