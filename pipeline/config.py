"""One typed configuration object for the whole pipeline.

Defaults are the seed's setup (DenseNet-121, 300 -> 150, 16 filters, 1 residual
block); `make demo` and the tests override them for CPU-sized runs. Every
setting is checked in `validate()` before any component runs.
"""
import dataclasses
import os
from typing import Any, Dict, List, Optional

from PIL import Image

from components.image_example_gen import labels_csv
from pipeline import output_folder
from trainer.backbones import (APPLICATIONS, BACKBONES, WeightsError,
                               locate_weights)
from trainer.distribution import STRATEGIES
from trainer.preprocessing import TARGET_TRANSFORMS
from trainer.recipe import AUGMENTATIONS, LOSSES, OPTIMIZERS, SCHEDULES
from trainer.resizer import INTERPOLATIONS

LAYOUTS = ("auto", "flat", "splits")
BEAM_MODES = ("in_memory", "multi_threading", "multi_processing")
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigError(ValueError):
  """A setting is wrong; the message names it and says how to fix it."""


@dataclasses.dataclass
class DataConfig:
  path: str = ""
  layout: str = "auto"       # auto | flat (<class>/) | splits (<split>/<class>/)
  eval_percent: int = 20     # hash split for the flat layout and CSV labels
  max_pixels: int = 40_000_000
  # Labels from a CSV instead of class folders: a column of image paths
  # relative to `path`, the target column, optionally a split column.
  labels: Optional[str] = None
  target: Optional[str] = None   # the target column; None: the only one
  task: str = "auto"             # auto: numbers are regression, else classes
  target_transform: str = "none"  # regression: none | log1p, before z-score


@dataclasses.dataclass
class ModelConfig:
  backbone: str = "densenet121"
  input_size: int = 300
  target_size: int = 150
  filters: int = 16
  res_blocks: int = 1
  interpolation: str = "bilinear"
  weights: Optional[str] = None  # None | "imagenet" | path to a weights file


@dataclasses.dataclass
class TrainConfig:
  epochs: int = 10
  batch_size: int = 32       # per replica (global = this x replicas)
  learning_rate: float = 1e-3
  # Cosine after one warm-up epoch: on real photos it ended as high as or
  # above constant for both variants, as stable, and above the paper's step
  # schedule (bench/RESULTS.md §5).
  schedule: str = "cosine"   # trainer/recipe.py SCHEDULES
  warmup_epochs: int = 1     # linear warm-up before cosine decay (at most
                             # epochs - 1 are used)
  optimizer: str = "adam"    # trainer/recipe.py OPTIMIZERS
  ema: float = 0.0           # weight averaging momentum; 0: off
  # Training images BatchNorm statistics are recomputed from, with the final
  # weights, after every epoch (trainer/batchnorm.py); 0: Keras's moving
  # averages, which lag the weights.
  bn_recalibration: int = 1024
  label_smoothing: float = 0.1
  augment: str = "flip"      # none | flip | flip_crop (training only)
  loss: str = "mse"          # regression: trainer/recipe.py LOSSES
  # Memory the Trainer's shuffle buffer may hold; records = this / (input
  # size^2 x 3) bytes a transformed image. tfx_bsl's default of 10,000
  # records is ~2.7 GB at 300 px, per Trainer.
  shuffle_buffer_mb: int = 256
  seed: int = 42
  strategy: str = "auto"
  precision: str = "auto"


@dataclasses.dataclass
class EvalConfig:
  min_gain: float = 0.0          # learned top-1 minus bilinear top-1
  confidence: float = 0.95       # of the paired test behind both gates
  floor: Optional[float] = None  # absolute top-1 floor; None: above chance
  production_tolerance: float = 0.0  # how much worse than production is allowed
  push_equal: bool = False       # push even when the candidate is the model
                                 # already in production (same files)


@dataclasses.dataclass
class VertexConfig:
  """Where the same DAG runs on Google Cloud (`compile --target vertex`).

  One image (./Dockerfile) runs every pipeline step, every Dataflow worker and
  every training replica, so all of them have the project code installed.
  """
  project: str = ""
  region: str = "us-central1"
  image: str = ""  # REGION-docker.pkg.dev/PROJECT/REPO/resizer:TAG
  service_account: Optional[str] = None  # pipeline steps, training, Dataflow
  # Dataflow runs the Beam components (ExampleGen, StatisticsGen, Transform,
  # Evaluators).
  dataflow_temp_location: str = ""       # default: <pipeline root>/tmp
  dataflow_machine_type: str = "n1-standard-4"
  dataflow_max_workers: int = 10
  dataflow_setup_file: Optional[str] = None  # instead of the image on workers
  # Each Trainer is a Vertex custom job: a chief plus replica_count - 1 workers.
  trainer_machine_type: str = "n1-standard-8"
  accelerator_type: Optional[str] = "NVIDIA_TESLA_T4"
  accelerator_count: int = 1             # GPUs of a replica; 0: CPU only
  replica_count: int = 1
  # The Pusher also deploys to this Vertex endpoint; None: GCS push only.
  endpoint_name: Optional[str] = None
  serving_machine_type: str = "n1-standard-4"
  # Vertex's newest prebuilt TensorFlow Serving container.
  serving_image: str = (
      "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest")

  def beam_args(self, output: str) -> List[str]:
    args = ["--runner=DataflowRunner", f"--project={self.project}",
            f"--region={self.region}",
            "--temp_location=" + (self.dataflow_temp_location
                                  or os.path.join(output, "tmp")),
            f"--machine_type={self.dataflow_machine_type}",
            f"--max_num_workers={self.dataflow_max_workers}"]
    # Workers import trainer.preprocessing and the custom components: they run
    # the pipeline image (its entrypoint is Beam's boot, from the TFX image),
    # or pip-install the project from setup.py.
    if self.dataflow_setup_file:
      args.append(f"--setup_file={self.dataflow_setup_file}")
    else:
      args.append(f"--sdk_container_image={self.image}")
    if self.service_account:
      args.append(f"--service_account_email={self.service_account}")
    return args

  def worker_pool_specs(self) -> List[Dict[str, Any]]:
    """Vertex CustomJob pools: the chief, then replica_count - 1 workers.

    Vertex then sets TF_CONFIG with a chief and workers, from which
    trainer/distribution.py picks MultiWorkerMirroredStrategy.
    """
    def pool(replicas):
      machine = {"machine_type": self.trainer_machine_type}
      if self.accelerator_count:
        machine.update(accelerator_type=self.accelerator_type,
                       accelerator_count=self.accelerator_count)
      return {"machine_spec": machine, "replica_count": replicas,
              "container_spec": {"image_uri": self.image}}
    return [pool(1)] + ([pool(self.replica_count - 1)]
                        if self.replica_count > 1 else [])

  def validate(self, config: "PipelineConfig") -> None:
    checks = [
        (bool(self.project), "--project", "give the Google Cloud project"),
        (bool(self.region), "--region", "give the Vertex AI region"),
        (bool(self.image), "--image", "give the pipeline image built from "
         "./Dockerfile and pushed to Artifact Registry"),
        (config.output.startswith("gs://"), "--pipeline-root",
         "Vertex steps write to Cloud Storage: give gs://BUCKET/PATH"),
        (config.data.path.startswith("gs://"), "--data", "Vertex and "
         "Dataflow workers read Cloud Storage: give gs://BUCKET/PATH"),
        (self.dataflow_temp_location.startswith("gs://")
         or not self.dataflow_temp_location, "--dataflow-temp-location",
         "give a gs:// path"),
        (self.dataflow_max_workers >= 1, "--dataflow-max-workers",
         "must be at least 1"),
        (self.replica_count >= 1, "--replica-count", "must be at least 1"),
        (self.accelerator_count >= 0, "--accelerator-count",
         "must be 0 (CPU only) or more"),
        (bool(self.accelerator_type) or not self.accelerator_count,
         "--accelerator-type", "give the GPU type, e.g. NVIDIA_TESLA_T4, or "
         "--accelerator-count 0"),
        (self.replica_count == 1 or config.train.strategy in
         ("auto", "multi_worker"), "--strategy",
         f"{self.replica_count} replicas train as one cluster: use auto or "
         "multi_worker (MultiWorkerMirroredStrategy)"),
    ]
    for ok, setting, message in checks:
      if not ok:
        raise ConfigError(f"{setting}: {message}")


@dataclasses.dataclass
class PipelineConfig:
  output: str = ""
  name: str = "learnable-resizer"
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
  eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
  # Local Beam components run in this process by default: multi_processing
  # starts workers that each import TensorFlow, 12-17 s per Beam component on
  # 2 cores, longer than a few thousand images take to process; TF ops still
  # use every core. Big local datasets: --beam-mode multi_processing.
  beam_mode: str = "in_memory"
  beam_workers: int = 0          # multi_*: 0 is one per core
  enable_cache: bool = True
  vertex: Optional[VertexConfig] = None  # set: compile for Vertex AI Pipelines
  _inferred_task: Optional[str] = dataclasses.field(
      default=None, init=False, repr=False, compare=False)

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.output, "pipeline_root")

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output, "metadata.sqlite")

  @property
  def serving_dir(self) -> str:
    return os.path.join(self.output, "serving")

  @property
  def report_dir(self) -> str:
    return os.path.join(self.output, "report")

  def beam_pipeline_args(self) -> List[str]:
    if self.vertex is not None:
      return self.vertex.beam_args(self.output)
    workers = (1 if self.beam_mode == "in_memory"
               else self.beam_workers or os.cpu_count() or 1)
    args = [f"--direct_running_mode={self.beam_mode}",
            f"--direct_num_workers={workers}"]
    # DirectRunner workers run in this environment and stage nothing, but with
    # no dependency flag TFX builds a 52 MB "tfx_ephemeral" sdist before every
    # Beam component (1.6-8 s each here, bench/RESULTS.md). Naming the
    # project's setup.py, what Dataflow would install, skips it.
    setup_file = os.path.join(_PROJECT_ROOT, "setup.py")
    if os.path.exists(setup_file):
      args.append(f"--setup_file={setup_file}")
    return args

  @property
  def task(self) -> str:
    """classification | regression: as given, else from the labels CSV's
    target (read once, locally; remote CSVs need an explicit --task)."""
    if self.data.task != "auto":
      return self.data.task
    if not self.data.labels:
      return "classification"
    if self._inferred_task is None:
      self._inferred_task = labels_csv.read_labels(
          self.data.labels, self.data.target).task
    return self._inferred_task

  def transform_config(self) -> Dict[str, Any]:
    return {"input_size": self.model.input_size, "task": self.task,
            "target_transform": self.data.target_transform}

  def trainer_config(self, resizer: str) -> Dict[str, Any]:
    """custom_config of one Trainer: the two differ only in `resizer`.
    max_pixels bounds what the served model decodes, as ImageExampleGen
    bounds the training images (trainer/image_header.py)."""
    return {**dataclasses.asdict(self.model), **dataclasses.asdict(self.train),
            **self.transform_config(), "resizer": resizer,
            "max_pixels": self.data.max_pixels}

  def validate(self) -> None:
    m, t, d = self.model, self.train, self.data
    if self.vertex is not None:  # first: its messages name the compile flags
      self.vertex.validate(self)
    checks = [
        (m.backbone in BACKBONES, "--backbone",
         f"unknown backbone {m.backbone!r}; choose one of {', '.join(BACKBONES)}"),
        (0 < m.target_size < m.input_size, "--target-size",
         f"target size {m.target_size} must be positive and below the input "
         f"size {m.input_size}: the resizer downsamples"),
        (m.filters > 0 and m.res_blocks > 0, "--filters/--res-blocks",
         "filters and residual blocks must be at least 1"),
        (m.interpolation in INTERPOLATIONS, "--interpolation",
         f"choose one of {', '.join(INTERPOLATIONS)}"),
        (t.batch_size > 0, "--batch-size", "batch size must be at least 1"),
        (t.epochs > 0, "--epochs", "epochs must be at least 1"),
        (t.optimizer in OPTIMIZERS, "--optimizer",
         f"choose one of {', '.join(OPTIMIZERS)}"),
        (t.schedule in SCHEDULES, "--schedule",
         f"choose one of {', '.join(SCHEDULES)}"),
        (t.warmup_epochs >= 0, "--warmup-epochs", "must be 0 or more"),
        (0 <= t.ema < 1, "--ema", "must be 0 (off) or a momentum below 1, "
         "e.g. 0.99"),
        (t.bn_recalibration >= 0, "--bn-recalibration",
         "must be 0 (off) or a number of training images"),
        (t.shuffle_buffer_mb > 0, "--shuffle-buffer-mb",
         "must be at least 1 (MiB of transformed images to shuffle among)"),
        (t.augment in AUGMENTATIONS, "--augment",
         f"choose one of {', '.join(AUGMENTATIONS)}"),
        (t.precision in ("auto", "float32", "mixed_float16", "mixed_bfloat16"),
         "--precision", "choose auto, float32, mixed_float16 or mixed_bfloat16"),
        (t.strategy in STRATEGIES, "--strategy",
         f"choose one of {', '.join(STRATEGIES)}"),
        (0 <= t.label_smoothing < 1, "--label-smoothing", "must be in [0, 1)"),
        (0.5 <= self.eval.confidence < 1, "--confidence",
         "must be at least 0.5 and below 1 (0.95 is usual)"),
        (d.layout in LAYOUTS, "--layout", f"choose one of {', '.join(LAYOUTS)}"),
        (d.task in labels_csv.TASKS, "--task",
         f"choose one of {', '.join(labels_csv.TASKS)}"),
        (d.task != "regression" or bool(d.labels), "--task",
         "regression needs --labels FILE.csv with a numeric target column"),
        (d.target_transform in TARGET_TRANSFORMS, "--target-transform",
         f"choose one of {', '.join(TARGET_TRANSFORMS)}"),
        (t.loss in LOSSES, "--loss", f"choose one of {', '.join(LOSSES)}"),
        (0 < d.eval_percent < 100, "--eval-percent", "must be between 1 and 99"),
        (d.max_pixels > 0, "--max-pixels", "must be positive"),
        # Read, never raised: PIL's limit is process-wide (see ImageExampleGen).
        (Image.MAX_IMAGE_PIXELS is None
         or d.max_pixels <= 2 * Image.MAX_IMAGE_PIXELS, "--max-pixels",
         f"must be at most {2 * (Image.MAX_IMAGE_PIXELS or 0)}, PIL's own "
         "decompression-bomb limit"),
        (self.beam_mode in BEAM_MODES, "--beam-mode",
         f"choose one of {', '.join(BEAM_MODES)}"),
        (self.beam_workers >= 0, "--beam-workers", "must be 0 (one per core) "
         "or more"),
        (bool(d.path), "--data", "give the image folder"),
        (bool(self.output), "--output", "give an output folder"),
    ]
    for ok, setting, message in checks:
      if not ok:
        raise ConfigError(f"{setting}: {message}")
    if "://" not in d.path and not os.path.isdir(d.path):
      raise ConfigError(f"--data: {d.path} is not a folder; point it at a "
                        "folder of class subfolders (or run `resizer-pipeline "
                        "demo-data --output DIR` for sample data)")
    if "://" not in self.output and os.path.exists(self.output) and \
        not os.path.isdir(self.output):
      raise ConfigError(f"--output: {self.output} exists and is a file; "
                        "choose a folder path")
    try:
      output_folder.check_apart(d.path, self.output)
      # Vertex writes to Cloud Storage, which compiling (offline) can't read.
      if self.vertex is None and "://" not in self.output:
        output_folder.check_reusable(self.output)
    except output_folder.OutputError as e:
      raise ConfigError(str(e)) from None
    self._validate_labels()
    self._validate_weights()

  def _validate_labels(self) -> None:
    """A malformed labels CSV fails now, with the file, row and fix. Remote
    CSVs are read at run time (compiling is offline): give --task."""
    d = self.data
    if not d.labels:
      if d.target:
        raise ConfigError("--target: needs --labels FILE.csv")
      return
    if "://" in d.labels:
      if d.task == "auto":
        raise ConfigError(f"--task: {d.labels} is read at run time, so the "
                          "task can't be inferred now; give --task "
                          "classification or regression")
      return
    try:
      labels = labels_csv.read_labels(d.labels, d.target, d.task)
    except labels_csv.LabelsError as e:
      raise ConfigError(str(e)) from None
    if not labels.rows:
      raise ConfigError(f"--labels: {d.labels} has no usable row (first "
                        f"problem: {labels.rejected[0][1] if labels.rejected else 'no rows'})")
    self._inferred_task = labels.task

  def _validate_weights(self) -> None:
    """A bad --weights PATH fails now, not in the Trainers after ExampleGen
    and Transform ran. Only the path is checked: no model is built."""
    m = self.model
    if m.weights is None:
      return
    if m.weights == "imagenet":
      if m.backbone not in APPLICATIONS:
        raise ConfigError(f"--weights: backbone {m.backbone} has no ImageNet "
                          f"weights (only {', '.join(APPLICATIONS)}); use "
                          "--weights none or a PATH")
      return
    if self.vertex is not None:
      # Compiling is offline, and the training replicas read Cloud Storage.
      if not m.weights.startswith("gs://"):
        raise ConfigError(f"--weights: Vertex training replicas can't read "
                          f"{m.weights}; upload it (gcloud storage cp -r) and "
                          "give its gs:// path")
      return
    try:
      locate_weights(m.weights)
    except WeightsError as e:
      raise ConfigError(str(e)) from None
