"""--output: one run at a time, never the data folder, never someone else's
folder, and nothing written before the run may go ahead."""
import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import cli, output_folder
from pipeline.config import ConfigError, PipelineConfig, VertexConfig
from testing.helpers import no_network, tiny_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A process that holds the lock until its stdin closes; one line, so the
# command line the lock file names reads the same after the CLI's message.
HOLD = ("import sys; from pipeline import output_folder; "
        "held = output_folder.lock(sys.argv[1]); held.__enter__(); "
        "print('held', flush=True); sys.stdin.read()")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  path = tmp_path_factory.mktemp("data")
  tiny_dataset(path, per_class=2)
  return path


@pytest.fixture
def unpaired(tmp_path):
  """Data whose problem shows only once the DAG is built, after the lock:
  a run on it gets past the output checks, then stops (exit 2) before any
  component runs."""
  path = tmp_path / "unpaired"
  tiny_dataset(path / "train", per_class=1)
  return path


def _run(data, out, capsys):
  """(exit status, the one line printed to stderr)."""
  rc = cli.main(["run", "--data", str(data), "--output", str(out),
                 "--backbone", "tiny_cnn", "--input-size", "64",
                 "--target-size", "32", "--epochs", "1"])
  err = capsys.readouterr().err.strip()
  return rc, err


def _got_past_the_lock(rc, err):
  return rc == 2 and "has train/ but not its partner" in err


def _hold(out):
  """A process holding out's lock."""
  proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT},
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True)
  assert proc.stdout.readline() == "held\n"
  return proc


def test_a_second_run_fails_at_once_and_names_the_first(unpaired, tmp_path,
                                                        capsys):
  out = tmp_path / "out"
  out.mkdir()
  holder = _hold(out)
  try:
    rc, err = _run(unpaired, out, capsys)
    assert rc == 2 and len(err.splitlines()) == 1
    command = shlex.join([sys.executable, "-c", HOLD, str(out)])
    assert (f"error: --output: {out} is in use by another run (pid "
            f"{holder.pid} on {socket.gethostname()}, started ") in err
    assert f", command: {command}). Wait for that run to finish" in err
    assert os.listdir(out) == [output_folder.LOCK]  # nothing of this run's
  finally:
    holder.stdin.close()  # the holder ends normally, releasing the lock
    assert holder.wait(timeout=60) == 0
  # Released: the next run proceeds, and releases it too when it fails.
  assert _got_past_the_lock(*_run(unpaired, out, capsys))
  assert (out / output_folder.LOCK).read_bytes() == b""  # names no run
  with output_folder.lock(str(out)):
    pass


def test_a_killed_run_leaves_no_lock_behind(unpaired, tmp_path, capsys):
  out = tmp_path / "out"
  out.mkdir()
  holder = _hold(out)
  rc, err = _run(unpaired, out, capsys)
  assert rc == 2 and f"in use by another run (pid {holder.pid} " in err
  holder.send_signal(signal.SIGKILL)
  assert holder.wait(timeout=60) == -signal.SIGKILL
  assert _got_past_the_lock(*_run(unpaired, out, capsys))


def test_the_lock_excludes_a_second_holder_in_the_same_process(tmp_path):
  with output_folder.lock(str(tmp_path)):
    with pytest.raises(output_folder.OutputInUseError,
                       match=rf"\(pid {os.getpid()} on "):
      with output_folder.lock(str(tmp_path)):
        pass


@pytest.mark.parametrize("layout, where", [
    ("same", "is the --data folder"),
    ("inside", "is inside the --data folder"),
    ("containing", "contains the --data folder"),
    ("link", "is the --data folder"),
    ("inside_link", "is inside the --data folder"),
])
def test_output_overlapping_the_data_is_refused(tmp_path, capsys, layout,
                                                where):
  data = tmp_path / "top" / "images"
  tiny_dataset(data, per_class=1)
  (tmp_path / "link").symlink_to(data)
  out = {"same": data, "inside": data / "out", "containing": tmp_path / "top",
         "link": tmp_path / "link",
         "inside_link": tmp_path / "link" / "out"}[layout]
  before = sorted(str(p) for p in tmp_path.rglob("*"))
  rc, err = _run(data, out, capsys)
  assert rc == 2 and len(err.splitlines()) == 1
  assert f"error: --output: {out} {where} {data}; a run would write" in err
  assert "Give an --output folder that is neither inside nor above" in err
  assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def _vertex_config(data, output):
  config = PipelineConfig(output=output, vertex=VertexConfig(project="p",
                                                             image="i"))
  config.data.path = data
  config.data.layout = "flat"
  return config


@pytest.mark.parametrize("data, output, refused", [
    ("gs://b/images", "gs://b/images", True),
    ("gs://b/images/", "gs://b/images/run", True),
    ("gs://b/images", "gs://b", True),
    ("gs://b/img", "gs://b/images", False),  # a string prefix, not a folder
    ("gs://b/images", "gs://c/images", False),
])
def test_compile_refuses_output_overlapping_the_data(data, output, refused):
  """Compiling is offline: gs:// paths are compared component by component."""
  config = _vertex_config(data, output)
  with no_network() as attempts:
    if refused:
      with pytest.raises(ConfigError, match=r"^--output: .* the --data "
                         "folder"):
        config.validate()
    else:
      config.validate()
  assert attempts == []


def _mlmd(path):
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(path)
  metadata_store.MetadataStore(config)


def _other_sqlite(path, journal_mode="delete"):
  connection = sqlite3.connect(path)
  connection.execute(f"PRAGMA journal_mode = {journal_mode}")
  connection.execute("CREATE TABLE notes (text)")
  connection.execute("INSERT INTO notes VALUES ('mine')")
  connection.commit()
  connection.close()


@pytest.mark.parametrize("make, message", [
    (lambda out: (out / "notes.txt").write_text("mine"),
     "is not empty (notes.txt) and is not an output folder of this pipeline"),
    (lambda out: (out / "metadata.sqlite").write_bytes(b"mine, not SQLite"),
     "metadata.sqlite is not an SQLite database, yet a run would keep its "
     "ML Metadata records in it"),
    (lambda out: _other_sqlite(out / "metadata.sqlite"),
     "metadata.sqlite is an SQLite database without ML Metadata's tables"),
    # Even reading it would create -wal and -shm files beside it.
    (lambda out: _other_sqlite(out / "metadata.sqlite", "wal"),
     "metadata.sqlite is an SQLite database that ML Metadata did not write"),
    # pipeline_root/ alone does not make an old output.
    (lambda out: (out / "pipeline_root").mkdir() or
     _other_sqlite(out / "metadata.sqlite"),
     "metadata.sqlite is an SQLite database without ML Metadata's tables"),
    (lambda out: (out / "pipeline_root").mkdir(),
     "is not empty (pipeline_root) and is not an output folder"),
])
def test_a_folder_this_pipeline_did_not_make_is_refused_untouched(
    data, tmp_path, capsys, make, message):
  out = tmp_path / "out"
  out.mkdir()
  make(out)
  before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
  names = sorted(os.listdir(out))
  rc, err = _run(data, out, capsys)
  assert rc == 2 and len(err.splitlines()) == 1
  assert f"error: --output: {out}" in err and message in err
  assert "Give a new or empty" in err
  assert sorted(os.listdir(out)) == names  # no journal, lock or marker
  assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_an_output_of_an_earlier_version_is_accepted_and_marked(
    unpaired, tmp_path, capsys):
  """pipeline_root/ and an ML Metadata database, no marker: written by this
  pipeline before it had the marker."""
  out = tmp_path / "out"
  (out / "pipeline_root").mkdir(parents=True)
  _mlmd(out / "metadata.sqlite")
  db = (out / "metadata.sqlite").read_bytes()
  assert _got_past_the_lock(*_run(unpaired, out, capsys))
  assert (out / output_folder.MARKER).is_file()
  assert (out / "metadata.sqlite").read_bytes() == db
  assert _got_past_the_lock(*_run(unpaired, out, capsys))  # still accepted


def test_a_new_or_empty_folder_is_marked_and_then_accepted(unpaired, tmp_path,
                                                           capsys):
  for out in (tmp_path / "new", tmp_path / "empty"):
    if out.name == "empty":
      out.mkdir()
    assert _got_past_the_lock(*_run(unpaired, out, capsys))
    assert sorted(os.listdir(out)) == sorted([output_folder.LOCK,
                                              output_folder.MARKER])
    (out / "report").mkdir()  # what a run leaves
    assert _got_past_the_lock(*_run(unpaired, out, capsys))
