"""Strategy and precision choice, a real two-worker run, mixed precision."""
import json
import os
import subprocess
import sys

import numpy as np
import portpicker
import pytest
import tensorflow as tf

import tasks
from trainer import distribution
from trainer.keras_lib import keras
from trainer.model import ModelSpec, build_model

CLASSIFICATION = tasks.get("classification")


def test_cpu_gets_the_default_strategy_and_float32(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  strategy = distribution.choose_strategy("auto")
  assert strategy is tf.distribute.get_strategy()
  assert distribution.precision_policy(strategy) == "float32"
  assert distribution.precision_policy(strategy, "mixed_bfloat16") == \
      "mixed_bfloat16"
  assert distribution.is_chief(strategy)


def test_auto_picks_by_environment(monkeypatch):
  made = []
  monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy",
                      lambda: made.append("multi_worker") or "mwms")
  monkeypatch.setattr(tf.distribute, "MirroredStrategy",
                      lambda: made.append("mirrored") or "mirrored")
  monkeypatch.setenv("TF_CONFIG", json.dumps({
      "cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker",
                                                      "index": 0}}))
  assert distribution.choose_strategy("auto") == "mwms"
  monkeypatch.delenv("TF_CONFIG")
  two_gpus = [tf.config.LogicalDevice(f"/gpu:{i}", "GPU") for i in range(2)]
  monkeypatch.setattr(tf.config, "list_logical_devices",
                      lambda kind=None: two_gpus if kind == "GPU" else [])
  assert distribution.choose_strategy("auto") == "mirrored"
  assert made == ["multi_worker", "mirrored"]
  assert distribution.precision_policy("mirrored") == "mixed_float16"


def test_tpu_strategy_gets_bfloat16():
  class FakeTPU(tf.distribute.TPUStrategy):
    def __init__(self):  # pylint: disable=super-init-not-called
      pass
  assert distribution.precision_policy(FakeTPU()) == "mixed_bfloat16"


def test_tpu_requested_without_a_tpu_is_a_clear_error():
  with pytest.raises(ValueError, match="no TPU answered"):
    distribution.choose_strategy("tpu")


def test_two_workers_train_together_and_only_the_chief_saves(tmp_path):
  ports = [str(portpicker.pick_unused_port()) for _ in range(2)]
  script = os.path.join(os.path.dirname(__file__), "multiworker_worker.py")
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
         "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))}
  procs = [subprocess.Popen([sys.executable, script, str(i), *ports,
                             str(tmp_path)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  for proc in procs:
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
  workers = [json.loads((tmp_path / f"worker_{i}.json").read_text())
             for i in range(2)]
  assert [w["multi_worker"] for w in workers] == [True, True]
  assert [w["replicas"] for w in workers] == [2, 2]
  assert [w["chief"] for w in workers] == [True, False]
  assert workers[0]["steps"] == workers[1]["steps"] == 2 * 4  # 64 / 16, 2 epochs
  weights = [np.load(tmp_path / f"weights_{i}.npy") for i in range(2)]
  np.testing.assert_array_equal(weights[0], weights[1])
  saved = tf.saved_model.load(str(tmp_path / "model"))
  probs = saved.signatures["serving_default"](
      tf.zeros((1, 32, 32, 3)))
  assert list(probs.values())[0].shape == (1, 2)
  assert sorted(os.listdir(tmp_path)) == sorted(
      ["model", "weights_0.npy", "weights_1.npy", "worker_0.json",
       "worker_1.json"])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_still_learns_with_float32_outputs(policy):
  keras.mixed_precision.set_global_policy(policy)
  try:
    model = build_model(ModelSpec(head=CLASSIFICATION.head(2), input_size=32,
                                  target_size=16))
    model.compile(keras.optimizers.Adam(0.01), "categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 2, 16), 2)
    losses = model.fit(x, y, batch_size=16, epochs=8, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    assert model.output.dtype == tf.float32
    assert model.get_layer("classifier").get_layer("logits").compute_dtype == \
        policy.split("_")[1]
  finally:
    keras.mixed_precision.set_global_policy("float32")
