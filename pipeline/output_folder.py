"""The --output folder: never the data folder, never a folder this pipeline
did not make, and one local run at a time.

Plain Python and sqlite3, no TensorFlow: PipelineConfig.validate runs the
checks before anything is written, and the local runner holds `lock` for the
whole run.
"""
import contextlib
import datetime
import errno
import fcntl
import json
import os
import pathlib
import shlex
import socket
import sqlite3
import sys
import time

from trainer.text import escape

# Written into the output folder on its first run: the folder is this
# pipeline's, so later runs may write there.
MARKER = ".resizer-pipeline-output"
# Held (flock) by the run using the folder; names that run.
LOCK = ".resizer-pipeline.lock"
# Tables every ML Metadata SQLite database has.
MLMD_TABLES = frozenset({"MLMDEnv", "Type", "Artifact", "Execution", "Context",
                         "Event"})
_SQLITE_HEADER = b"SQLite format 3\x00"


class OutputError(ValueError):
  """--output can't be used; the message names the folder and the fix."""


class OutputInUseError(OutputError):
  """Another process holds the output folder's lock."""


def _parts(path: str) -> tuple:
  """Comparable components: a local path's real path (symlinks resolved),
  a URI's scheme and path segments (object stores have no symlinks)."""
  if "://" in path:
    scheme, rest = path.split("://", 1)
    return (scheme + "://",) + tuple(p for p in rest.split("/") if p)
  return pathlib.PurePath(os.path.realpath(path)).parts


def check_apart(data: str, output: str) -> None:
  """Raises OutputError when --output is --data, inside it or contains it."""
  d, o = _parts(data), _parts(output)
  if o == d:
    where = "is the --data folder"
  elif o[:len(d)] == d:
    where = "is inside the --data folder"
  elif d[:len(o)] == o:
    where = "contains the --data folder"
  else:
    return
  raise OutputError(
      f"--output: {output} {where} {data}; a run would write its outputs "
      "among the images and read them back as images on the next run. Give "
      "an --output folder that is neither inside nor above the data folder")


def check_reusable(output: str) -> None:
  """Raises OutputError unless the local folder `output` is missing, empty,
  or an output folder of this pipeline. Reads, never writes: an ML Metadata
  database is recognised by its tables, opened read-only."""
  if not os.path.isdir(output):
    return
  try:
    names = set(os.listdir(output)) - {LOCK}
  except OSError as e:
    raise OutputError(f"--output: can't list {output} ({e.strerror}); give "
                      "a folder you can write to") from None
  if not names or MARKER in names:
    return
  db = os.path.join(output, "metadata.sqlite")
  if os.path.lexists(db):
    problem = _not_mlmd(db)
    if problem:
      raise OutputError(
          f"--output: {db} {problem}, yet a run would keep its ML Metadata "
          "records in it. Give a new or empty --output folder")
    if os.path.isdir(os.path.join(output, "pipeline_root")):
      return  # an output of a version of this pipeline before the marker
  shown = ", ".join(escape(n) for n in sorted(names)[:3])
  more = ", ..." if len(names) > 3 else ""
  raise OutputError(
      f"--output: {output} is not empty ({shown}{more}) and is not an output "
      f"folder of this pipeline (it has no {MARKER} file). Give a new or "
      "empty folder, or the --output of an earlier run")


def _not_mlmd(db: str) -> str:
  """Why `db` is not an ML Metadata SQLite database; "" when it is."""
  if os.path.islink(db) or not os.path.isfile(db):
    return "is not a regular file"
  try:
    with open(db, "rb") as f:
      header = f.read(100)
  except OSError as e:
    return f"can't be read ({e.strerror})"
  if not header.startswith(_SQLITE_HEADER):
    return "is not an SQLite database"
  if header[18:20] != b"\x01\x01":
    # Write-ahead-log mode, which ML Metadata does not use; even reading it
    # would create -wal and -shm files beside it.
    return "is an SQLite database that ML Metadata did not write"
  uri = pathlib.Path(os.path.abspath(db)).as_uri() + "?mode=ro"
  try:
    connection = sqlite3.connect(uri, uri=True, timeout=10)
    try:
      tables = {row[0] for row in connection.execute(
          "SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
      connection.close()
  except sqlite3.Error as e:
    return f"can't be read as an SQLite database ({e})"
  if not MLMD_TABLES <= tables:
    return "is an SQLite database without ML Metadata's tables"
  return ""


def mark(output: str) -> None:
  """Marks `output` as this pipeline's output folder (once)."""
  path = os.path.join(output, MARKER)
  if not os.path.lexists(path):
    with open(path, "x") as f:
      f.write("An output folder of resizer-pipeline: later runs may write "
              "here.\n")


@contextlib.contextmanager
def lock(output: str):
  """Holds the lock on the existing local folder `output` for the block.

  Raises OutputInUseError at once when another process holds it. The kernel
  releases a flock when its holder dies, so a killed run leaves no stale lock;
  the file itself stays, as deleting it would let two runs lock two files.
  """
  path = os.path.join(output, LOCK)
  try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
  except OSError as e:
    raise OutputError(f"--output: can't open the lock file {path} "
                      f"({e.strerror}); give another --output folder") from None
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise
      raise OutputInUseError(_in_use_message(output, fd)) from None
    try:
      os.ftruncate(fd, 0)
      os.pwrite(fd, json.dumps(_this_run()).encode(), 0)
      yield
    finally:
      os.ftruncate(fd, 0)  # the file names no run once this one is over
  finally:
    os.close(fd)


def _this_run() -> dict:
  return {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.datetime.now().astimezone().isoformat(
              timespec="seconds"),
          "command": shlex.join(getattr(sys, "orig_argv", sys.argv))}


def _in_use_message(output: str, fd: int) -> str:
  # The holder writes its details just after locking: wait for them briefly.
  holder = None
  for _ in range(20):
    try:
      holder = json.loads(os.pread(fd, 1 << 16, 0))
      break
    except ValueError:
      time.sleep(0.1)
  if isinstance(holder, dict):
    who = (f"pid {escape(holder.get('pid'))} on {escape(holder.get('host'))}, "
           f"started {escape(holder.get('started'))}, command: "
           f"{escape(holder.get('command'))}")
  else:
    who = f"its details are not in {os.path.join(output, LOCK)}"
  return (f"--output: {output} is in use by another run ({who}). Wait for "
          "that run to finish or stop it, or give another --output folder")
