"""Labels from a CSV: one row per image, keyed by its path under the data
folder, with a target column and an optional split column.

Read through tf.io.gfile (the CSV may be on gs://). Problems with the file as
a whole (encoding, delimiter, missing columns) raise LabelsError at once,
naming the file, the row and the fix; problems with single rows (duplicates,
empty or non-numeric regression targets, unknown splits) become per-row
rejections, so every row is either used or listed with a reason.
"""
import csv
import dataclasses
import hashlib
import io
import math
from typing import Dict, List, Optional, Tuple

import tensorflow as tf

PATH_COLUMNS = ("image", "path", "file", "filename")  # accepted, in this order
SPLIT_COLUMN = "split"
TRAIN_SPLITS = ("train",)
EVAL_SPLITS = ("validation", "eval")
TASKS = ("auto", "classification", "regression")


class LabelsError(ValueError):
  """The labels CSV cannot be used; the message says where and how to fix."""


@dataclasses.dataclass(frozen=True)
class Row:
  number: int            # 1-based line number in the file (header is 1)
  path: str              # relative to the data folder, '/'-separated
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
  task: str                               # classification | regression
  # Images whose (first) row was rejected: path -> that row's reason.
  rejected_paths: Dict[str, str] = dataclasses.field(default_factory=dict)

  def value(self, row):
    """The target as stored: float for regression, str for classification."""
    return float(row.target) if self.task == "regression" else row.target


def _is_number(text):
  try:
    return math.isfinite(float(text))
  except ValueError:
    return False


def read_header(path):
  """(columns, text) of the CSV; LabelsError for encoding or delimiter."""
  if not tf.io.gfile.exists(path):
    raise LabelsError(f"--labels: {path} does not exist; give the CSV of "
                      "image paths and targets")
  with tf.io.gfile.GFile(path, "rb") as f:
    raw = f.read()
  try:
    text = raw.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b"\n") + 1
    raise LabelsError(f"--labels: {path} row {line} is not UTF-8 text; save "
                      "the file as UTF-8 CSV") from e
  header = next(csv.reader(io.StringIO(text)), None)
  if not header:
    raise LabelsError(f"--labels: {path} is empty; its first row must name "
                      f"the columns ({'/'.join(PATH_COLUMNS)}, the target, "
                      "optionally split)")
  if len(header) == 1 and any(d in header[0] for d in ";\t|"):
    raise LabelsError(f"--labels: {path} row 1 has one column "
                      f"{header[0]!r}: the file is not comma-separated; save "
                      "it as CSV with commas")
  return [h.strip() for h in header], text


def read_labels(path, target=None, task="auto"):
  """Parses the whole CSV; see the module docstring."""
  if task not in TASKS:
    raise LabelsError(f"--task: {task!r}; choose one of {', '.join(TASKS)}")
  columns, text = read_header(path)
  path_column = next((c for c in PATH_COLUMNS if c in columns), None)
  if path_column is None:
    raise LabelsError(f"--labels: {path} row 1 has no image column; name the "
                      f"column of image paths one of {', '.join(PATH_COLUMNS)}"
                      f" (columns: {', '.join(columns)})")
  others = [c for c in columns if c not in (path_column, SPLIT_COLUMN)]
  if target is None:
    if len(others) != 1:
      raise LabelsError(f"--target: {path} has {len(others)} candidate target "
                        f"columns ({', '.join(others) or 'none'}); name one "
                        "with --target")
    target = others[0]
  elif target not in columns:
    raise LabelsError(f"--target: {path} has no column {target!r} (columns: "
                      f"{', '.join(columns)})")
  reader = csv.reader(io.StringIO(text))
  next(reader)
  index = {c: columns.index(c) for c in columns}
  rows, rejected, seen = {}, [], {}
  for number, values in enumerate(reader, start=2):
    if not values or all(not v.strip() for v in values):
      continue
    if len(values) != len(columns):
      raise LabelsError(f"--labels: {path} row {number} has {len(values)} "
                        f"fields, the header {len(columns)}; quote fields that "
                        "contain commas")
    image = values[index[path_column]].strip().replace("\\", "/").lstrip("./")
    where = f"{path}:{number}"
    if not image:
      rejected.append((where, f"row {number}: empty {path_column}"))
      continue
    if image in seen:
      rejected.append((where, f"row {number}: duplicate of row {seen[image]} "
                       f"for {image}; the first row is used"))
      continue
    seen[image] = number
    split = (values[index[SPLIT_COLUMN]].strip().lower() or None) \
        if SPLIT_COLUMN in index else None
    rows[image] = Row(number, image, values[index[target]].strip(), split)
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


NUMERIC_SHARE = 0.9  # of non-empty targets, for "auto" to mean regression


def infer_task(rows, task="auto"):
  """Numbers in (nearly) every non-empty target: regression, whose few
  non-numeric targets are then rejected rows; otherwise classification."""
  if task != "auto":
    return task
  targets = [r.target for r in rows if r.target]
  numeric = [t for t in targets if _is_number(t)]
  return "regression" if targets and len(numeric) >= NUMERIC_SHARE * len(
      targets) else "classification"


def _row_problem(row, task):
  if not row.target:
    return f"row {row.number}: empty target for {row.path}"
  if task == "regression" and not _is_number(row.target):
    return (f"row {row.number}: target {row.target!r} for {row.path} is not "
            "a number")
  if row.split is not None and row.split not in TRAIN_SPLITS + EVAL_SPLITS:
    return (f"row {row.number}: split {row.split!r} for {row.path} is not "
            f"used (train, {' or '.join(EVAL_SPLITS)})")
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
