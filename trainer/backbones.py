"""Backbones by name, and the --weights they start from.

trainer/networks.py builds them: keras.applications' DenseNet-121 (the seed),
ResNet-50 (the paper), MobileNetV2 and EfficientNet-B0, a tiny CNN, and ViT.

`--weights PATH` (local, gs:// or ram://) is one of:
- a keras.applications no-top `.h5` file (what users download), loaded into
  the applications model inside the backbone, by topology as Keras does;
- a `.h5` file or TF checkpoint saved from a backbone built here;
- a model this pipeline pushed (`<output>/serving/<version>/`, or the serving
  root for its newest version): its backbone's weights (warm start), read
  from its variables checkpoint. The model is never loaded: a SavedModel is a
  program (its Lambda layers, its initializers), and weights are data.
"""
# pylint: disable=import-outside-toplevel
# Importing this module loads no TensorFlow: the CLI and the typed config read
# the names; building and loading import it.
import json
import os
import re
import tempfile

from trainer.text import escape

# The backbones with ImageNet weights: name -> (keras.applications
# constructor, the keras.applications module with its preprocess_input).
APPLICATIONS = {
    "densenet121": ("DenseNet121", "densenet"),
    "resnet50": ("ResNet50", "resnet50"),
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2"),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet"),
}
BACKBONES = ("tiny_cnn", "vit", "vit_tiny") + tuple(APPLICATIONS)


class WeightsError(ValueError):
  """--weights PATH can't be used; the message says why and what to give."""


KERAS_METADATA = "keras_metadata.pb"  # tf_keras's layer configs in a SavedModel
# The names Keras gives a model's layers in its checkpoint object graph.
_LAYER_EDGE = re.compile(r"layer(_with_weights)?-\d+")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first 8 bytes of a Keras .h5 file
WEIGHTS_FIX = ("give a keras.applications no-top .h5 file for the backbone "
               "(e.g. densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5), "
               "a model folder this pipeline pushed (<output>/serving/<version>"
               "), imagenet, or none")


def locate_weights(path):
  """(kind, path) of a --weights PATH: kind is "h5", "checkpoint" or
  "saved_model" (path then is the model folder itself). Reads at most 8 bytes
  through tf.io.gfile and builds no model: config validation calls it."""
  import tensorflow as tf
  from trainer import model_dirs
  try:
    # First: a checkpoint prefix may look like a folder on filesystems with
    # no real folders (ram:// lists every prefix).
    if tf.io.gfile.exists(path + ".index"):  # save_weights' TF format
      return "checkpoint", path
    if tf.io.gfile.isdir(path):
      model_dir = model_dirs.resolve_model_dir(path)
      if model_dir is None:
        raise WeightsError(
            f"--weights: {path} is a folder without {model_dirs.SAVED_MODEL} "
            f"(nor a numbered version folder holding one); {WEIGHTS_FIX}")
      if not tf.io.gfile.exists(os.path.join(model_dir, KERAS_METADATA)):
        raise _not_keras(path)
      return "saved_model", model_dir
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path, "rb") as f:
        if f.read(8) != HDF5_SIGNATURE:
          raise WeightsError(f"--weights: {path} is not an HDF5 (.h5) weights "
                             f"file; {WEIGHTS_FIX}")
      return "h5", path
  except tf.errors.OpError as e:  # e.g. no access to the bucket
    raise WeightsError(f"--weights: can't read {path} ({e.message}); check "
                       "the path and your access to it") from None
  raise WeightsError(f"--weights: {path} does not exist; {WEIGHTS_FIX}")


def _local_copy(kind, path):
  """Keras reads weights from local disk: copy a remote file or every file of
  a checkpoint."""
  import tensorflow as tf
  if "://" not in path:
    return path
  local = os.path.join(tempfile.mkdtemp(prefix="weights-"),
                       os.path.basename(path.rstrip("/")))
  if kind == "checkpoint":  # <prefix>.index and <prefix>.data-*-of-*
    for source in tf.io.gfile.glob(path + ".*"):
      tf.io.gfile.copy(source, local + source[len(path):], overwrite=True)
  else:
    tf.io.gfile.copy(path, local, overwrite=True)
  return local


def _not_keras(path):
  return WeightsError(f"--weights: {path} is a SavedModel without "
                      f"{KERAS_METADATA}, not a Keras model this pipeline "
                      f"pushed; {WEIGHTS_FIX}")


def _read_keras_metadata(model_dir, path):
  """{node path: config dict} of keras_metadata.pb: the layer configs as JSON,
  read as data (no layer is built from them)."""
  import tensorflow as tf
  from google.protobuf.message import DecodeError
  # tf_keras's own proto, imported once keras_lib has chosen tf_keras.
  from trainer import keras_lib  # noqa: F401  pylint: disable=unused-import
  from tf_keras.protobuf import saved_metadata_pb2
  try:
    with tf.io.gfile.GFile(os.path.join(model_dir, KERAS_METADATA), "rb") as f:
      metadata = saved_metadata_pb2.SavedMetadata.FromString(f.read())
  except tf.errors.NotFoundError:  # removed since locate_weights looked
    raise _not_keras(path) from None
  except DecodeError:
    raise WeightsError(f"--weights: {path}: {KERAS_METADATA} is not Keras "
                       f"metadata; {WEIGHTS_FIX}") from None
  configs = {}
  for node in metadata.nodes:
    try:
      config = json.loads(node.metadata)
    except (ValueError, RecursionError):
      continue
    if isinstance(config, dict) and node.identifier == "_tf_keras_network":
      configs[node.node_path] = config
  return configs


def _pushed_backbone(model_dir, path):
  """(checkpoint edges from the root to the backbone, the backbone's name) of
  a model built by trainer/model.py: the one network inside "classifier"."""
  networks = _read_keras_metadata(model_dir, path)
  inner = [(p.split(".")[1:], c.get("name")) for p, c in networks.items()
           if p.startswith("root.") and p.count(".") == 2 and
           networks.get(p.rsplit(".", 1)[0], {}).get("name") == "classifier"]
  if len(inner) != 1 or not isinstance(inner[0][1], str) or \
      not all(_LAYER_EDGE.fullmatch(edge) for edge in inner[0][0]):
    raise WeightsError(f"--weights: {path} is not a model this pipeline "
                       f"pushed (no classifier backbone inside); {WEIGHTS_FIX}")
  return inner[0]


def _load_pushed_backbone(net, name, model_dir, path):
  """Restores a pushed model's backbone variables into net from its variables
  checkpoint (tensors only: nothing the model holds is run or deserialized),
  matched by the names Keras gives layers in the checkpoint object graph."""
  import tensorflow as tf
  edges, source = _pushed_backbone(model_dir, path)
  if source != name:
    raise WeightsError(f"--weights: the model in {path} has a {escape(source)}"
                       f" backbone, not {name}; use --backbone "
                       f"{escape(source)} or another model")
  root = net
  for edge in reversed(edges):
    root = tf.train.Checkpoint(**{edge: root})
  status = root.read(os.path.join(model_dir, "variables", "variables"))
  status.expect_partial()  # the resizer and the head are not wanted here
  try:
    status.assert_existing_objects_matched()
  except AssertionError:
    raise WeightsError(
        f"--weights: {path} does not fit the {name} backbone (its checkpoint "
        f"has no value for some of the backbone's variables: another "
        f"architecture); {WEIGHTS_FIX}") from None


def load_weights(net, name, path):
  """Loads --weights PATH into the backbone `net` built for `name`."""
  import tensorflow as tf
  from trainer.networks import nested_model
  kind, found = locate_weights(path)
  try:
    if kind == "saved_model":
      _load_pushed_backbone(net, name, found, path)
      return
    local = _local_copy(kind, found)
    if kind == "h5" and name in APPLICATIONS:
      try:  # a keras.applications file: weights of the applications model
        nested_model(net).load_weights(local)
      except ValueError as first:
        try:  # or a file saved from this whole backbone
          net.load_weights(local)
        except ValueError:
          raise first from None  # the applications error says more
    else:
      net.load_weights(local)
  except WeightsError:
    raise
  # Layer count or shape mismatches, an unreadable checkpoint.
  except (ValueError, KeyError, tf.errors.OpError) as e:
    detail = " ".join(str(getattr(e, "message", None) or e).split())[:300]
    raise WeightsError(f"--weights: {path} does not fit the {name} backbone "
                       f"({escape(detail)}); {WEIGHTS_FIX}") from None


def build_backbone(name, size, weights=None):
  """Returns a model mapping [B, size, size, 3] in [0, 1] to [B, features].

  weights: None (random init), "imagenet" (downloads once), or a path (local,
  gs:// or ram://) to weights for this backbone: see the module docstring.
  """
  from trainer import networks
  if name not in BACKBONES:
    raise ValueError(f"unknown backbone {name!r}; choose one of "
                     f"{', '.join(BACKBONES)}")
  path = weights if weights not in (None, "imagenet") else None
  if name in APPLICATIONS:
    net = networks.application(
        name, size, "imagenet" if weights == "imagenet" else None,
        *APPLICATIONS[name])
  elif weights == "imagenet":
    raise ValueError(f"backbone {name} has no ImageNet weights here; use "
                     "--weights none or a weights file")
  elif name == "tiny_cnn":
    net = networks.tiny_cnn(size)
  elif name == "vit":
    net = networks.vit(size)
  else:  # vit_tiny: the same architecture, small enough for tests.
    # Named for its backbone: a warm start checks the pushed model's name.
    net = networks.vit(size, patch=8, dim=32, depth=2, heads=2, mlp_dim=64,
                       name="vit_tiny")
  if path:
    load_weights(net, name, path)
  return net
