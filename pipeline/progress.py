"""What `resizer-pipeline run` prints: a line per DAG step as it starts and as
it finishes (duration and a one-phrase result), the Trainers' epochs, a total;
and which library noise it hides.

How the steps are observed: LocalDagRunner builds one
`tfx.orchestration.portable.launcher.Launcher` per node and calls its
`launch()`, which returns when the node is done (run, cached or skipped) and
raises when it failed. `observe_steps` swaps in a subclass whose `launch()`
reports around the original, for the duration of one run
(components/tfx_internals.py, observe_launches). This uses the
portable orchestrator's own entry point rather than matching log messages, and
the results are read afterwards from what the step recorded in MLMD (its
execution state, output artifacts and their custom properties), the same
records a rerun's cache and the Vertex console use.

What a finished step's line says comes from the step, never from its name
here: the result its component recorded on an output (components/result.py),
else a line by the type of its outputs, else "done"; where the DAG gives a
step its meaning (a resolver, a conditional), the pipeline declares the line
with the node (StepLines).
"""
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from typing import Callable, Dict, List, Optional, TextIO, Tuple

from trainer.text import escape

PROGRESS_LOGGER = "resizer.progress"  # the Trainers' per-epoch lines

# Known-harmless messages, by the logger that emits them. Each is logged on
# every run (some once per component) and none calls for any action.
NOISE = {
    "absl": (
        "ArtifactQuery.property_predicate is not supported",  # TFX resolver
        "is deprecated. Please customize component directly",  # Pusher spec
        "Tables initialized inside a tf.function",  # TFT vocabulary lookup
        "does not have payload_format custom property",  # Examples default
    ),
    "tensorflow": ("is deprecated and will be removed",),
    "apache_beam.io.tfrecordio": ("Couldn't find python-snappy",),
}


class _DropNoise(logging.Filter):
  """A logger filter (it sees every record created on its logger, whatever
  handlers libraries add later) that drops the known-harmless messages."""

  def __init__(self, phrases):
    super().__init__()
    self.phrases = phrases

  def filter(self, record):
    message = record.getMessage()
    return not any(p in message for p in self.phrases)


def _format_seconds(seconds: float) -> str:
  if seconds < 60:
    return f"{seconds:.1f} s"
  minutes, rest = divmod(int(round(seconds)), 60)
  return f"{minutes} min {rest:02d} s"


class _EpochLines(logging.Handler):
  """Prints the Trainers' epoch lines under the name of the running step."""

  def __init__(self, progress):
    super().__init__(logging.INFO)
    self.progress = progress

  def emit(self, record):
    step = self.progress.current or "Trainer"
    self.progress.say(f"{step}: {record.getMessage()}")


@dataclasses.dataclass(frozen=True)
class StepLines:
  """A step's lines where the DAG, not its outputs, says what it did;
  declared with the nodes (pipeline/pipeline.py)."""
  # Its line once finished, from every output ({key: [artifact]}, resolved
  # ones included); None: what its own outputs say (result_line).
  done: Optional[Callable[[Dict[str, List]], str]] = None
  skipped: str = "skipped"  # when its conditional was false


class Progress:
  """Prints the steps of one run and remembers which one failed."""

  def __init__(self, config, out: Optional[TextIO] = None,
               clock=time.perf_counter):
    self.config = config
    self.total_steps = 0  # set by the runner once the DAG is built
    self.lines: Dict[str, StepLines] = {}  # likewise, by node id
    self.out = out
    self.clock = clock
    self.current: Optional[str] = None
    self.failed: Optional[str] = None
    self.steps = 0
    self.counts = {"ran": 0, "cached": 0, "skipped": 0, "failed": 0}
    self._started_run = clock()
    self._started_step = None

  def say(self, line: str) -> None:
    # Lines quote class names, paths and errors from the data and the libraries.
    print(escape(line), file=self.out or sys.stdout, flush=True)

  def step_folder(self, node_id: str) -> str:
    return os.path.join(self.config.pipeline_root, node_id)

  def started(self, node_id: str) -> None:
    self.current, self._started_step = node_id, self.clock()
    self.steps += 1
    total = f" of {self.total_steps}" if self.total_steps else ""
    self.say(f"{node_id}: started (step {self.steps}{total})")

  def finished(self, node_id: str, execution_id: Optional[int]) -> None:
    seconds = self.clock() - self._started_step
    self.current = None
    lines = self.lines.get(node_id, StepLines())
    if execution_id is None:  # a false conditional or no inputs to run on
      self.counts["skipped"] += 1
      phrase = lines.skipped
    else:
      state, produced, resolved = read_execution(self.config.metadata_path,
                                                 execution_id)
      cached = state == "CACHED"
      self.counts["cached" if cached else "ran"] += 1
      try:
        phrase = (lines.done({**produced, **resolved}) if lines.done
                  else result_line(produced))
      except Exception as e:  # pylint: disable=broad-except
        # The summary line is a courtesy: never fail a finished step over it.
        logging.debug("no summary for %s: %s", node_id, e)
        phrase = "done"
      if cached:
        phrase = f"cached, {phrase}" if phrase != "done" else "cached"
    self.say(f"{node_id}: {phrase} — {_format_seconds(seconds)}")

  def step_failed(self, node_id: str, error: BaseException) -> None:
    seconds = self.clock() - self._started_step
    self.current, self.failed = None, node_id
    self.counts["failed"] += 1
    self.say(f"{node_id}: FAILED after {_format_seconds(seconds)}: "
             f"{type(error).__name__}: {_first_line(error)}")

  def summary(self) -> str:
    counts = ", ".join(f"{n} {k}" for k, n in self.counts.items() if n)
    return (f"total {_format_seconds(self.clock() - self._started_run)} "
            f"({counts})")


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else ""


def read_execution(metadata_path: str, execution_id: int):
  """(state name, {output key: [TFX artifact]} the execution produced (or, when
  cached, reused), {output key: [TFX artifact]} it resolved: other steps'
  artifacts, as a resolver passes them on)."""
  # pylint: disable=import-outside-toplevel
  from ml_metadata.metadata_store import metadata_store
  from ml_metadata.proto import metadata_store_pb2
  from tfx.types import artifact_utils
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  store = metadata_store.MetadataStore(config)
  [execution] = store.get_executions_by_id([execution_id])
  state = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
  produced, resolved = {}, {}
  outputs_of = {metadata_store_pb2.Event.OUTPUT: produced,
                metadata_store_pb2.Event.INTERNAL_OUTPUT: resolved}
  keys: Dict[int, Tuple[Dict, str]] = {}
  for event in store.get_events_by_execution_ids([execution_id]):
    if event.type in outputs_of and event.path.steps:
      keys[event.artifact_id] = (outputs_of[event.type],
                                 event.path.steps[0].key)
  artifacts = store.get_artifacts_by_id(list(keys))
  types = {t.id: t for t in store.get_artifact_types_by_id(
      list({a.type_id for a in artifacts}))}
  for artifact in artifacts:
    outputs, key = keys[artifact.id]
    outputs.setdefault(key, []).append(
        artifact_utils.deserialize_artifact(types[artifact.type_id], artifact))
  return state, produced, resolved


def _read_json(path: str):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _training_line(model_run) -> str:
  """The task's score from a run_fn's model_info.json, and its epochs."""
  # pylint: disable=import-outside-toplevel
  import tasks
  from trainer.training import MODEL_INFO
  info = _read_json(os.path.join(model_run.uri, MODEL_INFO))
  epochs = len(info["history"].get("loss", []))
  score = tasks.named(info.get("task") or "").trainer_phrase(info)
  return f"{score} after {epochs} epoch{'' if epochs == 1 else 's'}"


def _lines_by_type() -> Dict[str, Callable]:
  """Artifact type name -> its line, for steps that record no result."""
  # pylint: disable=import-outside-toplevel
  from tfx.types import standard_artifacts
  from components import result
  return {
      standard_artifacts.ModelEvaluation.TYPE_NAME:
          lambda evaluation: result.evaluation_line(evaluation.uri),
      standard_artifacts.ModelRun.TYPE_NAME: _training_line,
  }


def result_line(outputs: Dict[str, List]) -> str:
  """What a finished step's own outputs ({key: [TFX artifact]}) say: the
  result its component recorded on one, else a line made from the first
  output of a type that has one, else "done"."""
  from components import result  # pylint: disable=import-outside-toplevel
  artifacts = [a for key in sorted(outputs) for a in outputs[key]]
  for artifact in artifacts:
    recorded = result.recorded(artifact)
    if recorded:
      return recorded
  by_type = _lines_by_type()
  for artifact in artifacts:
    if artifact.type_name in by_type:
      return by_type[artifact.type_name](artifact) or "done"
  return "done"


@contextlib.contextmanager
def observe_steps(progress: Progress):
  """Reports each step LocalDagRunner launches while inside (see above)."""
  # pylint: disable=import-outside-toplevel
  from components.tfx_internals import observe_launches
  epochs = logging.getLogger(PROGRESS_LOGGER)
  handler = _EpochLines(progress)
  saved = (epochs.level, epochs.propagate)
  epochs.addHandler(handler)
  epochs.setLevel(logging.INFO)
  epochs.propagate = False  # printed once, by the handler
  try:
    with observe_launches(progress.started, progress.finished,
                          progress.step_failed):
      yield progress
  finally:
    epochs.removeHandler(handler)
    epochs.level, epochs.propagate = saved


def configure_logging(verbose: bool) -> None:
  """--verbose: every log record at INFO and up. Otherwise warnings and
  errors, minus the known-harmless ones (TF's C++ logs are set apart, before
  TensorFlow loads: see pipeline/cli.py)."""
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  root = logging.getLogger()
  for name, phrases in NOISE.items():
    logger = logging.getLogger(name)
    for f in [f for f in logger.filters if isinstance(f, _DropNoise)]:
      logger.removeFilter(f)
    if not verbose:
      logger.addFilter(_DropNoise(phrases))
  level = logging.INFO if verbose else logging.WARNING
  root.setLevel(level)
  absl_logging.set_verbosity(absl_logging.INFO if verbose
                             else absl_logging.WARNING)
  if verbose and not root.handlers:
    logging.basicConfig(level=logging.INFO)
