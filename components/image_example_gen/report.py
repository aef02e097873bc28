"""The ingest report: every file's outcome, merged into rejected.jsonl and
summary.json, and the dataset-level checks on it.

Every file under the data folder is accounted for, so ingested + rejected =
files seen: files outside the split roots (test/, loose files, eval/ beside
validation/) are rejections too (unread_files). Dataset-level problems (fewer
than two classes, a class folder without a usable image, a class only in
eval) fail the run, naming the folder and the fix (check_dataset).

No Beam and no TFX here; report folders may be remote (tf.io.gfile).
"""
import collections
import json
import posixpath
from typing import Any, Dict, List, Sequence, Tuple

import tensorflow as tf

import tasks
from components.image_example_gen import input_folder
from components.image_example_gen.ingest import EVAL_DIRS
from trainer.text import escape

REJECTED_FILE = "rejected.jsonl"
SUMMARY_FILE = "summary.json"
# Where the outcome lines of the decode workers go, in the report folder,
# before write_report merges them.
OUTCOMES_DIR = "_outcomes"


class DatasetError(ValueError):
  """The image folder as a whole can't train a classifier."""



def unread_files(input_base: str,
                 split_roots: Dict[str, str]) -> List[Dict[str, Any]]:
  """Rejection outcomes for the files outside every split root.

  split_roots: split name -> root (`{"train": "train", "eval":
  "validation"}`). A flat folder (root "") has none: its walk sees every
  file. In the split layout, test/, other folders, loose files and eval/
  beside validation/ would otherwise be silently skipped; one rejection per
  file keeps seen = ingested + rejected true of the whole data folder.
  """
  roots = set(split_roots.values())
  if "" in roots:
    return []
  read = ", ".join(f"{root}/ ({split})" for split, root in split_roots.items())
  eval_used = sorted(roots & set(EVAL_DIRS))
  outcomes = []
  for rel, problem, _ in input_folder.list_files(input_base, "", skip=roots):
    top, _, rest = rel.partition("/")
    if problem:  # as in a split: its name, or a symlinked folder leading out
      reason = problem
    elif top.startswith("."):
      reason = "hidden file or folder (name starts with '.')"
    elif not rest:
      reason = (f"loose file at the top of the data folder, not in a split "
                f"folder; this run reads {read}")
    elif top in EVAL_DIRS and eval_used:
      reason = (f"{top}/ is not read: {eval_used[0]}/ is the eval split "
                f"({'/ is preferred to '.join(EVAL_DIRS)}/ when both exist); "
                f"merge {top}/ into {eval_used[0]}/ to use it")
    else:
      reason = (f"{top}/ is not a split folder this run reads ({read}); move "
                "its images into one of them to use them")
    outcomes.append({"path": rel, "class": None, "split_root": None,
                     "status": "rejected", "reason": reason,
                     "unread": top if rest else ""})
  return outcomes



def _read_json_lines(pattern: str) -> List[Dict[str, Any]]:
  rows = []
  for path in sorted(tf.io.gfile.glob(pattern)):
    with tf.io.gfile.GFile(path) as f:
      rows.extend(json.loads(line) for line in f if line.strip())
  return rows


def write_report(report_dir: str, folders: List[str],
                 split_names: Sequence[str],
                 unread: Sequence[Dict[str, Any]] = (),
                 rows: Sequence[Dict[str, Any]] = ()) -> Dict[str, Any]:
  """Merges the Beam shards into rejected.jsonl and summary.json (see
  summarize); returns the summary."""
  outcomes = _read_json_lines(posixpath.join(report_dir, OUTCOMES_DIR, "*"))
  summary, rejected = summarize(outcomes + list(unread) + list(rows),
                                folders, split_names, unread)
  with tf.io.gfile.GFile(posixpath.join(report_dir, REJECTED_FILE), "w") as f:
    # One write, even when empty: GFile creates the file on first write.
    f.write("".join(json.dumps({"path": r["path"], "reason": r["reason"]}) + "\n"
                    for r in rejected))
  with tf.io.gfile.GFile(posixpath.join(report_dir, SUMMARY_FILE), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
  tf.io.gfile.rmtree(posixpath.join(report_dir, OUTCOMES_DIR))
  return summary


def summarize(outcomes: Sequence[Dict[str, Any]], folders: List[str],
              split_names: Sequence[str],
              unread: Sequence[Dict[str, Any]] = ()
              ) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
  """(summary, rejected outcomes by path) of every file's outcome.

  folders: every class folder found ("<split root>/<class>"), so an empty
  one shows up with zero images. split_names: the output splits, so an
  empty one shows up with zero examples. unread: the outcomes (among
  `outcomes`) of the files outside every split (unread_files); rejected rows
  of a labels CSV are outcomes too.
  """
  rejected = sorted((o for o in outcomes if o["status"] == "rejected"),
                    key=lambda o: o["path"])
  per_class = {f: {"ingested": 0, "rejected": 0} for f in folders}
  for o in outcomes:
    if o["class"] is not None:
      key = f"{o['split_root']}/{o['class']}".lstrip("/")
      per_class.setdefault(key, {"ingested": 0, "rejected": 0})
      per_class[key][o["status"]] += 1
  # Identical files (copies, links) by content; a hash split keeps each group
  # in one split, but a group spanning classes is a label conflict.
  groups = collections.defaultdict(list)
  for o in outcomes:
    if o["status"] == "ingested":
      groups[o["sha256"]].append(o)
  duplicates = sorted(({"paths": sorted(o["path"] for o in group),
                        "classes": sorted({o["class"] for o in group})}
                       for group in groups.values() if len(group) > 1),
                      key=lambda d: d["paths"])
  per_split = collections.Counter(o["split"] for o in outcomes
                                  if o["status"] == "ingested")
  summary = {
      "seen": len(outcomes),
      "ingested": sum(o["status"] == "ingested" for o in outcomes),
      "rejected": len(rejected),
      # One example per ingested file, in the split its outcome names.
      "splits": {name: per_split[name] for name in split_names},
      "classes": dict(sorted(per_class.items())),
      "normalized": dict(sorted(collections.Counter(
          o["normalized"] for o in outcomes
          if o["status"] == "ingested" and o["normalized"]).items())),
      "duplicates": duplicates,
      # Files in no split, per top-level folder ("": loose files).
      "not_read": dict(sorted(collections.Counter(
          o["unread"] for o in unread).items())),
  }
  return summary, rejected


def summary_line(summary: Dict[str, Any]) -> str:
  """'24 ingested, 0 rejected (16 train, 8 eval)': the step's result."""
  splits = ", ".join(f"{n:,} {split}" for split, n in sorted(
      summary.get("splits", {}).items(), reverse=True))
  return (f"{summary['ingested']:,} ingested, {summary['rejected']:,} rejected"
          + (f" ({splits})" if splits else ""))


def check_dataset(summary: Dict[str, Any], input_base: str,
                  roots: Sequence[str] = ("",), task: str = "",
                  csv: bool = False) -> None:
  """Fails on data that can't train a model of `task` (its name; "": the
  default task), naming folder and fix.

  roots: the split roots, the training one first (one "" for a flat folder).
  Folder names are printed escaped (trainer.text.escape).
  """
  input_base = escape(input_base)
  if summary["ingested"] == 0:
    seen = (f"{summary['seen']} files seen, all rejected; see the rejected "
            "output" if summary["seen"] else "no files found")
    raise DatasetError(
        f"no usable image under {input_base} ({seen}). Put JPEG or PNG files "
        "in <data>/<class>/ folders, or name them in the labels CSV.")
  kind = tasks.named(task)
  problem = kind.dataset_problem(summary, input_base, roots)
  if problem:
    raise DatasetError(problem)
  fix = ("add images or rows, or change the split ratio or the CSV's split "
         "column" if csv else "add images or change the split ratio")
  for split, n in summary["splits"].items():
    if n == 0:
      raise DatasetError(
          f"split '{split}' got no examples from {input_base}: {fix}.")
