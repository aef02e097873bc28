"""One TensorBoard log root per output folder, every run under it.

<root>/<run>/<model>/{train,validation}: a Trainer's Keras logs;
<root>/<run>/<model>: its hyper-parameters (HParams plugin) and final scores;
<root>/<run>/comparison: the run's paired comparison and decision, as text.

<run> names the pipeline run. Locally the runner names it at start (UTC time,
run_name()) and hands it to the Trainers through RUN_ENV: anything in their
custom_config would be part of TFX's cache key, and a cached Trainer must stay
cached. On Vertex it is the pipeline job's name (vertex_job_name()): the
Trainers read it from their model_run URI, ResultsReport gets the KFP
placeholder of the job's name (pipeline/config.py). Every path goes through
tf.io.gfile (gs:// works).
"""
import contextlib
import datetime
import os
import re
from typing import Any, Dict, Mapping, Optional

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

RUN_ENV = "RESIZER_PIPELINE_RUN"
COMPARISON = "comparison"  # the run's folder of the comparison text
FINAL = "final/"  # tag prefix of a Trainer's final scores
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def run_name(now: Optional[datetime.datetime] = None) -> str:
  """A new run's name: its UTC start time, to the millisecond, so runs sort
  by time (runs on one output folder never overlap: it is locked)."""
  now = (now or datetime.datetime.now(datetime.timezone.utc)).astimezone(
      datetime.timezone.utc)
  return now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z"


@contextlib.contextmanager
def run_env(name: str):
  """RUN_ENV is `name` inside, as it was after: the local Trainers run in
  this process."""
  before = os.environ.get(RUN_ENV)
  os.environ[RUN_ENV] = check_name(name, "run")
  try:
    yield
  finally:
    if before is None:
      os.environ.pop(RUN_ENV, None)
    else:
      os.environ[RUN_ENV] = before


def vertex_job_name(model_run_uri: str) -> Optional[str]:
  """The pipeline job's name in a Vertex output URI
  (<root>/<project number>/<job name>/<task>/<output key>), else None."""
  parts = model_run_uri.rstrip("/").split("/")
  if (model_run_uri.startswith("gs://") and len(parts) >= 6
      and parts[-4].isdigit()):
    return parts[-3]
  return None


def current_run(output_uri: str = "") -> str:
  """The run a step logs under: RUN_ENV (the local runner's), else the Vertex
  job's name in its output's URI, else (another runner) its own start time."""
  return check_name(os.environ.get(RUN_ENV) or vertex_job_name(output_uri)
                    or run_name(), "run")


def check_name(name: str, what: str) -> str:
  """`name` as one folder name; a ValueError naming it otherwise (a run or
  model name must not climb out of the log root)."""
  if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
    raise ValueError(f"TensorBoard {what} name {name!r}: use letters, digits, "
                     "'.', '_' and '-' only, starting with a letter or digit")
  return name


def model_dir(root: str, run: str, model: str) -> str:
  """<root>/<run>/<model>: a Trainer's log folder."""
  return os.path.join(root, check_name(run, "run"), check_name(model, "model"))


def _hparam_value(value: Any):
  # The HParams plugin takes bool, int, float and str only.
  if value is None:
    return "none"
  return value if isinstance(value, (bool, int, float, str)) else str(value)


def write_hparams(log_dir: str, hparams: Mapping[str, Any],
                  final: Mapping[str, float], step: int) -> Dict[str, Any]:
  """The Trainer's hyper-parameters as one HParams session in log_dir, and
  its final scores as scalars FINAL + name at `step` (the HParams table shows
  them as metrics). Returns the hyper-parameters as written."""
  values = {k: _hparam_value(v) for k, v in hparams.items()}
  writer = tf.summary.create_file_writer(log_dir)
  with writer.as_default():
    # The session's name in the HParams table: <run>/<model>.
    hp.hparams(values, trial_id="/".join(log_dir.rstrip("/").split("/")[-2:]))
    for name, value in final.items():
      tf.summary.scalar(FINAL + name, float(value), step=step)
  writer.close()
  return values


def write_comparison(root: str, run: str, text: str) -> str:
  """The run's comparison (markdown) as text in <root>/<run>/comparison;
  returns that folder."""
  folder = os.path.join(root, check_name(run, "run"), COMPARISON)
  writer = tf.summary.create_file_writer(folder)
  with writer.as_default():
    tf.summary.text(COMPARISON, text, step=0)
  writer.close()
  return folder
