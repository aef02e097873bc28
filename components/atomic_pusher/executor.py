"""Pusher executor whose filesystem push lands whole, under a version no other
push has.

TFX's Pusher names the version after the current second and, when that
folder exists already (a second push within the second, or a concurrent one),
skips the copy but still records the push: one model is silently lost. Here a
taken version moves the push on to the next free one, and the PushedModel
records the version actually written.

Local disks: the model is copied to a hidden staging folder (TF Serving only
loads numbered ones) and renamed into place, which is atomic and fails, rather
than replaces, when another push got there first. Object stores (gs://) have no
folder rename: there the model goes straight to a version that did not exist,
saved_model.pb last, as TFX copies it.
"""
import errno
import itertools
import os
import re
import shutil
import time
import uuid

from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components import result, tfx_internals

SAVED_MODEL = "saved_model.pb"


def pushed_line(pushed) -> str:
  """'pushed to <destination>' or 'nothing pushed': the step's result, from
  what the push recorded on the PushedModel `pushed`."""
  if pushed.get_int_custom_property("pushed"):
    return f"pushed to {pushed.get_string_custom_property('pushed_destination')}"
  return "nothing pushed"


class Executor(pusher_executor.Executor):

  def Do(self, input_dict, output_dict, exec_properties):
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    self._push(input_dict, output_dict, exec_properties, model_push)
    result.record(model_push, pushed_line(model_push))

  def _push(self, input_dict, output_dict, exec_properties, model_push):
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
        destination)
    if destination.WhichOneof("destination") != "filesystem":
      super().Do(input_dict, output_dict, exec_properties)
      return
    base = destination.filesystem.base_directory
    tfx_internals.log_startup(self, input_dict, output_dict, exec_properties)
    if not self.CheckBlessing(input_dict):
      tfx_internals.mark_not_pushed(self, model_push)
      return
    model_path = self.GetModelPath(input_dict)
    push = _push_to_object_store if "://" in base else _push_to_local_disk
    version = push(model_path, base)
    io_utils.copy_dir(model_path, model_push.uri)  # the artifact's archive copy
    tfx_internals.mark_pushed(self, model_push,
                              pushed_destination=os.path.join(base, version),
                              pushed_version=version)


def _versions():
  """Candidate versions: the current second, then each second after it."""
  return (str(v) for v in itertools.count(int(time.time())))


def _push_to_local_disk(model_path: str, base: str) -> str:
  """Publishes a copy of model_path as <base>/<version>; returns version."""
  staging = os.path.join(base, f".{uuid.uuid4().hex}.incomplete")
  try:
    io_utils.copy_dir(model_path, staging)
    for version in _versions():
      target = os.path.join(base, version)
      if os.path.lexists(target):
        continue
      # Onto a non-empty folder (a push that won the race since the check)
      # rename fails instead of replacing it.
      try:
        os.rename(staging, target)
      except OSError as e:
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
          continue
        raise
      return version
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise


def _push_to_object_store(model_path: str, base: str) -> str:
  """Copies model_path to a new <base>/<version>; returns version.

  tf.io.gfile offers object stores no exclusive create: two pushes could
  still pick one version if both check it before either copies (TFX's
  window was the whole second, and it skipped the copy).
  """
  version = next(v for v in _versions()
                 if not fileio.exists(os.path.join(base, v)))
  target = os.path.join(base, version)
  # saved_model.pb last: TF Serving takes it as the sign that the model is
  # complete.
  io_utils.copy_dir(model_path, target, deny_regex_patterns=[re.escape(SAVED_MODEL)])
  if fileio.exists(os.path.join(model_path, SAVED_MODEL)):
    io_utils.copy_file(os.path.join(model_path, SAVED_MODEL),
                       os.path.join(target, SAVED_MODEL))
  return version
