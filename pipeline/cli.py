"""`resizer-pipeline`: run the DAG locally, compile it for Vertex AI Pipelines
and submit it there, classify images with a pushed model, or write the demo
dataset."""
import argparse
import dataclasses
import json
import logging
import os
import posixpath
import sys
import traceback
import warnings
from typing import List, Optional

# TensorFlow's C++ logs, set before it loads: without --verbose, none (the
# CUDA plugin registrations and grappler's "remapper failed" are errors in
# name only; a real failure still raises, and run prints its message).
# `make` exports level 2 for its own steps, which still shows those errors.
if "--verbose" in sys.argv[1:]:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
else:
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
# The Google clients warn at import about Python versions they will drop.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")

import tasks
from pipeline import config as config_lib
from pipeline.config import ConfigError, PipelineConfig, VertexConfig
from trainer.text import escape, escape_lines

PLATFORMS = ("vertex",)
RUNNERS = ("DirectRunner", "DataflowRunner")
BATCH_SIZE = 64  # predict --input's images per model call


@dataclasses.dataclass(frozen=True)
class Option:
  """A flag made from a field of the typed config (pipeline/config.py)."""
  section: str                  # attribute of PipelineConfig ("" itself)
  field: dataclasses.Field
  task: Optional[str] = None    # a task's own setting (task_settings)

  @property
  def flag(self) -> str:
    return config_lib.flag(self.field)

  @property
  def key(self) -> str:
    """The argparse dest, and the key of compile's --config JSON."""
    return self.flag[2:].replace("-", "_")

  @property
  def switch(self) -> bool:  # a bool: the flag alone sets it
    return config_lib.field_type(self.field)[0] is bool

  def owner(self, config: PipelineConfig):
    if self.task:
      return config.task_settings[self.task]
    return getattr(config, self.section) if self.section else config

  def help(self) -> str:
    text = self.field.metadata["help"].replace("%", "%%")  # argparse formats
    return f"{self.task}: {text}" if self.task else text

  def convert(self, value):
    """A flag's or a JSON setting's value as the field's type; "none" and ""
    are None where the field takes None."""
    kind, optional = config_lib.field_type(self.field)
    if optional and value in ("none", "", None):
      return None
    if self.field.metadata.get("nargs"):  # a list: flags' words or JSON's
      return [str(v) for v in (value.split() if isinstance(value, str)
                               else value)]
    if kind is bool:
      if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
      # A switch that turns a default on off (--no-cache) stores its opposite.
      return value != (self.flag != "--" + self.field.name.replace("_", "-"))
    return kind(value)

  def set(self, config: PipelineConfig, value) -> None:
    setattr(self.owner(config), self.field.name, self.convert(value))

  def add_to(self, parser, default, show_default=False) -> None:
    extra = f" (default: {default})" if show_default else ""
    if self.switch:
      parser.add_argument(self.flag, dest=self.key, action="store_true",
                          help=self.help() + extra)
      return
    parser.add_argument(self.flag, dest=self.key, help=self.help() + extra,
                        type=str, nargs=self.field.metadata.get("nargs"),
                        **({} if show_default else {"default": default}))


def options(command: str = "run") -> List[Option]:
  """The flags of `run` or `compile`, one per setting, in the config's
  order; compile leaves out the local-only ones (DirectRunner's)."""
  defaults = PipelineConfig()
  found = []
  sections = [("data", defaults.data), ("model", defaults.model),
              ("train", defaults.train), ("eval", defaults.eval),
              ("", defaults)]
  for section, owner in sections:
    for field in dataclasses.fields(owner):
      meta = field.metadata
      if "help" not in meta or meta.get("cli") is False or (
          command == "compile" and meta.get("compile") is False):
        continue
      found.append(Option(section, field))
  for name, settings in defaults.task_settings.items():
    found += [Option("task_settings", f, task=name)
              for f in dataclasses.fields(settings)]
  if command == "compile":
    found += [Option("vertex", f) for f in dataclasses.fields(VertexConfig)]
  return found


def _default(option: Option, defaults: PipelineConfig):
  owner = (defaults.vertex or VertexConfig()) if option.section == "vertex" \
      else option.owner(defaults)
  value = getattr(owner, option.field.name)
  return "none" if value is None else value


def build_parser():
  parser = argparse.ArgumentParser(
      prog="resizer-pipeline",
      description="TFX pipeline training an image model with a learned "
      "resizer (Talebi & Milanfar 2021) against a bilinear baseline.")
  sub = parser.add_subparsers(dest="command", required=True)

  run = sub.add_parser("run", help="run the whole DAG locally",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  fields = {f.name: f for f in dataclasses.fields(PipelineConfig)}
  data_fields = {f.name: f for f in dataclasses.fields(config_lib.DataConfig)}
  run.add_argument("--data", required=True,
                   help=data_fields["path"].metadata["help"])
  run.add_argument("--output", required=True,
                   help=fields["output"].metadata["help"])
  defaults = PipelineConfig()
  for option in options("run"):
    option.add_to(run, _default(option, defaults))
  run.add_argument("--verbose", action="store_true",
                   help="show TFX and Beam logs")

  _add_compile_parser(sub)
  submit = sub.add_parser("submit", help="start a compiled DAG on Vertex AI "
                          "Pipelines (needs Google Cloud credentials)")
  submit.add_argument("--pipeline", required=True,
                      help="the compiled file (compile --output)")
  submit.add_argument("--project", required=True, help="Google Cloud project")
  submit.add_argument("--region", required=True, help="Vertex AI region")
  submit.add_argument("--service-account",
                      help="service account the pipeline steps run as")

  _add_predict_parser(sub)
  demo = sub.add_parser("demo-data", help="write an embedded demo dataset",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  demo.add_argument("--output", required=True, help="folder to write")
  demo.add_argument("--per-class", type=int, default=60,
                    help="images a class (a task without classes: images)")
  demo.add_argument("--size", type=int, default=96, help="image side in px")
  demo.add_argument("--classes", type=int, default=5, help="2 to 5")
  demo.add_argument("--seed", type=int, default=0, help="random seed")
  demo.add_argument("--task", choices=tasks.names(),
                    default=tasks.default().name,
                    help="class folders, or images/ plus labels.csv (image, "
                    "target) for a task without classes")
  return parser


def _add_compile_parser(sub):
  # Only the settings given appear in args, so --config values can fill in the
  # rest; the defaults are the typed configs' own.
  comp = sub.add_parser(
      "compile", argument_default=argparse.SUPPRESS,
      help="compile the DAG for Vertex AI Pipelines (offline)",
      description="Compiles the same DAG as `run` into a Vertex AI "
      "PipelineJob file: Beam components on Dataflow, Trainers as Vertex "
      "custom jobs, optional endpoint deployment. Settings come from --config "
      "(a JSON object keyed by the flag names with underscores, e.g. "
      '{"project": "P", "replica_count": 2}) and the flags, which win.')
  comp.add_argument("--platform", choices=PLATFORMS,
                    help="orchestrator to compile for")
  comp.add_argument("--output", dest="pipeline_file", default="pipeline.json",
                    help="compiled PipelineJob JSON to write "
                    "(default: pipeline.json)")
  comp.add_argument("--config", help="JSON file of settings")
  comp.add_argument("--data", help="gs:// image folder, laid out as for run "
                    "--data; give --layout flat or splits")
  comp.add_argument("--pipeline-root", help="gs:// folder the run writes, as "
                    "run --output: pipeline_root/ (artifacts), serving/ "
                    "(pushed models), report/")
  defaults = PipelineConfig(vertex=VertexConfig())
  for option in options("compile"):
    option.add_to(comp, _default(option, defaults), show_default=True)
  # Old spelling, from when compile's --target named the platform.
  comp.add_argument("--target-column", dest="target_column",
                    help=argparse.SUPPRESS)


def _add_predict_parser(sub):
  parser = sub.add_parser(
      "predict", help="answer image files with a pushed model",
      description="Runs a pushed model's serving_images signature on image "
      "files and prints its answer for each (the top classes with their "
      "probabilities, or the predicted number). Exit status 1 if any file "
      "failed.")
  parser.add_argument("--model", required=True,
                      help="a pushed model folder (holding saved_model.pb), "
                      "or the serving root <output>/serving for its newest "
                      "version; local or gs://")
  parser.add_argument("--top", type=int, default=3,
                      help="classes shown per image (default: 3)")
  parser.add_argument("--json", action="store_true",
                      help="print one JSON document instead of text lines")
  parser.add_argument("--trust-model", action="store_true",
                      help="load the model even if its graph uses ops that "
                      "the models this pipeline exports don't (file reads "
                      "and writes, Python calls, unknown ops): a SavedModel "
                      "is a program, so only for a model from someone you "
                      "trust")
  parser.add_argument("images", nargs="*", metavar="IMAGE",
                      help="image files, local or gs://")
  batch = parser.add_argument_group(
      "batch job", "every file under --input, answered by a Beam job into "
      "--output (one JSON line per file) instead of IMAGE files")
  batch.add_argument("--input", help="image folder (read recursively) or "
                     "file, local or gs://")
  batch.add_argument("--output", help="JSON lines file to write, e.g. "
                     "predictions.jsonl")
  batch.add_argument("--runner", choices=RUNNERS,
                     help="Beam runner (default: DirectRunner)")
  batch.add_argument("--workers", type=int, help="DirectRunner worker "
                     "processes (default: one per core; 1: in this process)")
  batch.add_argument("--batch-size", type=int, help="images per model call "
                     f"(default: {BATCH_SIZE})")
  dataflow = parser.add_argument_group(
      "DataflowRunner", "as for compile; --model, --input and --output on "
      "gs://")
  for option in dataflow_options():
    option.add_to(dataflow, _default(option, PipelineConfig()),
                  show_default=True)


def dataflow_options() -> List[Option]:
  """compile's flags of the settings VertexConfig.beam_args reads."""
  return [o for o in options("compile")
          if o.section == "vertex" and o.field.metadata.get("dataflow")]


def predict_beam_args(args) -> Optional[List[str]]:
  """The batch job's Beam args (None: the small form, IMAGE files); raises
  ConfigError for flags that don't go together, naming the fix."""
  if args.top < 1:
    raise ConfigError("--top: must be at least 1")
  dataflow = [o for o in dataflow_options()
              if getattr(args, o.key) is not None]
  if args.input is None:
    given = [flag for flag, key in (("--output", "output"),
                                    ("--runner", "runner"),
                                    ("--workers", "workers"),
                                    ("--batch-size", "batch_size"))
             if getattr(args, key) is not None] + [o.flag for o in dataflow]
    if given:
      raise ConfigError(f"{given[0]}: only for a batch job: add --input "
                        "FOLDER, or leave it out to answer IMAGE files")
    if not args.images:
      raise ConfigError("give IMAGE files, or --input FOLDER --output "
                        "FILE.jsonl for a batch job")
    return None
  if args.images:
    raise ConfigError(f"--input: give IMAGE files or --input, not both (got "
                      f"{args.images[0]} and --input {args.input})")
  if not args.output:
    raise ConfigError("--output: give the JSON lines file the batch job "
                      "writes, e.g. --output predictions.jsonl")
  if args.json:
    raise ConfigError("--json: the batch job writes JSON lines to --output; "
                      "leave --json out")
  if args.batch_size is None:
    args.batch_size = BATCH_SIZE
  if args.batch_size < 1:
    raise ConfigError("--batch-size: must be at least 1")
  if args.runner == "DataflowRunner":
    return _dataflow_beam_args(args, dataflow)
  if dataflow:
    raise ConfigError(f"{dataflow[0].flag}: only for --runner DataflowRunner")
  workers = (os.cpu_count() or 1) if args.workers is None else args.workers
  if workers < 1:
    raise ConfigError("--workers: must be at least 1")
  # One worker runs in this process: no worker to start and import TensorFlow.
  mode = "in_memory" if workers == 1 else "multi_processing"
  return ["--runner=DirectRunner", f"--direct_running_mode={mode}",
          f"--direct_num_workers={workers}"]


def _dataflow_beam_args(args, given: List[Option]) -> List[str]:
  if args.workers is not None:
    raise ConfigError("--workers: DirectRunner's; Dataflow's is "
                      "--dataflow-max-workers")
  config = PipelineConfig(vertex=VertexConfig())
  for option in given:
    try:
      option.set(config, getattr(args, option.key))
    except ValueError as e:
      raise ConfigError(f"{option.flag}: {e}") from e
  config.vertex.validate_dataflow()
  for flag, path in (("--model", args.model), ("--input", args.input),
                     ("--output", args.output)):
    if not path.startswith("gs://"):
      raise ConfigError(f"{flag}: Dataflow workers read and write Cloud "
                        f"Storage, not {path}: give gs://BUCKET/PATH")
  return config.vertex.beam_args(posixpath.dirname(args.output))


def compile_config(settings) -> PipelineConfig:
  """The typed config of `compile` settings, {flag with underscores: value}."""
  settings = dict(settings)
  config = PipelineConfig(output=settings.pop("pipeline_root", ""),
                          vertex=VertexConfig())
  config.data.path = settings.pop("data", "")
  by_key = {o.key: o for o in options("compile")}
  for key, value in settings.items():
    if key not in by_key:
      raise ConfigError(f"--config: unknown setting {key!r}; use the flag "
                        "names with underscores, e.g. replica_count")
    option = by_key[key]
    try:
      option.set(config, value)
    except ValueError as e:
      raise ConfigError(f"{option.flag}: {e}") from e
  return config


def config_from_args(args) -> PipelineConfig:
  config = PipelineConfig(output=args.output)
  config.data.path = args.data
  for option in options("run"):
    try:
      option.set(config, getattr(args, option.key))
    except ValueError as e:
      raise ConfigError(f"{option.flag}: {e}") from e
  return config


def main(argv=None):
  args = build_parser().parse_args(argv)
  if args.command != "run":
    return _command(args)
  code = _run(args)
  if argv is None:  # the process's own command line: nothing runs after us
    _exit_now(code)
  return code


def _exit_now(code):
  """Ends the process without the interpreter's teardown, which after a run
  spends seconds in TensorFlow's and Beam's finalizers and writes nothing of
  ours: every file is closed and MLMD commits each write."""
  logging.shutdown()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


def _command(args):
  """Every command but run."""
  # pylint: disable=import-outside-toplevel
  if args.command == "demo-data":
    from pipeline import demo_data
    print(demo_data.write(args.task, args.output, args.per_class, args.size,
                          args.classes, args.seed))
    return 0
  if args.command == "predict":
    try:
      beam_args = predict_beam_args(args)
    except ConfigError as e:
      return _error(e, 2)
    if beam_args is None:
      from pipeline import predict  # TensorFlow: only when predicting
      return predict.main(args)
    from pipeline import batch_predict  # TensorFlow and Beam
    return batch_predict.main(args, beam_args)
  if args.command == "compile":
    return _compile(args)
  if args.command == "submit":
    return _submit(args)
  raise ValueError(f"unknown command {args.command}")


def _run(args):
  config = config_from_args(args)
  try:
    config.validate()
  except ConfigError as e:
    print(f"resizer-pipeline: error: {escape_lines(e)}", file=sys.stderr)
    return 2
  # pylint: disable=import-outside-toplevel
  from pipeline import local_runner, output_folder, progress as progress_lib
  from components.results_report.component import results_table
  from trainer.networks import WeightsUnavailableError
  progress_lib.configure_logging(args.verbose)
  progress = progress_lib.Progress(config)
  try:
    results = local_runner.run(config, progress)
  except output_folder.OutputError as e:
    return _error(e, 2)  # nothing ran: no step or summary to report
  except Exception as e:  # pylint: disable=broad-except
    return _run_failed(e, progress, args.verbose,
                       2 if isinstance(e, (ConfigError, WeightsUnavailableError))
                       else 1)
  print()
  print(results_table(results))
  print(f"report: {config.report_dir}/results.json; serving models: "
        f"{config.serving_dir}")
  print(progress.summary())
  return 0


def _run_failed(error, progress, verbose, code):
  """The error, which step failed and where its outputs are; the traceback
  with --verbose."""
  if verbose:
    traceback.print_exc()
  kind = "error" if code == 2 else "run failed"
  print(f"resizer-pipeline: {kind}: {type(error).__name__}: "
        f"{escape_lines(error)}", file=sys.stderr)
  if progress.failed:
    print(f"resizer-pipeline: step {progress.failed} failed; its outputs: "
          f"{progress.step_folder(progress.failed)}/, its MLMD records: "
          f"{progress.config.metadata_path}"
          + ("" if verbose else "; rerun with --verbose for its logs and the "
             "full traceback"), file=sys.stderr)
  print(progress.summary(), file=sys.stderr)
  return code


def _deprecated(old, new):
  print(f"resizer-pipeline: warning: {old} is deprecated; use {new}",
        file=sys.stderr)


def _error(message, code):
  print(f"resizer-pipeline: error: {escape(' '.join(str(message).split()))}",
        file=sys.stderr)
  return code


def _compile(args):
  settings = {k: v for k, v in vars(args).items()
              if k not in ("command", "platform", "pipeline_file", "config",
                           "target_column")}
  # The old spellings: compile's --target named the platform, and
  # --target-column the labels CSV's target column.
  if getattr(args, "platform", None) is None:
    if settings.get("target") not in PLATFORMS:
      return _error("--platform: give the platform to compile for: "
                    + " | ".join(PLATFORMS), 2)
    _deprecated(f"--target {settings['target']}",
                f"--platform {settings['target']}; --target now names the "
                "labels CSV's target column, as in run")
    del settings["target"]
  if getattr(args, "target_column", None) is not None:
    _deprecated("--target-column", "--target")
    settings["target"] = args.target_column
  try:
    if getattr(args, "config", None):
      try:
        with open(args.config) as f:
          settings = {**json.load(f), **settings}
      except (OSError, ValueError) as e:
        raise ConfigError(f"--config: {args.config}: {e}") from e
    config = compile_config(settings)
    config.validate()
    logging.getLogger().setLevel(logging.WARNING)
    from pipeline import vertex_runner  # pylint: disable=import-outside-toplevel
    vertex_runner.compile_pipeline(config, args.pipeline_file)
  except ConfigError as e:
    return _error(e, 2)
  print(f"wrote {args.pipeline_file}; start it with: resizer-pipeline submit "
        f"--pipeline {args.pipeline_file} --project {config.vertex.project} "
        f"--region {config.vertex.region}")
  return 0


def _submit(args):
  # pylint: disable=import-outside-toplevel
  if not os.path.isfile(args.pipeline):
    return _error(f"--pipeline: {args.pipeline} is not a file; write it with "
                  "`resizer-pipeline compile --platform vertex`", 2)
  from google.api_core import exceptions as api_exceptions
  from google.auth import exceptions as auth_exceptions
  from pipeline import vertex_runner
  try:
    name = vertex_runner.submit(args.pipeline, args.project, args.region,
                                args.service_account)
  except auth_exceptions.DefaultCredentialsError as e:
    return _error(f"no Google Cloud credentials ({e}); run `gcloud auth "
                  "application-default login` or set "
                  "GOOGLE_APPLICATION_CREDENTIALS to a key file", 1)
  except (auth_exceptions.GoogleAuthError, api_exceptions.GoogleAPIError,
          OSError, ValueError) as e:
    return _error(f"Vertex AI did not take the job: {type(e).__name__}: {e}", 1)
  print(f"submitted {name}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
