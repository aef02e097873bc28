"""The filesystem push is all-or-nothing: an interrupted copy leaves no version."""
import os

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.dsl.io import fileio
from tfx.utils import proto_utils

from components.atomic_pusher import executor as atomic
from tests.helpers import ram_root, write_model


def _push(tmp_path, blessed=1):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / "model")
  serving = tmp_path / "model" / "Format-Serving"
  (serving / "variables").mkdir(parents=True, exist_ok=True)
  (serving / "saved_model.pb").write_bytes(b"graph")
  (serving / "variables" / "variables.data-00000-of-00001").write_bytes(
      b"w" * 1000)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / "blessing")
  blessing.set_int_custom_property("blessed", blessed)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / "pushed")
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(
          base_directory=str(tmp_path / "serving")))
  atomic.Executor().Do(
      {"model": [model], "model_blessing": [blessing]},
      {"pushed_model": [pushed]},
      {"push_destination": proto_utils.proto_to_json(destination)})
  return pushed


def test_blessed_model_lands_whole_under_a_numbered_version(tmp_path):
  pushed = _push(tmp_path)
  versions = os.listdir(tmp_path / "serving")
  assert len(versions) == 1 and versions[0].isdigit()
  version = tmp_path / "serving" / versions[0]
  assert (version / "saved_model.pb").read_bytes() == b"graph"
  assert len((version / "variables" /
              "variables.data-00000-of-00001").read_bytes()) == 1000
  assert pushed.get_int_custom_property("pushed") == 1
  assert pushed.get_string_custom_property("pushed_destination") == str(version)


def test_an_interrupted_copy_leaves_no_loadable_version(tmp_path, monkeypatch):
  real_copy = fileio.copy

  def copy_then_die(src, dst, *args, **kwargs):
    if src.endswith("saved_model.pb"):
      raise KeyboardInterrupt("killed mid-copy")
    return real_copy(src, dst, *args, **kwargs)

  monkeypatch.setattr(fileio, "copy", copy_then_die)
  with pytest.raises(KeyboardInterrupt):
    _push(tmp_path)
  left = os.listdir(tmp_path / "serving")
  assert not [d for d in left if d.isdigit()]  # nothing TF Serving would load
  assert all(d.startswith(".") for d in left)
  monkeypatch.setattr(fileio, "copy", real_copy)
  _push(tmp_path)  # the next push cleans up and lands whole
  assert len([d for d in os.listdir(tmp_path / "serving") if d.isdigit()]) == 1


def test_unblessed_model_is_not_pushed(tmp_path):
  pushed = _push(tmp_path, blessed=0)
  assert not (tmp_path / "serving").exists()
  assert pushed.get_int_custom_property("pushed") == 0


@pytest.mark.parametrize("destination", ["local", "ram"])
def test_artifacts_on_ram(tmp_path, destination):
  """Model and PushedModel URIs on ram:// (as gs:// on Vertex): copied with
  TFX fileio; a local destination still gets the atomic rename."""
  root = ram_root("atomic-pusher")
  model = standard_artifacts.Model()
  model.uri = f"{root}/model"
  write_model(model.uri)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = f"{root}/blessing"
  blessing.set_int_custom_property("blessed", 1)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = f"{root}/pushed"
  base = str(tmp_path / "serving") if destination == "local" else \
      f"{root}/serving"
  atomic.Executor().Do(
      {"model": [model], "model_blessing": [blessing]},
      {"pushed_model": [pushed]},
      {"push_destination": proto_utils.proto_to_json(
          pusher_pb2.PushDestination(
              filesystem=pusher_pb2.PushDestination.Filesystem(
                  base_directory=base)))})
  version = pushed.get_string_custom_property("pushed_version")
  assert pushed.get_string_custom_property("pushed_destination") == \
      f"{base}/{version}"
  assert fileio.listdir(base) == [version]
  for folder in (f"{base}/{version}", pushed.uri):
    with fileio.open(f"{folder}/saved_model.pb", "rb") as f:
      assert f.read() == b"graph"
