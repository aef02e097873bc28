"""Trainer speed, measured side by side in one run (issue: model and strategies).

(a) images/s of the Trainer's input pipeline alone (trainer.training.input_dataset
    over Transform-shaped TFRecords, through TFX's own tfxio data accessor)
    divided by the model's training images/s. Target >= 5: the model, not the
    input, is the bottleneck.
(b) learned/bilinear training step-time ratio divided by their FLOPs ratio.
    Target <= 1.10: the resizer costs what its arithmetic says, no more.

usage: .venv/bin/python bench/model_speed.py [--backbone densenet121]
       [--input-size 300] [--target-size 150] [--batch-size 16] [--steps 5]
       [--ops (where the learned step's extra time goes)] [--jit]
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2)
from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: E402
from tfx.components.trainer.fn_args_utils import DataAccessor  # noqa: E402
from tfx.components.util import tfxio_utils  # noqa: E402
from tfx.types import standard_artifacts  # noqa: E402

from trainer import features  # noqa: E402
from trainer.keras_lib import keras  # noqa: E402
import tasks  # noqa: E402
from pipeline.config import TrainConfig  # noqa: E402
from trainer.model import ModelSpec, build_model  # noqa: E402
from trainer.recipe import optimizer  # noqa: E402
from trainer.training import input_dataset  # noqa: E402

CLASSIFICATION = tasks.get("classification")


def write_transformed(folder, n, size, num_classes=2):
  """n Transform-shaped examples of random pixels; see transformed_accessor."""
  rng = np.random.default_rng(0)
  write_images_transformed(
      folder, (rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
               for _ in range(n)), [i % num_classes for i in range(n)])
  return transformed_accessor(folder)


def write_images_transformed(folder, images, labels):
  """Transform-shaped examples (raw uint8 pixels + label id), gzipped
  TFRecord, in <folder>/Split-train/."""
  split = os.path.join(folder, "Split-train")
  os.makedirs(split)
  with tf.io.TFRecordWriter(os.path.join(split, "data.gz"), "GZIP") as w:
    for pixels, label in zip(images, labels):
      w.write(tf.train.Example(features=tf.train.Features(feature={
          features.PIXELS: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[pixels.tobytes()])),
          features.LABEL_ID: tf.train.Feature(
              int64_list=tf.train.Int64List(value=[int(label)])),
      })).SerializeToString())


def transformed_accessor(folder):
  """(data accessor, file pattern, schema) for input_dataset over the examples of
  write_images_transformed, as the Trainer's DataAccessor reads them."""
  schema = schema_pb2.Schema()
  for name, kind in ((features.PIXELS, schema_pb2.BYTES),
                     (features.LABEL_ID, schema_pb2.INT)):
    f = schema.feature.add(name=name, type=kind)
    f.shape.SetInParent()  # scalar per example, as Transform writes it
    f.presence.min_fraction = 1.0
  examples = standard_artifacts.Examples()
  examples.uri = folder
  examples.split_names = '["train"]'
  accessor = DataAccessor(
      tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact(
          [examples], []),
      record_batch_factory=None, data_view_decode_fn=None)
  return accessor, os.path.join(folder, "Split-train", "*"), schema


def input_images_per_s(accessor, pattern, schema, train, size, batch, n):
  def dataset():
    return input_dataset(accessor, [pattern], schema, CLASSIFICATION, 2, size,
                         train, batch, True)
  for _ in dataset():
    pass  # warm-up pass: file cache and tf.data graph
  start, seen = time.perf_counter(), 0
  for pixels, _ in dataset():
    seen += int(pixels.shape[0])
  return seen / (time.perf_counter() - start)


def forward_flops(model, size):
  fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
      tf.TensorSpec([1, size, size, 3], tf.float32))
  graph = convert_variables_to_constants_v2(fn).graph
  opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  opts["output"] = "none"
  return tf.compat.v1.profiler.profile(graph=graph, options=opts).total_float_ops


def train_step_seconds(model, train, batch, size, steps, jit=False):
  model.compile(optimizer(train), keras.losses.CategoricalCrossentropy(
      label_smoothing=0.1), jit_compile=jit)
  rng = np.random.default_rng(1)
  x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
  y = keras.utils.to_categorical(rng.integers(0, 2, batch), 2)
  for _ in range(2):  # trace and warm up
    model.train_on_batch(x, y)
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    model.train_on_batch(x, y)
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def full_resolution_ops(batch, size, target, filters=16):
  """Median ms of the resizer's full-resolution training ops, one at a time.

  Where the learned step's extra time goes: these run at the input size, the
  rest of the resizer at the target size (a quarter of the pixels at 2x).
  """
  rng = tf.random.Generator.from_seed(0)
  x3 = rng.uniform([batch, size, size, 3])
  x = rng.uniform([batch, size, size, filters])
  g = rng.uniform([batch, target, target, filters])
  ones, zeros, empty = tf.ones([filters]), tf.zeros([filters]), tf.zeros([0])
  strides = [1, 1, 1, 1]

  def bn_train_and_grad():
    _, _, _, r1, r2, r3 = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=ones, offset=zeros, mean=empty, variance=empty)
    return tf.raw_ops.FusedBatchNormGradV3(
        y_backprop=x, x=x, scale=ones, reserve_space_1=r1, reserve_space_2=r2,
        reserve_space_3=r3)[0]

  ops = {
      "conv 7x7 3->n forward": lambda: tf.nn.conv2d(
          x3, tf.ones([7, 7, 3, filters]), 1, "SAME"),
      "conv 7x7 3->n filter gradient": lambda: tf.raw_ops.Conv2DBackpropFilter(
          input=x3, filter_sizes=[7, 7, 3, filters], out_backprop=x,
          strides=strides, padding="SAME"),
      "conv 1x1 n->n forward": lambda: tf.nn.conv2d(
          x, tf.ones([1, 1, filters, filters]), 1, "SAME"),
      "conv 1x1 n->n filter + input gradients": lambda: (
          tf.raw_ops.Conv2DBackpropFilter(
              input=x, filter_sizes=[1, 1, filters, filters], out_backprop=x,
              strides=strides, padding="SAME"),
          tf.raw_ops.Conv2DBackpropInput(
              input_sizes=x.shape, filter=tf.ones([1, 1, filters, filters]),
              out_backprop=x, strides=strides, padding="SAME")),
      "2 x LeakyReLU forward + gradient": lambda: [
          (tf.nn.leaky_relu(x, 0.2),
           tf.raw_ops.LeakyReluGrad(gradients=x, features=x, alpha=0.2))
          for _ in range(2)],
      "BatchNorm (training) forward + gradient": bn_train_and_grad,
      "bilinear resize forward + gradient": lambda: (
          tf.image.resize(x, [target, target]),
          tf.raw_ops.ResizeBilinearGrad(grads=g, original_image=x,
                                        half_pixel_centers=True)),
  }
  times = {}
  for name, op in ops.items():
    fn = tf.function(op)
    for _ in range(2):
      tf.nest.map_structure(lambda t: t.numpy(), fn())
    runs = []
    for _ in range(5):
      start = time.perf_counter()
      tf.nest.map_structure(lambda t: t.numpy(), fn())
      runs.append(time.perf_counter() - start)
    times[name] = float(np.median(runs))
  return times


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--backbone", default="densenet121")
  parser.add_argument("--input-size", type=int, default=300)
  parser.add_argument("--target-size", type=int, default=150)
  parser.add_argument("--batch-size", type=int, default=16)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--examples", type=int, default=256)
  parser.add_argument("--jit", action="store_true",
                      help="XLA-compile the train step (both models)")
  parser.add_argument("--ops", action="store_true",
                      help="also time the resizer's full-resolution ops")
  args = parser.parse_args()
  size, batch = args.input_size, args.batch_size
  train = TrainConfig(augment="flip_crop", optimizer="adam",
                      learning_rate=1e-3, seed=42)
  print(f"machine: {os.cpu_count()} CPU cores, TF {tf.__version__}, GPUs: "
        f"{len(tf.config.list_physical_devices('GPU'))}")

  with tempfile.TemporaryDirectory() as tmp:
    accessor, pattern, schema = write_transformed(tmp, args.examples, size)
    input_rate = input_images_per_s(accessor, pattern, schema, train, size,
                                    batch, args.examples)
  results = {}
  for resizer in ("learned", "bilinear"):
    model = build_model(ModelSpec(head=CLASSIFICATION.head(2), input_size=size,
                                  target_size=args.target_size,
                                  backbone=args.backbone, resizer=resizer))
    results[resizer] = {
        "params": model.count_params(),
        "flops": forward_flops(model, size),
        "step_s": train_step_seconds(model, train, batch, size, args.steps,
                                     args.jit)}
    r = results[resizer]
    print(f"{resizer:8s} params {r['params']:,}  forward GFLOPs/image "
          f"{r['flops'] / 1e9:.3f}  train step {r['step_s']:.3f} s "
          f"({batch / r['step_s']:.1f} images/s)")
  if args.ops:
    ops = full_resolution_ops(batch, size, args.target_size)
    print(f"resizer ops at {size} px, batch {batch} (ms; the learned step "
          "spends "
          f"{results['learned']['step_s'] - results['bilinear']['step_s']:.3f}"
          " s more than the bilinear one):")
    for name, seconds in ops.items():
      print(f"  {name:42s} {1e3 * seconds:8.1f}")
    print(f"  {'sum':42s} {1e3 * sum(ops.values()):8.1f}")
  model_rate = batch / results["learned"]["step_s"]
  time_ratio = results["learned"]["step_s"] / results["bilinear"]["step_s"]
  flops_ratio = results["learned"]["flops"] / results["bilinear"]["flops"]
  print(f"input pipeline: {input_rate:.1f} images/s "
        f"(flip+crop, batch {batch}, {args.examples} examples, {size} px)")
  print(f"step-time ratio learned/bilinear {time_ratio:.3f}; "
        f"FLOPs ratio {flops_ratio:.3f}")
  print(f"(a) input/model throughput ratio: {input_rate / model_rate:.1f} "
        "(target >= 5)")
  print(f"(b) step-time ratio / FLOPs ratio: {time_ratio / flops_ratio:.3f} "
        "(target <= 1.10)")


if __name__ == "__main__":
  main()
