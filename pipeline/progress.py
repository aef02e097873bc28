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
"""
import contextlib
import json
import logging
import os
import sys
import time
from typing import Dict, List, Optional, TextIO, Tuple

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


class Progress:
  """Prints the steps of one run and remembers which one failed."""

  def __init__(self, config, out: Optional[TextIO] = None,
               clock=time.perf_counter):
    self.config = config
    self.total_steps = 0  # set by the runner once the DAG is built
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
    if execution_id is None:  # a false conditional or no inputs to run on
      self.counts["skipped"] += 1
      phrase = skipped_phrase(node_id)
    else:
      state, outputs = read_execution(self.config.metadata_path, execution_id)
      cached = state == "CACHED"
      self.counts["cached" if cached else "ran"] += 1
      try:
        phrase = result_phrase(node_id, outputs, self.config)
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
  """(state name, {output key: [MLMD artifact]}) of one execution."""
  # pylint: disable=import-outside-toplevel
  from ml_metadata.metadata_store import metadata_store
  from ml_metadata.proto import metadata_store_pb2
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  store = metadata_store.MetadataStore(config)
  [execution] = store.get_executions_by_id([execution_id])
  state = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
  outputs_of = (metadata_store_pb2.Event.OUTPUT,
                metadata_store_pb2.Event.INTERNAL_OUTPUT)
  keys: Dict[int, str] = {}
  for event in store.get_events_by_execution_ids([execution_id]):
    if event.type in outputs_of and event.path.steps:
      keys[event.artifact_id] = event.path.steps[0].key
  outputs: Dict[str, List] = {}
  for artifact in store.get_artifacts_by_id(list(keys)):
    outputs.setdefault(keys[artifact.id], []).append(artifact)
  return state, outputs


def _string(artifact, name: str) -> str:
  return artifact.custom_properties[name].string_value \
      if name in artifact.custom_properties else ""


def _int(artifact, name: str) -> Optional[int]:
  return artifact.custom_properties[name].int_value \
      if name in artifact.custom_properties else None


def _read_json(path: str):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def skipped_phrase(node_id: str) -> str:
  if node_id == "Evaluator_production":
    return "skipped: no model in production to compare with"
  return "skipped"


def _scores(evaluation_uri: str) -> Tuple[str, Dict[str, float]]:
  """(the score's name, {model: score}) of the task whose score the
  evaluation holds."""
  # pylint: disable=import-outside-toplevel
  import tasks
  from gate.tfma_metric import overall_metrics
  overall = overall_metrics(evaluation_uri)
  for task in tasks.all_tasks():
    scores = {name: task.score_of(m) for name, m in overall.items()}
    if scores and all(v is not None for v in scores.values()):
      return task.score_label, scores
  return "score", {}


_OUTCOMES = {"ahead": "the learned resizer is ahead",
             "not_significant": "no significant difference",
             "under_floor": "the learned model is under the floor"}
_DECISIONS = {"push": "push",
              "not_blessed": "don't push: the candidate is under the floor",
              "same_as_production": "don't push: the candidate is the model "
                                    "already in production",
              "worse_than_production": "don't push: significantly worse than "
                                       "production"}


def result_phrase(node_id: str, outputs, config) -> str:
  """One phrase saying what a finished step produced."""
  # pylint: disable=import-outside-toplevel
  first = {key: artifacts[0] for key, artifacts in outputs.items()
           if artifacts}
  if node_id == "ImageExampleGen":
    from components.image_example_gen.executor import SUMMARY_FILE
    summary = _read_json(os.path.join(first["rejected"].uri, SUMMARY_FILE))
    splits = ", ".join(f"{n:,} {s}" for s, n in sorted(
        summary.get("splits", {}).items(), reverse=True))
    return (f"{summary['ingested']:,} ingested, {summary['rejected']:,} "
            f"rejected" + (f" ({splits})" if splits else ""))
  if node_id == "CuratedSchemaGen":
    import tensorflow_data_validation as tfdv
    from components.schema_curator.component import SCHEMA_FILE
    from trainer import features
    schema = tfdv.load_schema_text(os.path.join(first["schema"].uri,
                                                SCHEMA_FILE))
    classes = list(tfdv.get_domain(schema, features.LABEL).value)
    shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
    return f"{len(classes)} classes ({shown})"
  if node_id == "ValidationGate":
    return "no anomalies"
  if node_id.startswith("Trainer_"):
    import tasks
    from trainer.training import MODEL_INFO
    info = _read_json(os.path.join(first["model_run"].uri, MODEL_INFO))
    epochs = len(info["history"].get("loss", []))
    score = tasks.get(info.get("task") or tasks.default().name).trainer_phrase(
        info)
    return f"{score} after {epochs} epoch{'' if epochs == 1 else 's'}"
  if node_id in ("Evaluator", "Evaluator_production"):
    # The floor and the comparison are judged by ModelSelector/PushDecision.
    metric, scores = _scores(first["evaluation"].uri)
    # Without a baseline TFMA files the lone model under the empty name.
    ordered = sorted(scores.items(),  # the baseline last
                     key=lambda kv: kv[0] in ("bilinear", "production"))
    return f"{metric} " + ", ".join(f"{name or 'candidate'} {value:.3f}"
                                    for name, value in ordered)
  if node_id == "ModelSelector":
    from gate import stats
    model = first["model"]
    comparison = json.loads(_string(model, "comparison") or "null")
    why = _OUTCOMES.get(comparison and comparison.get("outcome"), "")
    evidence = (stats.describe(stats.Comparison.from_dict(comparison))
                if comparison else "")
    detail = "; ".join(p for p in (why, evidence) if p)
    return _string(model, "selected") + (f" ({detail})" if detail else "")
  if node_id == "ProductionModelResolver":
    models = outputs.get("model", [])
    if not models:
      return "no model in production yet"
    return f"model in production: {models[0].uri}"
  if node_id == "PushDecision":
    decision = _string(first["blessing"], "decision")
    return _DECISIONS.get(decision, decision)
  if node_id == "Pusher":
    pushed = first.get("pushed_model")
    if pushed is not None and _int(pushed, "pushed") == 1:
      return f"pushed to {_string(pushed, 'pushed_destination')}"
    return "nothing pushed"
  if node_id == "ResultsReport":
    return f"wrote {os.path.join(config.report_dir, 'results.json')}"
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
