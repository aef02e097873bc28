"""The input data folder (--data): listing, fingerprinting and reading it.

The one place that touches the input folder's files. A gs:// folder goes
through tf.io.gfile. A local one goes through os: tf.io.gfile.listdir and
walk crash on a file name that isn't UTF-8 and follow symlink loops, the
symlink checks need lstat and realpath, and tf.io.gfile reads contend with
each other across the decode pool. Artifact URIs never
come here: they go through tf.io.gfile in the executor.
"""
import hashlib
import os
import posixpath
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf

from trainer.text import label_problem


def is_local(input_base: str) -> bool:
  return "://" not in input_base


def outside(real: str, real_base: str) -> bool:
  """Whether the real path `real` is outside the data folder `real_base`."""
  return os.path.commonpath([real_base, real]) != real_base


def _folder_outside(real: str) -> str:
  # Walking it would list files the fingerprint can't track, one rejection
  # each; one entry names the folder instead.
  return (f"symlinked folder to {shown(real)[0]}, outside the data folder, "
          "not read; copy its files in")


class _Entry(NamedTuple):
  rel: str       # relative to the input base
  check: bool    # check_local_file before reading
  problem: str   # a symlinked folder leading out, not walked ("" if not)


def _walk_local(folder: str, rel: str, chain: frozenset, skip: frozenset,
                real_base: str) -> Iterator[_Entry]:
  """Regular files need no check: a folder is entered only when its real
  path is inside the data folder. Symlinks and special files do
  (check_local_file). Deciding that here, from the scandir entries and one
  realpath per folder, spares the decode threads a realpath per file.
  """
  real = os.path.realpath(folder)
  if real in chain:  # a symlink back to a folder being walked: a loop
    return
  with os.scandir(folder) as entries:
    entries = sorted(entries, key=lambda e: e.name)
  for entry in entries:
    child = posixpath.join(rel, entry.name) if rel else entry.name
    if entry.is_dir():  # follows symlinked folders, as the driver's glob does
      if child in skip:
        continue
      target = os.path.realpath(entry.path) if entry.is_symlink() else ""
      if target and outside(target, real_base):
        yield _Entry(child, True, _folder_outside(target))
      else:
        yield from _walk_local(entry.path, child, chain | {real}, skip,
                               real_base)
    else:
      yield _Entry(child, not entry.is_file(follow_symlinks=False), "")


def _walk(input_base: str, root: str,
          skip: Sequence[str] = ()) -> Iterator[_Entry]:
  top = posixpath.join(input_base, root) if root else input_base
  if is_local(input_base):
    base = os.path.realpath(input_base)
    if root and outside(os.path.realpath(top), base):  # a split root link
      yield _Entry(root, True, _folder_outside(os.path.realpath(top)))
      return
    yield from _walk_local(top, root, frozenset(), frozenset(skip), base)
    return
  for dirpath, dirnames, filenames in tf.io.gfile.walk(top):
    rel_dir = posixpath.relpath(dirpath.rstrip("/"), input_base.rstrip("/"))
    rel_dir = "" if rel_dir == "." else rel_dir
    # Pruned in place: gfile.walk (top-down) descends into what is left.
    dirnames[:] = [d for d in dirnames if posixpath.join(
        rel_dir, d.rstrip("/")) not in skip]
    for name in filenames:  # object stores have no symlinks to check
      yield _Entry(posixpath.normpath(posixpath.join(rel_dir, name)), False,
                   "")


def walk(input_base: str, root: str, skip: Sequence[str] = ()) -> Iterator[str]:
  """Every file below input_base/root, as paths relative to input_base,
  and every local symlinked folder that leads outside it (not entered).

  skip: folders (relative to input_base) not to enter.
  Local folders are walked with os.scandir: tf.io.gfile.walk crashes on a
  name that isn't UTF-8 and follows symlink loops until the path is too long.
  Local names that aren't UTF-8 come back surrogate-escaped (os.fsencode
  restores them). Object stores (gs://) have neither problem.
  """
  for entry in _walk(input_base, root, skip):
    yield entry.rel


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
  problem: str   # with its name, or a folder not walked ("" if none)
  check: bool    # a local symlink or special file: check_local_file first


def list_files(input_base: str, root: str,
               skip: Sequence[str] = ()) -> List[Listed]:
  """Every entry walk() yields, sorted by path; a symlinked folder leading
  out of the data folder comes with its problem."""
  listed = []
  for rel, check, problem in _walk(input_base, root, skip):
    text, name_problem = shown(rel)
    listed.append(Listed(text, name_problem or problem, check))
  return sorted(listed)


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
  """The folders below input_base/root whose images get their name as label:
  not hidden, named as a label can be (trainer.text.label_problem), and
  walked (not a symlink leading out of the data folder)."""
  top = posixpath.join(input_base, root) if root else input_base
  if not is_local(input_base):
    names = [d.rstrip("/") for d in tf.io.gfile.listdir(top)]
    return sorted(d for d in names if not d.startswith(".")
                  and not label_problem(d)
                  and tf.io.gfile.isdir(posixpath.join(top, d)))
  base = os.path.realpath(input_base)
  # os.listdir: tf.io.gfile.listdir crashes on a name that isn't UTF-8
  return sorted(shown(d)[0] for d in os.listdir(top)
                if not d.startswith(".") and not label_problem(d)
                and os.path.isdir(os.path.join(top, d))
                and not outside(os.path.realpath(os.path.join(top, d)), base))


def check_local_file(path: str, real_base: str) -> None:
  """Raises ValueError for a symlink the pipeline can't track, or a non-file."""
  if not os.path.exists(path):
    raise ValueError(f"dangling symlink (to {os.readlink(path)}, which does "
                     "not exist)")
  real = os.path.realpath(path)
  if outside(real, real_base):
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
