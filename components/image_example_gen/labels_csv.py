"""Labels from a CSV: one row per image, keyed by its path under the data
folder, with a target column and an optional split column.

Read through tf.io.gfile (the CSV may be on gs://). Problems with the file as
a whole (encoding, delimiter, missing columns) raise LabelsError at once,
naming the file, the row and the fix; problems with single rows (duplicates,
empty targets or ones the task can't read (not a number, a class name that
can't be a label),
image paths that don't name a file under the data folder, unknown splits)
become per-row rejections, so every row is either used or listed with a
reason. Text from the file is escaped (trainer.text.escape) in every message.
"""
import csv
import dataclasses
import hashlib
import io
import itertools
import posixpath
import re
from typing import Dict, Iterator, List, Optional, Tuple

import tensorflow as tf

import tasks
from trainer.text import escape, label_problem

PATH_COLUMNS = ("image", "path", "file", "filename")  # accepted, in this order
SPLIT_COLUMN = "split"
TRAIN_SPLITS = ("train",)
EVAL_SPLITS = ("validation", "eval")
TASKS = (tasks.AUTO,) + tasks.names()


class LabelsError(ValueError):
  """The labels CSV cannot be used; the message says where and how to fix."""


@dataclasses.dataclass(frozen=True)
class Row:
  number: int            # 1-based row (record) number; the header is 1
  path: str              # relative to the data folder, normalised
  target: str            # as written
  split: Optional[str]   # "train" | "eval" | None (hash split); raw if unknown


@dataclasses.dataclass
class Labels:
  path: str
  path_column: str
  target_column: str
  has_split: bool
  rows: Dict[str, Row]                    # by image path
  rejected: List[Tuple[str, str]]         # (where, reason)
  task: str                               # the task's name (tasks/)
  # Images whose (first) row was rejected: path -> that row's reason.
  rejected_paths: Dict[str, str] = dataclasses.field(default_factory=dict)

  def value(self, row):
    """The target as the task stores it (a class name, a number)."""
    return tasks.get(self.task).parse_target(row.target)


# `gs:`, `http:`, `file:`, a Windows drive `C:`: RFC 3986's scheme syntax.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def image_path(text: str, column: str = "image") -> Tuple[str, str]:
  """(the path normalised, "") or ("", why it names no file under the data
  folder). Paths are relative and POSIX; they are checked, never rewritten
  beyond posixpath.normpath (`./a.png` and `sub/../a.png` are `a.png`)."""
  shown = f"{column} '{escape(text)}'"
  if not text:
    return "", f"empty {column}"
  scheme = _SCHEME.match(text)
  if scheme:
    return "", (f"{shown} starts with '{escape(scheme.group())}', a URL "
                "scheme or drive; give its path relative to the data folder")
  if "\\" in text:
    return "", f"{shown} contains '\\', not a separator here; use / separators"
  if text.startswith("/"):
    return "", (f"{shown} is an absolute path; give its path relative to the "
                "data folder")
  normal = posixpath.normpath(text)
  if normal == ".." or normal.startswith("../"):
    return "", (f"{shown} leads out of the data folder; give a path inside "
                "it")
  if normal == ".":
    return "", f"{shown} is the data folder itself, not an image"
  # Not "", "." or "..": what is left to reject is a control character.
  problem = label_problem(text, column)
  return ("", problem) if problem else (normal, "")


def _records(text: str, path: str) -> Iterator[Tuple[int, List[str]]]:
  """(row number, fields) of each record; LabelsError where the csv module
  can't read on (a bare carriage return, a huge field, a NUL before 3.11)."""
  reader = csv.reader(io.StringIO(text))
  for number in itertools.count(1):
    try:
      values = next(reader)
    except StopIteration:
      return
    except csv.Error as e:
      raise LabelsError(f"--labels: {escape(path)} row {number} is not "
                        f"readable CSV ({e}); fix that row: quote fields with "
                        "line breaks, close every quote, remove NUL "
                        "characters") from None
    yield number, values


def read_header(path):
  """(columns, text) of the CSV; LabelsError for encoding or delimiter."""
  shown = escape(path)
  if not tf.io.gfile.exists(path):
    raise LabelsError(f"--labels: {shown} does not exist; give the CSV of "
                      "image paths and targets")
  with tf.io.gfile.GFile(path, "rb") as f:
    raw = f.read()
  try:
    text = raw.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b"\n") + 1
    raise LabelsError(f"--labels: {shown} row {line} is not UTF-8 text; "
                      "save the file as UTF-8 CSV") from e
  _, header = next(_records(text, path), (1, []))
  if not header:
    raise LabelsError(f"--labels: {shown} is empty; its first row must name "
                      f"the columns ({'/'.join(PATH_COLUMNS)}, the target, "
                      "optionally split)")
  if len(header) == 1 and any(d in header[0] for d in ";\t|"):
    raise LabelsError(f"--labels: {shown} row 1 has one column "
                      f"'{escape(header[0])}': the file is not comma-"
                      "separated; save it as CSV with commas")
  return [h.strip() for h in header], text


def read_labels(path, target=None, task=tasks.AUTO):
  """Parses the whole CSV; see the module docstring."""
  if task not in TASKS:
    raise LabelsError(f"--task: {task!r}; choose one of {', '.join(TASKS)}")
  columns, text = read_header(path)
  shown = escape(path)
  path_column = next((c for c in PATH_COLUMNS if c in columns), None)
  if path_column is None:
    raise LabelsError(f"--labels: {shown} row 1 has no image column; name the "
                      f"column of image paths one of {', '.join(PATH_COLUMNS)}"
                      f" (columns: {_names(columns)})")
  others = [c for c in columns if c not in (path_column, SPLIT_COLUMN)]
  if target is None:
    if len(others) != 1:
      raise LabelsError(f"--target: {shown} has {len(others)} candidate "
                        f"target columns ({_names(others) or 'none'}); name "
                        "one with --target")
    target = others[0]
  elif target not in columns:
    raise LabelsError(f"--target: {shown} has no column '{escape(target)}' "
                      f"(columns: {_names(columns)})")
  records = _records(text, path)
  next(records)
  index = {c: columns.index(c) for c in columns}
  rows, rejected, seen = {}, [], {}
  for number, values in records:
    values = [_field(v) for v in values]
    if not any(values):
      continue
    if len(values) != len(columns):
      raise LabelsError(f"--labels: {shown} row {number} has {len(values)} "
                        f"fields, the header {len(columns)}; quote fields that "
                        "contain commas")
    image, problem = image_path(values[index[path_column]], path_column)
    where = f"{path}:{number}"
    if problem:
      rejected.append((where, f"row {number}: {problem}"))
      continue
    if image in seen:
      rejected.append((where, f"row {number}: duplicate of row {seen[image]} "
                       f"for {escape(image)}; the first row is used"))
      continue
    seen[image] = number
    split = (values[index[SPLIT_COLUMN]].lower() or None) \
        if SPLIT_COLUMN in index else None
    rows[image] = Row(number, image, values[index[target]], split)
  task = infer_task(rows.values(), task)
  rejected_paths = {}
  for image, row in list(rows.items()):
    reason = _row_problem(row, task)
    if reason:
      rejected.append((f"{path}:{row.number}", reason))
      rejected_paths[image] = reason
      del rows[image]
  return Labels(path, path_column, target, SPLIT_COLUMN in index, rows,
                rejected, task, rejected_paths)


def _field(value: str) -> str:
  # Spaces around a field are padding; any other character is kept, so a
  # control character is rejected rather than trimmed into another name.
  return value.strip(" ")


def _names(columns) -> str:
  return ", ".join(escape(c) for c in columns)


def infer_task(rows, task=tasks.AUTO):
  """The task's name: as given, else the one the targets ask for
  (tasks.infer: e.g. numbers in nearly every row)."""
  if task != tasks.AUTO:
    return task
  return tasks.infer(r.target for r in rows).name


def _row_problem(row, task):
  image = escape(row.path)
  if not row.target:
    return f"row {row.number}: empty target for {image}"
  problem = tasks.get(task).target_problem(row.target, image)
  if problem:
    return f"row {row.number}: {problem}"
  if row.split is not None and row.split not in TRAIN_SPLITS + EVAL_SPLITS:
    return (f"row {row.number}: split '{escape(row.split)}' for {image} is "
            f"not used (train, {' or '.join(EVAL_SPLITS)})")
  return ""


def split_of(row):
  """'train' | 'eval' | None (hash split) for a usable row."""
  if row.split is None:
    return None
  return "train" if row.split in TRAIN_SPLITS else "eval"


def content_hash(path):
  """sha256 of the CSV, or "" when it can't be read now (a gs:// file while
  compiling offline): the run reads it then."""
  if "://" in path and not path.startswith("ram://"):
    return ""
  with tf.io.gfile.GFile(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()
