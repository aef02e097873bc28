"""What a trained candidate costs to serve, measured once after export:
parameters, FLOPs per image of its network's graph, the SavedModel's size on
disk, and the latency of its `serving_images` signature at batch 1 and 32
(medians of repeated calls), with the machine that measured them.

The gate compares candidates by one of these (gate/costs.py names the fields
written here).
"""
import os
import platform
import statistics
import time

import numpy as np
import tensorflow as tf

SIGNATURE = "serving_images"
# (batch size, untimed warm-up calls, timed calls)
LATENCY_RUNS = ((1, 2, 15), (32, 1, 5))


def flops_per_image(model, size):
  """Floating-point operations of one forward pass at batch 1, counted
  from the traced graph by TensorFlow's profiler (2 per multiply-add)."""
  graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(
      tf.TensorSpec([1, size, size, 3], tf.float32)).graph
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  return int(tf.compat.v1.profiler.profile(graph=graph,
                                           options=options).total_float_ops)


def folder_bytes(folder):
  total = 0
  for dirpath, _, files in tf.io.gfile.walk(folder):
    total += sum(tf.io.gfile.stat(os.path.join(dirpath, f)).length
                 for f in files)
  return int(total)


def sample_jpeg(side, seed=0):
  """A photo-like JPEG (smooth gradients and noise) of side x side."""
  rng = np.random.default_rng(seed)
  ramp = np.linspace(0, 255, side, dtype=np.float32)
  image = np.stack([ramp[None, :].repeat(side, 0), ramp[:, None].repeat(side, 1),
                    rng.uniform(0, 255, (side, side)).astype(np.float32)], -1)
  return tf.io.encode_jpeg(tf.constant(image.astype(np.uint8))).numpy()


def latency_ms(serving_dir, side):
  """{batch size: median ms per image} of the exported signature on JPEGs
  of side x side."""
  serve = tf.saved_model.load(serving_dir).signatures[SIGNATURE]
  image = sample_jpeg(side)
  found = {}
  for batch, warm, timed in LATENCY_RUNS:
    inputs = tf.constant([image] * batch)
    for _ in range(warm):
      serve(image_bytes=inputs)
    times = []
    for _ in range(timed):
      started = time.perf_counter()
      outputs = serve(image_bytes=inputs)
      _ = {k: v.numpy() for k, v in outputs.items()}
      times.append(time.perf_counter() - started)
    found[batch] = 1000 * statistics.median(times) / batch
  return found


def machine():
  """The measuring machine in words: CPU model and cores, and GPUs."""
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      cpu = next((line.split(":", 1)[1].strip() for line in f
                  if line.startswith("model name")), cpu)
  except OSError:
    pass
  gpus = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
          for g in tf.config.list_physical_devices("GPU")]
  return f"{cpu}, {os.cpu_count()} cores" + (f", {', '.join(gpus)}"
                                              if gpus else ", no GPU")


def measure(model, serving_dir, input_size, stored_size):
  """The cost record of an exported candidate (model_info.json "cost")."""
  latency = latency_ms(serving_dir, stored_size)
  return {"params": int(model.count_params()),
          "flops_per_image": flops_per_image(model, input_size),
          "saved_model_bytes": folder_bytes(serving_dir),
          "latency_ms_batch1": latency[1], "latency_ms_batch32": latency[32],
          "machine": machine()}
