"""VertexPusher's executor: the filesystem push, then the Vertex deploy.

Only the Vertex AI SDK calls that TFX's cloud pusher makes
(tfx/extensions/google_cloud_ai_platform/prediction_clients.py) are replaced;
TFX's executor, runner and prediction client run as they are. The push
destination is on ram://, a non-local filesystem like gs://, where the
filesystem push takes TFX's own copy path.
"""
import os
import uuid

import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import standard_artifacts

from components.result import recorded
from components.vertex_pusher.component import (VERTEX_MODEL, Executor,
                                                VertexPusher)
from testing.helpers import FakeVertex, no_network

cloud = tfx.extensions.google_cloud_ai_platform
SERVING_IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
FILES = {"saved_model.pb": b"graph", "variables/variables.index": b"index",
         "variables/variables.data-00000-of-00001": b"w" * 100}


def _write(path, data):
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(data)


def _push(blessed, monkeypatch):
  root = f"ram://vertex-pusher-{uuid.uuid4().hex}"
  model = standard_artifacts.Model()
  model.uri = os.path.join(root, "Trainer", "model", "1")
  for name, data in FILES.items():
    _write(os.path.join(model.uri, "Format-Serving", name), data)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = os.path.join(root, "blessing")
  blessing.set_int_custom_property("blessed", int(blessed))
  pushed = standard_artifacts.PushedModel()
  pushed.uri = os.path.join(root, "Pusher", "pushed_model", "3")
  destination = os.path.join(root, "serving")
  component = VertexPusher(
      model=tfx.dsl.Channel(type=standard_artifacts.Model),
      model_blessing=tfx.dsl.Channel(type=standard_artifacts.ModelBlessing),
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=destination)),
      custom_config={
          cloud.ENABLE_VERTEX_KEY: True,
          cloud.VERTEX_REGION_KEY: "europe-west4",
          cloud.VERTEX_CONTAINER_IMAGE_URI_KEY: SERVING_IMAGE,
          cloud.SERVING_ARGS_KEY: {"project": "fake-project",
                                   "endpoint_name": "resizer-endpoint",
                                   "machine_type": "n1-standard-4"}})
  vertex = FakeVertex()
  with no_network() as attempts:
    vertex.install(monkeypatch)
    Executor().Do(
        {"model": [model], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {key: component.exec_properties[key]  # JSON strings, as at run time
         for key in ("push_destination", "custom_config")})
  assert attempts == []  # nothing reached for Google
  return destination, pushed, vertex


def test_blessed_model_is_pushed_to_the_folder_and_deployed(monkeypatch):
  destination, pushed, vertex = _push(True, monkeypatch)
  version = pushed.get_string_custom_property("pushed_version")
  serving = os.path.join(destination, version)
  assert tf.io.gfile.listdir(destination) == [version]
  for name, data in FILES.items():
    with tf.io.gfile.GFile(os.path.join(serving, name), "rb") as f:
      assert f.read() == data
  assert pushed.get_int_custom_property("pushed") == 1
  assert pushed.get_string_custom_property("pushed_destination") == serving
  assert pushed.get_string_custom_property(VERTEX_MODEL) == \
      "projects/p/locations/r/models/42"
  assert recorded(pushed) == (f"pushed to {serving}, deployed to Vertex as "
                             "projects/p/locations/r/models/42")

  assert vertex.named("init") == [{"project": "fake-project",
                                   "location": "europe-west4"}]
  # A missing endpoint is created under the configured name.
  assert [c["display_name"] for c in vertex.named("create_endpoint")] == [
      "resizer-endpoint"]
  [upload] = vertex.named("upload")
  assert upload["serving_container_image_uri"] == SERVING_IMAGE
  # TFX names the Vertex model v<unix time>.
  assert upload["display_name"][0] == "v"
  assert upload["display_name"][1:].isdigit()
  # TFX uploads its own archive copy of the model: the PushedModel folder.
  assert upload["artifact_uri"] == pushed.uri
  with tf.io.gfile.GFile(os.path.join(pushed.uri, "saved_model.pb"),
                         "rb") as f:
    assert f.read() == FILES["saved_model.pb"]
  assert vertex.named("deploy") == [{"endpoint": "resizer-endpoint",
                                     "machine_type": "n1-standard-4",
                                     "traffic_percentage": 100}]


def test_unblessed_model_is_neither_pushed_nor_deployed(monkeypatch):
  destination, pushed, vertex = _push(False, monkeypatch)
  assert not tf.io.gfile.exists(destination)
  assert pushed.get_int_custom_property("pushed") == 0
  assert vertex.calls == []
  assert recorded(pushed) == "nothing pushed"

