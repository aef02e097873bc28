"""The input data folder (--data): listing, fingerprinting and reading it.

The one place that touches the input folder's files. A gs:// folder goes
through tf.io.gfile. A local one goes through os: tf.io.gfile.listdir and
walk crash on a file name that isn't UTF-8 and follow symlink loops, the
symlink checks need lstat and realpath, and tf.io.gfile reads contend with
each other across the decode pool (bench/RESULTS.md 11). Artifact URIs never
come here: they go through tf.io.gfile in the executor.
"""
import hashlib
import os
import posixpath
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf


def is_local(input_base: str) -> bool:
  return "://" not in input_base


def _walk_local(folder: str, rel: str, chain: frozenset, skip: frozenset,
                real_base: str) -> Iterator[Tuple[str, bool]]:
  """(path relative to the input base, whether to check it before reading).

  A regular file in a folder whose real path is inside the data folder
  needs no check; symlinks, special files and whatever is below a symlinked
  folder leading out do (check_local_file). Deciding that here, from the
  scandir entries and one realpath per folder, spares the decode threads a
  realpath per file.
  """
  real = os.path.realpath(folder)
  if real in chain:  # a symlink back to a folder being walked: a loop
    return
  inside = os.path.commonpath([real_base, real]) == real_base
  with os.scandir(folder) as entries:
    entries = sorted(entries, key=lambda e: e.name)
  for entry in entries:
    child = posixpath.join(rel, entry.name) if rel else entry.name
    if entry.is_dir():  # follows symlinked folders, as the driver's glob does
      if child not in skip:
        yield from _walk_local(entry.path, child, chain | {real}, skip,
                               real_base)
    else:
      yield child, not (inside and entry.is_file(follow_symlinks=False))


def _walk(input_base: str, root: str,
          skip: Sequence[str] = ()) -> Iterator[Tuple[str, bool]]:
  top = posixpath.join(input_base, root) if root else input_base
  if is_local(input_base):
    yield from _walk_local(top, root, frozenset(), frozenset(skip),
                           os.path.realpath(input_base))
    return
  for dirpath, dirnames, filenames in tf.io.gfile.walk(top):
    rel_dir = posixpath.relpath(dirpath.rstrip("/"), input_base.rstrip("/"))
    rel_dir = "" if rel_dir == "." else rel_dir
    # Pruned in place: gfile.walk (top-down) descends into what is left.
    dirnames[:] = [d for d in dirnames if posixpath.join(
        rel_dir, d.rstrip("/")) not in skip]
    for name in filenames:  # object stores have no symlinks to check
      yield posixpath.normpath(posixpath.join(rel_dir, name)), False


def walk(input_base: str, root: str, skip: Sequence[str] = ()) -> Iterator[str]:
  """Every file below input_base/root, as paths relative to input_base.

  skip: folders (relative to input_base) not to enter.
  Local folders are walked with os.scandir: tf.io.gfile.walk crashes on a
  name that isn't UTF-8 and follows symlink loops until the path is too long.
  Local names that aren't UTF-8 come back surrogate-escaped (os.fsencode
  restores them). Object stores (gs://) have neither problem.
  """
  for rel, _ in _walk(input_base, root, skip):
    yield rel


def shown(rel: str) -> Tuple[str, str]:
  """(rel as UTF-8 text, problem with the name or "")."""
  try:
    rel.encode("utf-8")
    return rel, ""
  except UnicodeEncodeError:  # Beam, JSON and tf.Example need UTF-8 text
    return (os.fsencode(rel).decode("utf-8", "backslashreplace"),
            "file name is not valid UTF-8; rename it")


class Listed(NamedTuple):
  """A file to decode, as listed when the pipeline is built."""
  path: str      # relative to input_base, UTF-8 text
  problem: str   # with its name ("" if none)
  check: bool    # a local symlink or special file: check_local_file first


def list_files(input_base: str, root: str) -> List[Listed]:
  """Every file below input_base/root, sorted by path."""
  return sorted(Listed(*shown(rel), check)
                for rel, check in _walk(input_base, root))


def input_fingerprint(input_base: str) -> str:
  """Changes when any file under input_base is added, removed, renamed or
  modified: those in no split are listed as rejected, so they count too.

  Used by the driver instead of TFX's, which stats `*/*` only (so misses
  nested files and class moves that keep size and mtime) and crashes on a
  dangling symlink. Symlinks are lstat-ed and their targets named.
  """
  digest = hashlib.sha256()
  count = 0
  for rel in walk(input_base, ""):
    path = posixpath.join(input_base, rel)
    if not is_local(input_base):
      info = tf.io.gfile.stat(path)
      facts = (info.length, info.mtime_nsec, "")
    else:
      info = os.lstat(path)
      target = os.readlink(path) if os.path.islink(path) else ""
      facts = (info.st_size, info.st_mtime_ns, target)
    digest.update(os.fsencode(rel) + repr(facts).encode() + b"\0")
    count += 1
  return f"files:{count},sha256:{digest.hexdigest()}"


def class_folders(input_base: str, root: str) -> List[str]:
  top = posixpath.join(input_base, root) if root else input_base
  if not is_local(input_base):
    names = [d.rstrip("/") for d in tf.io.gfile.listdir(top)]
  else:  # os.listdir: tf.io.gfile.listdir crashes on a name that isn't UTF-8
    names = [shown(d)[0] for d in os.listdir(top)]
  return sorted(d for d in names if not d.startswith(".")
                and tf.io.gfile.isdir(posixpath.join(top, d)))


def check_local_file(path: str, real_base: str) -> None:
  """Raises ValueError for a symlink the pipeline can't track, or a non-file."""
  if not os.path.exists(path):
    raise ValueError(f"dangling symlink (to {os.readlink(path)}, which does "
                     "not exist)")
  real = os.path.realpath(path)
  if os.path.commonpath([real_base, real]) != real_base:
    raise ValueError(f"symlink to {real}, outside the data folder: the "
                     "pipeline can't track changes to it; copy the file in")
  if not os.path.isfile(real):
    raise ValueError("not a regular file (a FIFO, socket or device)")


def real_base(input_base: str) -> Optional[str]:
  """The local folder's real path, for check_local_file; None for gs://
  (object stores have no symlinks)."""
  return os.path.realpath(input_base) if is_local(input_base) else None


def read_file(input_base: str, listed: Listed,
              base: Optional[str]) -> bytes:
  """The bytes of a listed file; base: real_base(input_base).

  Raises ValueError (a symlink the pipeline can't track, a non-file) or
  OSError / tf.errors.OpError (unreadable)."""
  path = posixpath.join(input_base, listed.path)
  if base is None:
    with tf.io.gfile.GFile(path, "rb") as f:
      return f.read()
  if listed.check:
    check_local_file(path, base)
  with open(path, "rb") as f:
    return f.read()
