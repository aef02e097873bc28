"""`resizer-pipeline`: run the DAG locally, compile it for Vertex AI Pipelines
and submit it there, classify images with a pushed model, or write the demo
dataset."""
import argparse
import json
import logging
import os
import sys
import traceback
import warnings

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

from pipeline import predict
from pipeline.config import ConfigError, PipelineConfig, VertexConfig
from trainer.text import escape, escape_lines

# (flag, section, field, type, help); section None means PipelineConfig itself.
_OPTIONS = [
    ("--layout", "data", "layout", str,
     "auto | flat (<class>/ folders, hash split) | splits (train/ + "
     "validation/ or eval/)"),
    ("--eval-percent", "data", "eval_percent", int,
     "share of images hashed into eval for the flat layout"),
    ("--labels", "data", "labels", str,
     "CSV of labels instead of class folders: a column of image paths "
     "relative to --data (image, path, file or filename), the target column, "
     "optionally split (train / validation or eval)"),
    ("--target", "data", "target", str,
     "the labels CSV's target column (default: its only other column)"),
    ("--task", "data", "task", str,
     "auto (numeric targets: regression) | classification | regression"),
    ("--target-transform", "data", "target_transform", str,
     "regression: none | log1p (counts), applied before the z-score"),
    ("--max-pixels", "data", "max_pixels", int,
     "refuse images with more pixels than this, before decoding"),
    ("--backbone", "model", "backbone", str,
     "densenet121 | resnet50 | mobilenet_v2 | efficientnet_b0 | vit | "
     "vit_tiny | tiny_cnn"),
    ("--input-size", "model", "input_size", int,
     "side of the images fed to the resizer"),
    ("--target-size", "model", "target_size", int,
     "side of the resized images fed to the backbone"),
    ("--filters", "model", "filters", int, "resizer filters (n)"),
    ("--res-blocks", "model", "res_blocks", int, "resizer residual blocks (r)"),
    ("--interpolation", "model", "interpolation", str,
     "resizer interpolation: bilinear | bicubic | area | nearest"),
    ("--weights", "model", "weights", str,
     "backbone weights: none | imagenet (downloads) | PATH (local or gs://): "
     "a keras.applications no-top .h5 file, or a model this pipeline pushed "
     "(<output>/serving/<version>, or serving/ for the newest): warm start"),
    ("--epochs", "train", "epochs", int, "training epochs"),
    ("--batch-size", "train", "batch_size", int,
     "batch size per replica (global batch = this x replicas)"),
    ("--learning-rate", "train", "learning_rate", float, "learning rate"),
    ("--schedule", "train", "schedule", str,
     "learning-rate schedule, per epoch: constant | cosine (to 0, after "
     "--warmup-epochs) | step (the paper's: x0.94 every 2 epochs)"),
    ("--warmup-epochs", "train", "warmup_epochs", int,
     "linear warm-up epochs before the cosine decay"),
    ("--optimizer", "train", "optimizer", str, "adam | sgd (momentum 0.9)"),
    ("--ema", "train", "ema", float,
     "exponential moving average of the weights (e.g. 0.99); 0: off"),
    ("--bn-recalibration", "train", "bn_recalibration", int,
     "training images BatchNorm statistics are recomputed from after every "
     "epoch, with the current weights; 0: Keras's lagging moving averages"),
    ("--label-smoothing", "train", "label_smoothing", float, "label smoothing"),
    ("--loss", "train", "loss", str, "regression loss: mse | huber"),
    ("--augment", "train", "augment", str,
     "none | flip | flip_crop (applied at training time only)"),
    ("--shuffle-buffer-mb", "train", "shuffle_buffer_mb", int,
     "memory of each Trainer's shuffle buffer, in MiB; it holds this / "
     "(input size^2 x 3 bytes) transformed images"),
    ("--seed", "train", "seed", int,
     "seed of the shared initial weights and the input order"),
    ("--strategy", "train", "strategy", str,
     "auto | default | mirrored | multi_worker | tpu"),
    ("--precision", "train", "precision", str,
     "auto | float32 | mixed_float16 | mixed_bfloat16"),
    ("--min-gain", "eval", "min_gain", float,
     "top-1 the learned model must be ahead of bilinear by, with --confidence, "
     "to be selected"),
    ("--confidence", "eval", "confidence", float,
     "confidence of the paired test behind both gates (learned vs bilinear, "
     "candidate vs production)"),
    ("--floor", "eval", "floor", float,
     "absolute top-1 floor (default: above chance, 1/classes); regression: "
     "the RMSE a model must stay below (default: predicting the training "
     "mean's)"),
    ("--production-tolerance", "eval", "production_tolerance", float,
     "a candidate significantly behind production's top-1 by more than this "
     "(with --confidence) is not pushed"),
    ("--beam-workers", None, "beam_workers", int,
     "Beam DirectRunner workers of the multi_* modes (0: one per core)"),
    ("--beam-mode", None, "beam_mode", str,
     "Beam DirectRunner mode: in_memory (default) | multi_threading | "
     "multi_processing (large local datasets)"),
    ("--name", None, "name", str, "pipeline name (MLMD context)"),
]


# (flag, VertexConfig field, type, help) of `compile --target vertex`.
_VERTEX_OPTIONS = [
    ("--project", "project", str, "Google Cloud project"),
    ("--region", "region", str, "Vertex AI and Dataflow region"),
    ("--image", "image", str,
     "pipeline image built from ./Dockerfile: it runs every step, Dataflow "
     "worker and training replica"),
    ("--service-account", "service_account", str,
     "service account of the steps, training jobs and Dataflow workers"),
    ("--dataflow-temp-location", "dataflow_temp_location", str,
     "gs:// scratch folder of Dataflow (empty: <pipeline root>/tmp)"),
    ("--dataflow-machine-type", "dataflow_machine_type", str,
     "Dataflow worker machine type"),
    ("--dataflow-max-workers", "dataflow_max_workers", int,
     "most Dataflow workers a Beam component may use"),
    ("--dataflow-setup-file", "dataflow_setup_file", str,
     "have Dataflow workers pip-install the project from this setup.py "
     "(/pipeline/setup.py in the image) instead of running the image"),
    ("--trainer-machine-type", "trainer_machine_type", str,
     "machine type of each training replica"),
    ("--accelerator-type", "accelerator_type", str,
     "GPU of each training replica, e.g. NVIDIA_TESLA_T4, NVIDIA_L4"),
    ("--accelerator-count", "accelerator_count", int,
     "GPUs of each training replica (0: CPU only)"),
    ("--replica-count", "replica_count", int,
     "training machines of each Trainer; more than 1 trains with "
     "MultiWorkerMirroredStrategy"),
    ("--endpoint-name", "endpoint_name", str,
     "also deploy the pushed model to this Vertex AI endpoint (created if "
     "missing); unset: push to <pipeline root>/serving only"),
    ("--serving-machine-type", "serving_machine_type", str,
     "machine type of the endpoint"),
    ("--serving-image", "serving_image", str,
     "TensorFlow Serving prediction container of the endpoint"),
]
# DirectRunner settings mean nothing on Dataflow.
# compile's own --target names the platform (vertex): there the labels
# CSV's target column is --target-column.
_COMPILE_OPTIONS = [("--target-column",) + o[1:] if o[0] == "--target" else o
                    for o in _OPTIONS if not o[0].startswith("--beam-")]


def _defaults():
  return PipelineConfig()


def build_parser():
  parser = argparse.ArgumentParser(
      prog="resizer-pipeline",
      description="TFX pipeline training an image classifier with a learned "
      "resizer (Talebi & Milanfar 2021) against a bilinear baseline.")
  sub = parser.add_subparsers(dest="command", required=True)

  run = sub.add_parser("run", help="run the whole DAG locally",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  run.add_argument("--data", required=True,
                   help="image folder: <class>/ subfolders, or train/ and "
                   "validation/ (or eval/) each holding <class>/ subfolders")
  run.add_argument("--output", required=True,
                   help="output folder, new or empty or an earlier run's "
                   "(one run at a time): pipeline_root/, metadata.sqlite, "
                   "serving/ (pushed models), report/")
  defaults = _defaults()
  for flag, section, field, kind, help_text in _OPTIONS:
    owner = getattr(defaults, section) if section else defaults
    run.add_argument(flag, type=kind, default=getattr(owner, field),
                     help=help_text)
  run.add_argument("--no-cache", action="store_true",
                   help="rerun every component instead of reusing results")
  run.add_argument("--push-equal", action="store_true",
                   help="push even when the candidate is the very model "
                   "already in production")
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

  predict.add_parser(sub)
  demo = sub.add_parser("demo-data", help="write the embedded demo dataset",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  demo.add_argument("--output", required=True, help="folder to write")
  demo.add_argument("--per-class", type=int, default=60, help="images a class")
  demo.add_argument("--size", type=int, default=96, help="image side in px")
  demo.add_argument("--classes", type=int, default=5, help="2 to 5")
  demo.add_argument("--seed", type=int, default=0, help="random seed")
  demo.add_argument("--task", choices=["classification", "regression"],
                    default="classification",
                    help="regression: images/ plus labels.csv (image, target)"
                    "; --per-class is then the number of images")
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
  comp.add_argument("--target", required=True, choices=["vertex"],
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
  for flag, section, field, kind, help_text in _COMPILE_OPTIONS:
    owner = getattr(defaults, section) if section else defaults
    default = getattr(owner, field)
    comp.add_argument(flag, type=kind, help=f"{help_text} (default: {default})")
  for flag, field, kind, help_text in _VERTEX_OPTIONS:
    default = getattr(defaults.vertex, field)
    comp.add_argument(flag, type=kind, help=f"{help_text} (default: {default})")
  comp.add_argument("--no-cache", action="store_true",
                    help="rerun every component instead of reusing results")
  comp.add_argument("--push-equal", action="store_true",
                    help="push even when the candidate is the very model "
                    "already in production")


def compile_config(settings) -> PipelineConfig:
  """The typed config of `compile` settings, {flag with underscores: value}."""
  settings = dict(settings)
  config = PipelineConfig(output=settings.pop("pipeline_root", ""),
                          enable_cache=not settings.pop("no_cache", False),
                          vertex=VertexConfig())
  config.data.path = settings.pop("data", "")
  config.eval.push_equal = bool(settings.pop("push_equal", False))
  targets = {flag[2:].replace("-", "_"):
             (getattr(config, section) if section else config, field, kind)
             for flag, section, field, kind, _ in _COMPILE_OPTIONS}
  targets.update({flag[2:].replace("-", "_"): (config.vertex, field, kind)
                  for flag, field, kind, _ in _VERTEX_OPTIONS})
  for key, value in settings.items():
    if key not in targets:
      raise ConfigError(f"--config: unknown setting {key!r}; use the flag "
                        "names with underscores, e.g. replica_count")
    owner, field, kind = targets[key]
    if field == "weights" and value in ("none", ""):
      value = None
    try:
      setattr(owner, field, None if value is None else kind(value))
    except ValueError as e:
      raise ConfigError(f"--{key.replace('_', '-')}: {e}") from e
  return config


def config_from_args(args) -> PipelineConfig:
  config = PipelineConfig(output=args.output, enable_cache=not args.no_cache)
  config.data.path = args.data
  config.eval.push_equal = args.push_equal
  for flag, section, field, _, _ in _OPTIONS:
    value = getattr(args, flag[2:].replace("-", "_"))
    if field == "weights" and value in ("none", ""):
      value = None
    setattr(getattr(config, section) if section else config, field, value)
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
  spends seconds in TensorFlow's and Beam's finalizers (bench/RESULTS.md) and
  writes nothing of ours: every file is closed and MLMD commits each write."""
  logging.shutdown()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


def _command(args):
  """Every command but run."""
  if args.command == "demo-data":
    from pipeline import demo_data  # pylint: disable=import-outside-toplevel
    if args.task == "regression":
      n = demo_data.write_regression_demo_data(args.output, args.per_class,
                                               args.size, args.seed)
      print(f"wrote {n} images and {demo_data.REGRESSION_LABELS} to "
            f"{args.output}: run with --labels "
            f"{os.path.join(args.output, demo_data.REGRESSION_LABELS)}")
      return 0
    n = demo_data.write_demo_data(args.output, args.per_class, args.size,
                                  args.classes, args.seed)
    print(f"wrote {n} images to {args.output}")
    return 0
  if args.command == "predict":
    return predict.main(args)
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
  from trainer.backbones import WeightsUnavailableError
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


def _error(message, code):
  print(f"resizer-pipeline: error: {escape(' '.join(str(message).split()))}",
        file=sys.stderr)
  return code


def _compile(args):
  settings = {k: v for k, v in vars(args).items()
              if k not in ("command", "target", "pipeline_file", "config")}
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
                  "`resizer-pipeline compile --target vertex`", 2)
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
