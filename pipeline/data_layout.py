"""Maps an image folder's layout to ExampleGen input/output configs.

flat:   <data>/<class>/<image>           -> deterministic hash split train/eval
splits: <data>/train/<class>/<image> and <data>/validation|eval/<class>/<image>
        -> the existing split is kept (validation/ when both exist). Files
        in other folders (test/, the unused eval folder) or loose at the top
        are listed as rejected by ImageExampleGen.
"""
import os

import tensorflow as tf
from tfx.proto import example_gen_pb2

from components.image_example_gen.ingest import EVAL_DIRS
from pipeline.config import ConfigError
from trainer import features


def detect_layout(data_dir):
  """Returns ("splits", eval_dir) or ("flat", None)."""
  subdirs = {d.rstrip("/") for d in tf.io.gfile.listdir(data_dir)
             if tf.io.gfile.isdir(os.path.join(data_dir, d))}
  eval_dirs = [d for d in EVAL_DIRS if d in subdirs]
  if "train" in subdirs and eval_dirs:
    return "splits", eval_dirs[0]
  if "train" in subdirs or eval_dirs:
    raise ConfigError(
        f"--data: {data_dir} has {'train/' if 'train' in subdirs else eval_dirs[0] + '/'}"
        " but not its partner: give both train/ and validation/ (or eval/), "
        "or pass --layout flat to treat every subfolder as a class")
  return "flat", None


def example_gen_configs(data_dir, layout="auto", eval_percent=20):
  """Returns (input_config, output_config) for ImageExampleGen."""
  eval_dir = None
  if layout == "auto":
    if "://" in data_dir:
      raise ConfigError(f"--layout: can't look inside {data_dir} without "
                        "network access; pass --layout flat or --layout splits")
    layout, eval_dir = detect_layout(data_dir)
  if layout == "splits":
    eval_dir = eval_dir or ("validation" if "://" in data_dir or os.path.isdir(
        os.path.join(data_dir, "validation")) else "eval")
    return example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name="train", pattern="train/*/*"),
        example_gen_pb2.Input.Split(name="eval", pattern=f"{eval_dir}/*/*"),
    ]), example_gen_pb2.Output()
  # Hashing the image bytes keeps duplicates of one image in one split.
  return example_gen_pb2.Input(splits=[
      example_gen_pb2.Input.Split(name="single_split", pattern="*/*"),
  ]), example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
      splits=[
          example_gen_pb2.SplitConfig.Split(name="train",
                                            hash_buckets=100 - eval_percent),
          example_gen_pb2.SplitConfig.Split(name="eval",
                                            hash_buckets=eval_percent),
      ], partition_feature_name=features.IMAGE))

