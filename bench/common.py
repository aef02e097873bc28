"""Shared by the real-data benchmarks: data folder, subsets, config, timing.

Import this before TensorFlow: it quiets TF's C++ logs for this process and
for the Beam worker processes it starts.
"""
import argparse
import logging
import os
import shutil
import sys
import warnings
from typing import Dict, List, Optional, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
warnings.filterwarnings("ignore", category=FutureWarning)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Read in place, never copied into the repository.
DEFAULT_DATA = os.path.normpath(os.path.join(
    REPO, "..", "shared", "datasets", "cats_and_dogs_filtered"))


def add_data_args(parser: argparse.ArgumentParser) -> None:
  """--data (the real images, read in place) and --limit (a subset copy)."""
  parser.add_argument("--data", default=DEFAULT_DATA,
                      help="<split>/<class>/<image> folder, read in place")
  parser.add_argument("--limit", type=int, default=0,
                      help="use a copy of the first N images (0: all)")


def image_files(data: str) -> List[str]:
  """Sorted paths, relative to data, of <split>/<class>/<file>."""
  files = []
  for split in sorted(os.listdir(data)):
    for label in sorted(os.listdir(os.path.join(data, split))):
      folder = os.path.join(data, split, label)
      if os.path.isdir(folder) and not label.startswith("."):
        files += [f"{split}/{label}/{name}"
                  for name in sorted(os.listdir(folder))
                  if not name.startswith(".")]
  return files


def subset(data: str, limit: Optional[int], folder: str) -> str:
  """`data` itself, or a copy of its first `limit` images in `folder`.

  Each <split>/<class> folder keeps its share of the images (at least one),
  so the train/validation ratio and class balance stay the same. Copies, not
  symlinks: ImageExampleGen rejects links that lead outside the data folder.
  """
  files = image_files(data)
  if not limit or limit >= len(files):
    return data
  groups: Dict[str, List[str]] = {}
  for rel in files:
    groups.setdefault(os.path.dirname(rel), []).append(rel)
  for group, members in groups.items():
    os.makedirs(os.path.join(folder, group), exist_ok=True)
    for rel in members[:max(1, round(limit * len(members) / len(files)))]:
      shutil.copyfile(os.path.join(data, rel), os.path.join(folder, rel))
  return folder


def cpu_seconds() -> float:
  """CPU time of this process and its finished children (Beam workers)."""
  t = os.times()
  return t.user + t.system + t.children_user + t.children_system


def quiet() -> None:
  """Warnings and errors only, as the CLI without --verbose."""
  logging.getLogger().setLevel(logging.WARNING)
  # Beam's DirectRunner relays every worker log line (start-up notices, the
  # python-snappy hint) as a warning; the ingest breakdown times the CRC.
  for name in ("apache_beam.runners.portability.local_job_service",
               "apache_beam.io.tfrecordio"):
    logging.getLogger(name).setLevel(logging.ERROR)
  try:
    # pylint: disable-next=import-outside-toplevel
    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.WARNING)
  except ImportError:
    pass


def add_training_args(parser: argparse.ArgumentParser, backbone="mobilenet_v2",
                      input_size=128, target_size=64, epochs=1,
                      batch_size=32) -> None:
  """The model/training flags shared with `resizer-pipeline run`."""
  parser.add_argument("--backbone", default=backbone)
  parser.add_argument("--input-size", type=int, default=input_size)
  parser.add_argument("--target-size", type=int, default=target_size)
  parser.add_argument("--epochs", type=int, default=epochs)
  parser.add_argument("--batch-size", type=int, default=batch_size)
  parser.add_argument("--learning-rate", type=float, default=1e-3)


def training_flags(args) -> List[str]:
  """The flags of add_training_args, as given."""
  return ["--backbone", args.backbone, "--input-size", str(args.input_size),
          "--target-size", str(args.target_size), "--epochs", str(args.epochs),
          "--batch-size", str(args.batch_size),
          "--learning-rate", str(args.learning_rate)]


def run_flags(args) -> List[str]:
  """The same settings as `resizer-pipeline run` flags.

  Random initial weights (nothing is downloaded), every component run, and
  top-1 floor 0: the gates still run, but a short run whose model misses the
  floor on one class slice makes ResultsReport fail (explain() formats a
  missing production top-1) and leaves no results.json.
  """
  return training_flags(args) + ["--weights", "none", "--no-cache",
                                 "--floor", "0"]


def pipeline_config(args, data: str, output: str):
  """The PipelineConfig the CLI would build from the same flags.

  Going through the CLI's own parser keeps every other setting (optimizer,
  label smoothing, augmentation, seed, thresholds) at the pipeline default.
  """
  from pipeline import cli  # pylint: disable=import-outside-toplevel
  return cli.config_from_args(cli.build_parser().parse_args(
      ["run", "--data", data, "--output", output] + run_flags(args)))


def component_durations(metadata_path: str) -> List[Tuple[str, float, str]]:
  """(node id, seconds, state) of each MLMD execution, in start order.

  An execution is created when its node starts (after input resolution) and
  last updated when its outputs are published, so the span covers the
  executor, its output writes and its MLMD publish.
  """
  # pylint: disable=import-outside-toplevel
  from ml_metadata.metadata_store import metadata_store
  from ml_metadata.proto import metadata_store_pb2
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  store = metadata_store.MetadataStore(config)
  state_names = metadata_store_pb2.Execution.State.Name
  rows = []
  for context in store.get_contexts_by_type("node"):
    node = context.name.split(".", 1)[-1]
    for e in store.get_executions_by_context(context.id):
      rows.append((e.create_time_since_epoch, node,
                   (e.last_update_time_since_epoch - e.create_time_since_epoch)
                   / 1000, state_names(e.last_known_state)))
  return [(node, seconds, state) for _, node, seconds, state in sorted(rows)]


def print_durations(rows: List[Tuple[str, float, str]], wall: float) -> None:
  total = sum(seconds for _, seconds, _ in rows)
  for node, seconds, state in rows:
    print(f"  {node:24s} {seconds:8.1f} s  {100 * seconds / wall:5.1f}%"
          f"{'' if state == 'COMPLETE' else '  ' + state}")
  print(f"  {'(between components)':24s} {wall - total:8.1f} s  "
        f"{100 * (wall - total) / wall:5.1f}%  (runner, imports, MLMD, "
        "input resolution)")


def print_trainer_phases(pipeline_root: str) -> None:
  """The Trainers' own split of their time (model_info.json "seconds")."""
  # pylint: disable=import-outside-toplevel
  import glob
  import json
  for path in sorted(glob.glob(os.path.join(
      pipeline_root, "Trainer_*", "model_run", "*", "model_info.json"))):
    with open(path) as f:
      seconds = json.load(f).get("seconds", {})
    trainer = path[len(pipeline_root):].strip("/").split("/")[0]
    print(f"  {trainer:24s} " + ", ".join(
        f"{phase} {value:.1f} s" for phase, value in seconds.items()))


def machine() -> str:
  memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
  return (f"{os.cpu_count()} CPU cores, {memory:.0f} GiB, Python "
          f"{sys.version.split()[0]}")
