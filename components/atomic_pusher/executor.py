"""Pusher executor whose filesystem push is all-or-nothing on local disks.

TFX's Pusher creates `<base>/<version>/` first and copies `saved_model.pb`
last; a push killed part-way still leaves a numbered folder that TF Serving
would try to load. Here the model is copied to a hidden `.<version>.incomplete`
folder (TF Serving only loads numbered ones) and renamed into place, which is
atomic on a local file system. Object stores (gs://) have no directory rename,
so there TFX's own copy (saved_model.pb last) is kept.
"""
import os
import time

from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils


class Executor(pusher_executor.Executor):

  def Do(self, input_dict, output_dict, exec_properties):
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
        destination)
    base = destination.filesystem.base_directory
    if destination.WhichOneof("destination") != "filesystem" or "://" in base:
      super().Do(input_dict, output_dict, exec_properties)
      return
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    model_path = self.GetModelPath(input_dict)
    version = str(int(time.time()))
    serving_path = os.path.join(base, version)
    if not fileio.exists(serving_path):
      staging = os.path.join(base, f".{version}.incomplete")
      io_utils.copy_dir(model_path, staging)  # replaces a killed push's leftovers
      os.rename(staging, serving_path)  # atomic: the version appears whole
    io_utils.copy_dir(model_path, model_push.uri)  # the artifact's archive copy
    self._MarkPushed(model_push, pushed_destination=serving_path,
                     pushed_version=version)
