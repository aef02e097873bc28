"""`resizer-pipeline`: run the DAG locally, or write the demo dataset."""
import argparse
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from pipeline.config import ConfigError, PipelineConfig

# (flag, section, field, type, help); section None means PipelineConfig itself.
_OPTIONS = [
    ("--layout", "data", "layout", str,
     "auto | flat (<class>/ folders, hash split) | splits (train/ + "
     "validation/ or eval/)"),
    ("--eval-percent", "data", "eval_percent", int,
     "share of images hashed into eval for the flat layout"),
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
     "backbone weights: none | imagenet (downloads) | PATH (local or gs://)"),
    ("--epochs", "train", "epochs", int, "training epochs"),
    ("--batch-size", "train", "batch_size", int, "global batch size"),
    ("--learning-rate", "train", "learning_rate", float, "learning rate"),
    ("--optimizer", "train", "optimizer", str, "adam | sgd (momentum 0.9)"),
    ("--label-smoothing", "train", "label_smoothing", float, "label smoothing"),
    ("--augment", "train", "augment", str, "flip | none (training only)"),
    ("--seed", "train", "seed", int,
     "seed of the shared initial weights and the input order"),
    ("--strategy", "train", "strategy", str,
     "auto | default | mirrored | multi_worker | tpu"),
    ("--precision", "train", "precision", str,
     "auto | float32 | mixed_float16 | mixed_bfloat16"),
    ("--min-gain", "eval", "min_gain", float,
     "top-1 the learned model must gain over bilinear to be pushed"),
    ("--floor", "eval", "floor", float,
     "absolute top-1 floor (default: above chance, 1/classes)"),
    ("--beam-workers", None, "beam_workers", int,
     "Beam DirectRunner workers (0: one per core)"),
    ("--beam-mode", None, "beam_mode", str,
     "Beam DirectRunner mode: multi_processing | multi_threading | in_memory"),
    ("--name", None, "name", str, "pipeline name (MLMD context)"),
]


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
                   help="output folder: pipeline_root/, metadata.sqlite, "
                   "serving/ (pushed models), report/")
  defaults = _defaults()
  for flag, section, field, kind, help_text in _OPTIONS:
    owner = getattr(defaults, section) if section else defaults
    run.add_argument(flag, type=kind, default=getattr(owner, field),
                     help=help_text)
  run.add_argument("--no-cache", action="store_true",
                   help="rerun every component instead of reusing results")
  run.add_argument("--verbose", action="store_true",
                   help="show TFX and Beam logs")

  demo = sub.add_parser("demo-data", help="write the embedded demo dataset",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  demo.add_argument("--output", required=True, help="folder to write")
  demo.add_argument("--per-class", type=int, default=60, help="images a class")
  demo.add_argument("--size", type=int, default=96, help="image side in px")
  demo.add_argument("--classes", type=int, default=5, help="2 to 5")
  demo.add_argument("--seed", type=int, default=0, help="random seed")
  return parser


def config_from_args(args) -> PipelineConfig:
  config = PipelineConfig(output=args.output, enable_cache=not args.no_cache)
  config.data.path = args.data
  for flag, section, field, _, _ in _OPTIONS:
    value = getattr(args, flag[2:].replace("-", "_"))
    if field == "weights" and value in ("none", ""):
      value = None
    setattr(getattr(config, section) if section else config, field, value)
  return config


def main(argv=None):
  args = build_parser().parse_args(argv)
  if args.command == "demo-data":
    from pipeline.demo_data import write_demo_data  # pylint: disable=import-outside-toplevel
    n = write_demo_data(args.output, args.per_class, args.size, args.classes,
                        args.seed)
    print(f"wrote {n} images to {args.output}")
    return 0

  config = config_from_args(args)
  try:
    config.validate()
  except ConfigError as e:
    print(f"resizer-pipeline: error: {e}", file=sys.stderr)
    return 2
  if not args.verbose:
    logging.getLogger().setLevel(logging.WARNING)
  from pipeline import local_runner  # pylint: disable=import-outside-toplevel
  from components.results_report.component import results_table  # pylint: disable=import-outside-toplevel
  try:
    results = local_runner.run(config)
  except ConfigError as e:
    print(f"resizer-pipeline: error: {e}", file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    print(f"resizer-pipeline: run failed: {e.__class__.__name__}: {e}",
          file=sys.stderr)
    return 1
  print(results_table(results))
  print(f"report: {config.report_dir}/results.json; serving models: "
        f"{config.serving_dir}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
