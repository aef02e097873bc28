"""The filesystem push is all-or-nothing (an interrupted copy leaves no
version), and every push lands under a version of its own."""
import os
import threading
import types

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.dsl.io import fileio
from tfx.utils import proto_utils

from components.atomic_pusher import executor as atomic
from components.result import recorded
from testing.helpers import artifact, ram_root, write_model

SECOND = 1_700_000_000.25  # the clock every push of a same-second test reads


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
  assert recorded(pushed) == f"pushed to {version}"


def test_an_interrupted_copy_leaves_no_loadable_version(tmp_path, monkeypatch):
  real_copy = fileio.copy

  def copy_then_die(src, dst, *args, **kwargs):
    if src.endswith("saved_model.pb"):
      raise KeyboardInterrupt("killed mid-copy")
    return real_copy(src, dst, *args, **kwargs)

  monkeypatch.setattr(fileio, "copy", copy_then_die)
  with pytest.raises(KeyboardInterrupt):
    _push(tmp_path)
  # Nothing TF Serving would load: the failed push removed its staging copy.
  assert os.listdir(tmp_path / "serving") == []
  monkeypatch.setattr(fileio, "copy", real_copy)
  _push(tmp_path)  # the next push lands whole
  assert len([d for d in os.listdir(tmp_path / "serving") if d.isdigit()]) == 1


def test_unblessed_model_is_not_pushed(tmp_path):
  pushed = _push(tmp_path, blessed=0)
  assert not (tmp_path / "serving").exists()
  assert pushed.get_int_custom_property("pushed") == 0
  assert recorded(pushed) == "nothing pushed"


def _push_model(root, base, graph):
  """Pushes a blessed model whose files hold `graph`, with artifact URIs
  under `root`, to the base folder `base`; returns the PushedModel."""
  name = graph.decode()
  model = artifact(standard_artifacts.Model, f"{root}/model-{name}")
  write_model(model.uri, {"saved_model.pb": graph,
                          "variables/variables.index": graph + b" index"})
  blessing = artifact(standard_artifacts.ModelBlessing, f"{root}/blessing")
  blessing.set_int_custom_property("blessed", 1)
  pushed = artifact(standard_artifacts.PushedModel, f"{root}/pushed-{name}")
  atomic.Executor().Do(
      {"model": [model], "model_blessing": [blessing]},
      {"pushed_model": [pushed]},
      {"push_destination": proto_utils.proto_to_json(
          pusher_pb2.PushDestination(
              filesystem=pusher_pb2.PushDestination.Filesystem(
                  base_directory=base)))})
  return pushed


def _read(path):
  with fileio.open(path, "rb") as f:
    return f.read()


def _assert_holds(folder, graph):
  assert _read(f"{folder}/saved_model.pb") == graph
  assert _read(f"{folder}/variables/variables.index") == graph + b" index"


@pytest.mark.parametrize("destination", ["local", "ram"])
def test_artifacts_on_ram(tmp_path, destination):
  """Model and PushedModel URIs on ram:// (as gs:// on Vertex): copied with
  TFX fileio; a local destination still gets the atomic rename."""
  root = ram_root("atomic-pusher")
  base = str(tmp_path / "serving") if destination == "local" else \
      f"{root}/serving"
  pushed = _push_model(root, base, b"graph")
  version = pushed.get_string_custom_property("pushed_version")
  assert pushed.get_string_custom_property("pushed_destination") == \
      f"{base}/{version}"
  assert fileio.listdir(base) == [version]
  for folder in (f"{base}/{version}", pushed.uri):
    _assert_holds(folder, b"graph")


@pytest.fixture
def same_second(monkeypatch):
  """The pusher's clock stops: every push reads the same second."""
  monkeypatch.setattr(atomic, "time", types.SimpleNamespace(
      time=lambda: SECOND))


def _assert_own_versions(base, pushes):
  """pushes: {graph: PushedModel}. Each push is recorded under its own
  version, which holds its own model, whole; nothing else is in base."""
  versions = {graph: pushed.get_string_custom_property("pushed_version")
              for graph, pushed in pushes.items()}
  first = int(SECOND)
  assert sorted(versions.values()) == [str(first + i)
                                       for i in range(len(pushes))]
  assert sorted(fileio.listdir(base)) == sorted(versions.values())
  for graph, pushed in pushes.items():
    assert pushed.get_int_custom_property("pushed") == 1
    destination = pushed.get_string_custom_property("pushed_destination")
    assert destination == f"{base}/{versions[graph]}"
    _assert_holds(destination, graph)


@pytest.mark.parametrize("destination", ["local", "ram"])
def test_pushes_within_one_second_each_get_a_version(tmp_path, same_second,
                                                      destination):
  """TFX skipped the copy of the second push but recorded it, under the
  first one's version."""
  root = ram_root("same-second")
  base = str(tmp_path / "serving") if destination == "local" else \
      f"{root}/serving"
  _assert_own_versions(base, {graph: _push_model(root, base, graph)
                              for graph in (b"first", b"second")})


def test_pushes_from_two_threads_at_once_each_get_a_version(tmp_path,
                                                            same_second):
  base = str(tmp_path / "serving")
  start = threading.Barrier(2)
  pushes, errors = {}, []

  def push(graph):
    start.wait()
    try:
      pushes[graph] = _push_model(str(tmp_path), base, graph)
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=push, args=(graph,))
             for graph in (b"one", b"two")]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert errors == []
  _assert_own_versions(base, pushes)


def test_a_version_published_during_the_push_is_left_alone(tmp_path,
                                                          same_second,
                                                          monkeypatch):
  """Another push publishes the chosen version between the check and the
  rename: the rename fails instead of replacing it, and this push takes the
  next version."""
  base = tmp_path / "serving"
  rival = base / str(int(SECOND))
  real_rename = os.rename

  def rival_publishes_first(src, dst):
    if dst == str(rival) and not rival.exists():
      rival.mkdir(parents=True)
      (rival / "saved_model.pb").write_bytes(b"rival")
    return real_rename(src, dst)

  monkeypatch.setattr(os, "rename", rival_publishes_first)
  pushed = _push_model(str(tmp_path), str(base), b"mine")
  assert (rival / "saved_model.pb").read_bytes() == b"rival"
  assert os.listdir(rival) == ["saved_model.pb"]
  assert pushed.get_string_custom_property("pushed_version") == \
      str(int(SECOND) + 1)
  _assert_holds(pushed.get_string_custom_property("pushed_destination"),
                b"mine")
  assert sorted(os.listdir(base)) == [str(int(SECOND)), str(int(SECOND) + 1)]
