"""Chooses the tf.distribute strategy and mixed-precision policy.

auto: a TPU if a resolver answers, MultiWorkerMirroredStrategy when TF_CONFIG
names more than one worker (Vertex replica_count > 1), MirroredStrategy on
several GPUs, one device otherwise (the default strategy on CPU).
"""
# pylint: disable=import-outside-toplevel
# Importing this module loads no TensorFlow: the CLI reads the choices.
import json
import os

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def _cluster_size():
  cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
  return sum(len(cluster.get(k, [])) for k in ("chief", "worker"))


def _tpu_resolver():
  import tensorflow as tf
  try:
    return tf.distribute.cluster_resolver.TPUClusterResolver()
  except (ValueError, KeyError, RuntimeError):
    return None


def choose_strategy(name="auto"):
  import tensorflow as tf
  if name not in STRATEGIES:
    raise ValueError(f"strategy={name!r}: choose one of {', '.join(STRATEGIES)}")
  resolver = _tpu_resolver() if name in ("auto", "tpu") else None
  if name == "tpu" or (name == "auto" and resolver is not None):
    if resolver is None:
      raise ValueError("strategy=tpu but no TPU answered the resolver")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  if name == "multi_worker" or (name == "auto" and _cluster_size() > 1):
    return tf.distribute.MultiWorkerMirroredStrategy()
  gpus = tf.config.list_logical_devices("GPU")
  if name == "mirrored" or (name == "auto" and len(gpus) > 1):
    return tf.distribute.MirroredStrategy()
  if name == "auto" and len(gpus) == 1:
    return tf.distribute.OneDeviceStrategy("/gpu:0")
  return tf.distribute.get_strategy()


def precision_policy(strategy, override="auto"):
  """mixed_bfloat16 on TPU, mixed_float16 on GPU, float32 on CPU."""
  import tensorflow as tf
  if override != "auto":
    return override
  if isinstance(strategy, tf.distribute.TPUStrategy):
    return "mixed_bfloat16"
  if tf.config.list_logical_devices("GPU"):
    return "mixed_float16"
  return "float32"


def is_chief(strategy):
  """Only the chief writes the model; other workers write to scratch dirs."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
