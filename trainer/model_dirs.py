"""Finding a pushed model: a SavedModel folder, or the newest version of a
serving root (`<output>/serving/<version>/`, TF Serving's layout).

Paths may be local, gs:// or ram://, so only tf.io.gfile touches them.
"""
import os

import tensorflow as tf

SAVED_MODEL = "saved_model.pb"


def is_saved_model(path):
  return tf.io.gfile.exists(os.path.join(path, SAVED_MODEL))


def versions(root):
  """Numeric version folders under root, newest first (hidden staging
  folders such as `.123.incomplete` are not versions)."""
  names = [n.rstrip("/") for n in tf.io.gfile.listdir(root)]
  return sorted((n for n in names if n.isdigit()), key=int, reverse=True)


def resolve_model_dir(path):
  """path if it holds saved_model.pb, else the newest numeric version folder
  under it that does (the Pusher copies saved_model.pb last, so a half-copied
  version is skipped), else None."""
  if is_saved_model(path):
    return path
  if not tf.io.gfile.isdir(path):
    return None
  for version in versions(path):
    candidate = os.path.join(path, version)
    if is_saved_model(candidate):
      return candidate
  return None
