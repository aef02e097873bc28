"""The tasks the pipeline trains for, one module each, and how a run picks one.

A task object (tasks/base.py) owns everything that differs between tasks: the
label in a tf.Example and in Transform, the model's head, loss and metrics,
what TFMA measures, the paired test and the floor of both gates, and the words
of the report and the progress lines. Adding a task means adding one module
here and naming it in MODULES.

Importing this package loads no TensorFlow: the CLI lists tasks and their
settings before anything heavy is imported.
"""
import importlib
from typing import Iterable, Tuple

from tasks.base import Task

# The task modules, each defining TASK; the first is the default (what class
# folders label).
MODULES = ("tasks.classification", "tasks.regression")
AUTO = "auto"  # --task auto: inferred from the labels CSV's targets


def all_tasks() -> Tuple[Task, ...]:
  return tuple(importlib.import_module(m).TASK for m in MODULES)


def names() -> Tuple[str, ...]:
  return tuple(t.name for t in all_tasks())


def get(name: str) -> Task:
  """The task called `name`; ValueError naming the choices otherwise."""
  for task in all_tasks():
    if task.name == name:
      return task
  raise ValueError(f"unknown task {name!r}; choose one of "
                   f"{', '.join(names())}")


def default() -> Task:
  return importlib.import_module(MODULES[0]).TASK


def named(name: str) -> Task:
  """get(name), or the default task for "" (a parameter left unset)."""
  return get(name) if name else default()


def infer(targets: Iterable[str]) -> Task:
  """The task a labels CSV's target column asks for: the first task that
  claims the targets (e.g. numbers), else the default."""
  targets = [t for t in targets if t]
  return next((t for t in all_tasks() if t.claims(targets)), default())


def inference_help() -> str:
  """How --task auto decides, in words, for the CLI's help."""
  rules = [f"{t.claim_help}: {t.name}" for t in all_tasks() if t.claim_help]
  return "; ".join(rules + [f"otherwise {default().name}"])


def with_feature(feature_names: Iterable[str]) -> Task:
  """The task whose raw target feature is among `feature_names` (what the
  examples or their statistics hold)."""
  present = set(feature_names)
  for task in all_tasks():
    if task.raw_feature in present:
      return task
  raise ValueError(f"no task's target feature among {sorted(present)}; "
                   "expected one of "
                   f"{', '.join(t.raw_feature for t in all_tasks())}")
