"""One typed configuration for the whole pipeline: every setting, its default,
its choices and its help, written once.

The CLI's flags are made from these fields (pipeline/cli.py); the Trainer and
Transform get their part as custom_config and rebuild it with
`trainer_settings` (no defaults of their own); `validate()` checks every
setting before any component runs. Defaults are the seed's setup (DenseNet-121,
300 -> 150, 16 filters, 1 residual block); `make demo` and the tests override
them for CPU-sized runs. Importing this module loads no TensorFlow.
"""
import dataclasses
import os
import typing
from typing import Any, Dict, List, Optional, Tuple

from PIL import Image

import tasks
from gate import costs
from pipeline import candidates as candidates_lib
from pipeline import output_folder
from trainer.backbones import APPLICATIONS, BACKBONES
from trainer.distribution import PRECISIONS, STRATEGIES
from trainer.recipe import AUGMENTATIONS, OPTIMIZERS, SCHEDULES
from trainer.resizer import INTERPOLATIONS

LAYOUTS = ("auto", "flat", "splits")
BEAM_MODES = ("in_memory", "multi_threading", "multi_processing")
# KFP resolves a parameter that is exactly this to the pipeline job's name:
# the folder of the job's outputs, which the Vertex Trainers read their run
# from (trainer/tensorboard.py).
VERTEX_JOB_NAME = "{{$.pipeline_job_name}}"
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigError(ValueError):
  """A setting is wrong; the message names it and says how to fix it."""


def setting(default, help_text, choices=None, **metadata):
  """A field with its CLI help and choices (metadata the CLI and validate()
  read). metadata: flag (when not --field-name), what (the noun of an
  unknown choice), cli=False (not a generated flag), compile=False (local
  runs only), transform=True (a task setting Transform needs)."""
  return dataclasses.field(default=default, metadata={
      "help": help_text, "choices": choices, **metadata})


@dataclasses.dataclass
class DataConfig:
  path: str = setting("", "image folder: <class>/ subfolders, or train/ and "
                      "validation/ (or eval/) each holding <class>/ "
                      "subfolders", flag="--data", cli=False)
  layout: str = setting(
      "auto", "auto | flat (<class>/ folders, hash split) | splits (train/ + "
      "validation/ or eval/)", LAYOUTS)
  eval_percent: int = setting(
      20, "share of images hashed into eval for the flat layout and a labels "
      "CSV without a split column")
  max_pixels: int = setting(
      40_000_000, "refuse images with more pixels than this, before decoding "
      "(ingest, predict and the served model)")
  labels: Optional[str] = setting(
      None, "CSV of labels instead of class folders: a column of image paths "
      "relative to --data (image, path, file or filename), the target column, "
      "optionally split (train / validation or eval)")
  target: Optional[str] = setting(
      None, "the labels CSV's target column (default: its only other column)")
  task: str = setting(
      tasks.AUTO, f"{tasks.AUTO} ({tasks.inference_help()}) | "
      + " | ".join(tasks.names()), (tasks.AUTO,) + tasks.names())


@dataclasses.dataclass
class ModelConfig:
  backbone: str = setting("densenet121", " | ".join(BACKBONES), BACKBONES,
                          what="backbone")
  input_size: int = setting(300, "side of the images fed to the resizer")
  target_size: int = setting(150, "side of the resized images fed to the "
                             "backbone")
  filters: int = setting(16, "resizer filters (n)")
  res_blocks: int = setting(1, "resizer residual blocks (r)")
  interpolation: str = setting("bilinear", "resizer interpolation: "
                               + " | ".join(INTERPOLATIONS), INTERPOLATIONS)
  candidates: Optional[List[str]] = setting(
      None, "the models to train and compare, each RESIZER:SIZE or "
      "RESIZER:INPUT-TARGET (SIZE alone: from --input-size), e.g. "
      "bilinear:150 learned:300-150 learned:300-112 (default: learned and "
      "bilinear at --input-size -> --target-size)", nargs="+")
  weights: Optional[str] = setting(
      None, "backbone weights: none | imagenet (downloads) | PATH (local or "
      "gs://): a keras.applications no-top .h5 file, or a model this pipeline "
      "pushed (<output>/serving/<version>, or serving/ for the newest): warm "
      "start")


@dataclasses.dataclass
class TrainConfig:
  epochs: int = setting(10, "training epochs")
  batch_size: int = setting(32, "batch size per replica (global batch = this "
                            "x replicas)")
  learning_rate: float = setting(1e-3, "learning rate")
  # Cosine after one warm-up epoch: on real photos it ended as high as or
  # above constant for both variants, as stable, and above the paper's step
  # schedule (bench/RESULTS.md, "Stability").
  schedule: str = setting(
      "cosine", "learning-rate schedule, per epoch: constant | cosine (to 0, "
      "after --warmup-epochs) | step (the paper's: x0.94 every 2 epochs)",
      SCHEDULES)
  warmup_epochs: int = setting(1, "linear warm-up epochs before the cosine "
                               "decay (at most epochs - 1 are used)")
  optimizer: str = setting("adam", "adam | sgd (momentum 0.9)", OPTIMIZERS)
  ema: float = setting(0.0, "exponential moving average of the weights (e.g. "
                       "0.99); 0: off")
  bn_recalibration: int = setting(
      1024, "training images BatchNorm statistics are recomputed from after "
      "every epoch, with the current weights; 0: Keras's lagging moving "
      "averages")
  augment: str = setting("flip", "none | flip | flip_crop (applied at "
                         "training time only)", AUGMENTATIONS)
  # tfx_bsl's default buffer of 10,000 records holds input_size^2 x 3 bytes
  # each: gigabytes per Trainer at 300 px.
  shuffle_buffer_mb: int = setting(
      256, "memory of each Trainer's shuffle buffer, in MiB; it holds this / "
      "(input size^2 x 3 bytes) transformed images")
  seed: int = setting(42, "seed of the shared initial weights and the input "
                      "order")
  strategy: str = setting("auto", " | ".join(STRATEGIES), STRATEGIES)
  precision: str = setting("auto", " | ".join(PRECISIONS), PRECISIONS)


def _floor_help():
  return ("the floor both gates apply; " + "; ".join(
      f"{t.name}: {t.floor_help}" for t in tasks.all_tasks()))


@dataclasses.dataclass
class EvalConfig:
  min_gain: float = setting(
      0.0, "how far a costlier model must be ahead of a cheaper one (top-1, "
      "or an MSE reduction), with --confidence, to be selected: a cheaper "
      "candidate is dropped only when the best is ahead of it by more "
      "(negative: the best is kept over cheaper ones)")
  cost: str = setting(costs.DEFAULT, "what cheaper means: flops (of the "
                      "served model's graph, per image) | latency (batch 1, "
                      "on the Trainer's machine)", tuple(costs.COSTS))
  max_gflops: Optional[float] = setting(
      None, "choose only candidates within this many GFLOPs per image")
  max_latency_ms: Optional[float] = setting(
      None, "choose only candidates within this batch-1 latency in ms")
  confidence: float = setting(
      0.95, "confidence of the paired test behind both gates (learned vs "
      "bilinear, candidate vs production)")
  floor: Optional[float] = setting(None, _floor_help())
  production_tolerance: float = setting(
      0.0, "a candidate significantly behind production by more than this "
      "(with --confidence) is not pushed")
  push_equal: bool = setting(False, "push even when the candidate is the very "
                             "model already in production")


_IMAGE_HELP = ("give the pipeline image built from ./Dockerfile and pushed to "
               "Artifact Registry")


@dataclasses.dataclass
class VertexConfig:
  """Where the same DAG runs on Google Cloud (`compile --platform vertex`).

  One image (./Dockerfile) runs every pipeline step, every Dataflow worker and
  every training replica, so all of them have the project code installed.
  """
  # dataflow=True: a setting beam_args reads, so also a flag of `predict
  # --runner DataflowRunner`.
  project: str = setting("", "Google Cloud project", dataflow=True)
  region: str = setting("us-central1", "Vertex AI and Dataflow region",
                        dataflow=True)
  image: str = setting("", "pipeline image built from ./Dockerfile: it runs "
                       "every step, Dataflow worker and training replica "
                       "(REGION-docker.pkg.dev/PROJECT/REPO/resizer:TAG)",
                       dataflow=True)
  service_account: Optional[str] = setting(
      None, "service account of the steps, training jobs and Dataflow workers",
      dataflow=True)
  # Dataflow runs the Beam components (ExampleGen, StatisticsGen, Transform,
  # Evaluators).
  dataflow_temp_location: str = setting(
      "", "gs:// scratch folder of Dataflow (empty: <pipeline root>/tmp; "
      "predict: <--output's folder>/tmp)", dataflow=True)
  dataflow_machine_type: str = setting("n1-standard-4",
                                       "Dataflow worker machine type",
                                       dataflow=True)
  dataflow_max_workers: int = setting(
      10, "most Dataflow workers a Beam component may use", dataflow=True)
  dataflow_setup_file: Optional[str] = setting(
      None, "have Dataflow workers pip-install the project from this setup.py "
      "(/pipeline/setup.py in the image) instead of running the image",
      dataflow=True)
  # Each Trainer is a Vertex custom job: a chief plus replica_count - 1 workers.
  trainer_machine_type: str = setting("n1-standard-8", "machine type of each "
                                      "training replica")
  accelerator_type: Optional[str] = setting(
      "NVIDIA_TESLA_T4", "GPU of each training replica, e.g. NVIDIA_TESLA_T4, "
      "NVIDIA_L4")
  accelerator_count: int = setting(1, "GPUs of each training replica (0: CPU "
                                   "only)")
  replica_count: int = setting(
      1, "training machines of each Trainer; more than 1 trains with "
      "MultiWorkerMirroredStrategy")
  endpoint_name: Optional[str] = setting(
      None, "also deploy the pushed model to this Vertex AI endpoint (created "
      "if missing); unset: push to <pipeline root>/serving only")
  serving_machine_type: str = setting("n1-standard-4", "machine type of the "
                                      "endpoint")
  serving_image: str = setting(
      "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest",
      "TensorFlow Serving prediction container of the endpoint (Vertex's "
      "newest prebuilt one)")

  def beam_args(self, output: str) -> List[str]:
    args = ["--runner=DataflowRunner", f"--project={self.project}",
            f"--region={self.region}",
            "--temp_location=" + (self.dataflow_temp_location
                                  or os.path.join(output, "tmp")),
            f"--machine_type={self.dataflow_machine_type}",
            f"--max_num_workers={self.dataflow_max_workers}"]
    # Workers import the Transform module and the custom components: they run
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

  def _dataflow_checks(self):
    return [
        (bool(self.project), "--project", "give the Google Cloud project"),
        (bool(self.region), "--region", "give the Vertex AI region"),
        (self.dataflow_temp_location.startswith("gs://")
         or not self.dataflow_temp_location, "--dataflow-temp-location",
         "give a gs:// path"),
        (self.dataflow_max_workers >= 1, "--dataflow-max-workers",
         "must be at least 1"),
    ]

  def validate_dataflow(self) -> None:
    """The settings of a Beam job of its own on Dataflow (predict), whose
    workers need the project code: the image, or the setup file."""
    _raise_first(self._dataflow_checks() + [
        (bool(self.image or self.dataflow_setup_file), "--image",
         _IMAGE_HELP + ", or --dataflow-setup-file")])

  def validate(self, config: "PipelineConfig") -> None:
    checks = self._dataflow_checks() + [
        (bool(self.image), "--image", _IMAGE_HELP),
        (config.output.startswith("gs://"), "--pipeline-root",
         "Vertex steps write to Cloud Storage: give gs://BUCKET/PATH"),
        (config.data.path.startswith("gs://"), "--data", "Vertex and "
         "Dataflow workers read Cloud Storage: give gs://BUCKET/PATH"),
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
    _raise_first(checks)


def _raise_first(checks) -> None:
  """ConfigError for the first (ok, flag, message) that is not ok."""
  for ok, flag, message in checks:
    if not ok:
      raise ConfigError(f"{flag}: {message}")


def _task_settings() -> Dict[str, Any]:
  return {t.name: t.Settings() for t in tasks.all_tasks()}


@dataclasses.dataclass
class PipelineConfig:
  output: str = setting("", "output folder, new or empty or an earlier run's "
                        "(one run at a time): pipeline_root/, "
                        "metadata.sqlite, serving/ (pushed models), report/",
                        cli=False)
  name: str = setting("learnable-resizer", "pipeline name (MLMD context)")
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
  eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
  # Each task's own settings (tasks/<name>.py Settings), by task name.
  task_settings: Dict[str, Any] = dataclasses.field(
      default_factory=_task_settings)
  # Local Beam components run in this process by default: multi_processing
  # starts workers that each import TensorFlow, which costs more than a few
  # thousand images take to process; TF ops still use every core. Big local
  # datasets: --beam-mode multi_processing.
  beam_mode: str = setting(
      "in_memory", "Beam DirectRunner mode: in_memory | multi_threading | "
      "multi_processing (large local datasets)", BEAM_MODES, compile=False)
  beam_workers: int = setting(0, "Beam DirectRunner workers of the multi_* "
                              "modes (0: one per core)", compile=False)
  enable_cache: bool = setting(True, "rerun every component instead of "
                               "reusing results", flag="--no-cache")
  # Set by the local runner when a run starts (trainer/tensorboard.py).
  run_name: str = setting("", "this run's folder under tensorboard/",
                          cli=False, compile=False)
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

  @property
  def tensorboard_dir(self) -> str:
    """The log root: <run>/<model> of every Trainer, <run>/comparison."""
    return os.path.join(self.output, "tensorboard")

  @property
  def tensorboard_run(self) -> str:
    """What names this run's TensorBoard folder when compiled: on Vertex the
    job's name, resolved by KFP; locally the runner's run_name."""
    if self.vertex is not None:
      return VERTEX_JOB_NAME
    return self.run_name

  def beam_pipeline_args(self) -> List[str]:
    if self.vertex is not None:
      return self.vertex.beam_args(self.output)
    workers = (1 if self.beam_mode == "in_memory"
               else self.beam_workers or os.cpu_count() or 1)
    args = [f"--direct_running_mode={self.beam_mode}",
            f"--direct_num_workers={workers}"]
    # DirectRunner workers run in this environment and stage nothing, but with
    # no dependency flag TFX builds a "tfx_ephemeral" sdist of the project
    # before every Beam component. Naming the project's setup.py, what
    # Dataflow would install, skips it.
    setup_file = os.path.join(_PROJECT_ROOT, "setup.py")
    if os.path.exists(setup_file):
      args.append(f"--setup_file={setup_file}")
    return args

  @property
  def task(self) -> str:
    """The task's name: as given, else from the labels CSV's targets (read
    once, locally; remote CSVs need an explicit --task), else the default."""
    if self.data.task != tasks.AUTO:
      return self.data.task
    if not self.data.labels:
      return tasks.default().name
    if self._inferred_task is None:
      from components.image_example_gen import labels_csv  # pylint: disable=import-outside-toplevel
      self._inferred_task = labels_csv.read_labels(
          self.data.labels, self.data.target).task
    return self._inferred_task

  def candidate_list(self) -> List[candidates_lib.Candidate]:
    """The candidates to train (--candidates, else learned and bilinear at
    --input-size -> --target-size)."""
    m = self.model
    if m.candidates is None:
      return candidates_lib.default_pair(m.input_size, m.target_size)
    return candidates_lib.parse(m.candidates, m.input_size)

  def budgets(self) -> Dict[str, Optional[float]]:
    return {name: getattr(self.eval, name) for name in costs.BUDGETS}

  def transform_config(self) -> Dict[str, Any]:
    """custom_config of Transform: what its graph depends on, nothing more
    (a setting here reruns Transform when it changes). Images are stored at
    the largest candidate input."""
    settings = self.task_settings[self.task]
    return {"input_size": candidates_lib.stored_size(self.candidate_list()),
            "task": self.task,
            **{f.name: getattr(settings, f.name)
               for f in dataclasses.fields(settings)
               if f.metadata.get("transform")}}

  def trainer_config(self, candidate) -> Dict[str, Any]:
    """custom_config of one candidate's Trainer (a Candidate or its name;
    flat: the compiled DAG shows it as is); they differ only in the
    candidate's resizer and sizes. max_pixels bounds what the served model
    decodes, as ImageExampleGen bounds the training images."""
    every = self.candidate_list()
    if isinstance(candidate, str):
      candidate = next(c for c in every if c.name == candidate)
    model = dataclasses.replace(self.model, candidates=None,
                                input_size=candidate.input_size,
                                target_size=candidate.target_size)
    return {**_flat_settings(model, self.train,
                             self.task_settings[self.task], self.task,
                             self.data.max_pixels, candidate.resizer,
                             candidate.name,
                             candidates_lib.stored_size(every)),
            "tensorboard_dir": self.tensorboard_dir}

  def validate(self) -> None:
    m, t, d = self.model, self.train, self.data
    if self.vertex is not None:  # first: its messages name the compile flags
      self.vertex.validate(self)
    for section in (d, m, t, self.eval, self,
                    *self.task_settings.values()):
      _check_choices(section)
    checks = [
        # --candidates gives each candidate's sizes (checked when parsed).
        (m.candidates is not None or 0 < m.target_size < m.input_size,
         "--target-size",
         f"target size {m.target_size} must be positive and below the input "
         f"size {m.input_size}: the resizer downsamples"),
        (m.filters > 0 and m.res_blocks > 0, "--filters/--res-blocks",
         "filters and residual blocks must be at least 1"),
        (t.batch_size > 0, "--batch-size", "batch size must be at least 1"),
        (t.epochs > 0, "--epochs", "epochs must be at least 1"),
        (t.warmup_epochs >= 0, "--warmup-epochs", "must be 0 or more"),
        (0 <= t.ema < 1, "--ema", "must be 0 (off) or a momentum below 1, "
         "e.g. 0.99"),
        (t.bn_recalibration >= 0, "--bn-recalibration",
         "must be 0 (off) or a number of training images"),
        (t.shuffle_buffer_mb > 0, "--shuffle-buffer-mb",
         "must be at least 1 (MiB of transformed images to shuffle among)"),
        (0.5 <= self.eval.confidence < 1, "--confidence",
         "must be at least 0.5 and below 1 (0.95 is usual)"),
        (d.task in (tasks.AUTO,) + tasks.names() and (
            d.task == tasks.AUTO or tasks.get(d.task).from_folders
            or bool(d.labels)), "--task",
         f"{d.task} needs --labels FILE.csv with its target column"),
        (0 < d.eval_percent < 100, "--eval-percent", "must be between 1 and 99"),
        (d.max_pixels > 0, "--max-pixels", "must be positive"),
        # Read, never raised: PIL's limit is process-wide (see ImageExampleGen).
        (Image.MAX_IMAGE_PIXELS is None
         or d.max_pixels <= 2 * Image.MAX_IMAGE_PIXELS, "--max-pixels",
         f"must be at most {2 * (Image.MAX_IMAGE_PIXELS or 0)}, PIL's own "
         "decompression-bomb limit"),
        (self.beam_workers >= 0, "--beam-workers", "must be 0 (one per core) "
         "or more"),
        (bool(d.path), "--data", "give the image folder"),
        (bool(self.output), "--output", "give an output folder"),
    ]
    for limit in self.budgets():
      value = getattr(self.eval, limit)
      checks.append((value is None or value > 0,
                     "--" + limit.replace("_", "-"), "must be positive"))
    try:
      self.candidate_list()
    except candidates_lib.CandidateError as e:
      raise ConfigError(str(e)) from None
    for settings in self.task_settings.values():
      problem = settings.check()
      checks.append((problem is None, *(problem or ("", ""))))
    for ok, flag, message in checks:
      if not ok:
        raise ConfigError(f"{flag}: {message}")
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
    # pylint: disable=import-outside-toplevel
    from components.image_example_gen import labels_csv
    d = self.data
    if not d.labels:
      if d.target:
        raise ConfigError("--target: needs --labels FILE.csv")
      return
    if "://" in d.labels:
      if d.task == tasks.AUTO:
        raise ConfigError(f"--task: {d.labels} is read at run time, so the "
                          "task can't be inferred now; give --task "
                          + " or ".join(tasks.names()))
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
    # pylint: disable=import-outside-toplevel
    from trainer.backbones import WeightsError, locate_weights
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


def _flat_settings(model, train, task_settings, task, max_pixels, resizer,
                   candidate, stored_size) -> Dict[str, Any]:
  """A Trainer's settings, flat: its custom_config, less where it logs."""
  return {**dataclasses.asdict(model), **dataclasses.asdict(train),
          **dataclasses.asdict(task_settings), "task": task,
          "max_pixels": max_pixels, "resizer": resizer,
          "candidate": candidate, "stored_size": stored_size}


def flag(field: dataclasses.Field) -> str:
  return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _check_choices(section) -> None:
  for field in dataclasses.fields(section):
    choices = field.metadata.get("choices")
    value = getattr(section, field.name)
    if choices and value not in choices:
      what = field.metadata.get("what")
      unknown = f"unknown {what} {value!r}; " if what else ""
      raise ConfigError(f"{flag(field)}: {unknown}choose one of "
                        f"{', '.join(choices)}")


def field_type(field: dataclasses.Field) -> Tuple[type, bool]:
  """(the value's type, whether None is allowed) of a setting."""
  kind = field.type if not isinstance(field.type, str) else eval(  # pylint: disable=eval-used
      field.type, {**typing.__dict__, **globals()})
  args = typing.get_args(kind)
  if type(None) in args:
    return next(a for a in args if a is not type(None)), True
  return kind, False


@dataclasses.dataclass(frozen=True)
class TrainerSettings:
  """What a Trainer is given, typed: rebuilt from its custom_config."""
  model: ModelConfig
  train: TrainConfig
  task: str
  task_settings: Any
  max_pixels: int
  resizer: str
  candidate: str     # its name (pipeline/candidates.py)
  stored_size: int   # the side Transform stored the images at
  tensorboard_dir: str

  @classmethod
  def from_custom_config(cls, custom_config: Dict[str, Any]
                         ) -> "TrainerSettings":
    """KeyError-free: a missing setting is a ValueError naming it (the
    Trainer has no defaults of its own; PipelineConfig.trainer_config
    writes every one)."""
    def pick(kind):
      names = [f.name for f in dataclasses.fields(kind)]
      missing = [n for n in names if n not in custom_config]
      if missing:
        raise ValueError(f"custom_config lacks {', '.join(missing)}: build it "
                         "with PipelineConfig.trainer_config")
      return kind(**{n: custom_config[n] for n in names})
    for key in ("task", "max_pixels", "resizer", "candidate", "stored_size",
                "tensorboard_dir"):
      if key not in custom_config:
        raise ValueError(f"custom_config lacks {key}: build it with "
                         "PipelineConfig.trainer_config")
    task = tasks.get(custom_config["task"])
    return cls(model=pick(ModelConfig), train=pick(TrainConfig),
               task=task.name, task_settings=pick(task.Settings),
               max_pixels=int(custom_config["max_pixels"]),
               resizer=custom_config["resizer"],
               candidate=custom_config["candidate"],
               stored_size=int(custom_config["stored_size"]),
               tensorboard_dir=custom_config["tensorboard_dir"])

  @property
  def model_name(self) -> str:
    """The Trainer's model: its folder under the run in TensorBoard."""
    return self.candidate

  def hparams(self) -> Dict[str, Any]:
    """Every setting this Trainer was given (its HParams in TensorBoard)."""
    return _flat_settings(self.model, self.train, self.task_settings,
                          self.task, self.max_pixels, self.resizer,
                          self.candidate, self.stored_size)


def trainer_settings(custom_config: Dict[str, Any]) -> TrainerSettings:
  return TrainerSettings.from_custom_config(custom_config)


def transform_settings(custom_config: Dict[str, Any]) -> Tuple[int, str, Any]:
  """(input size, task name, the task's settings) of Transform's
  custom_config; a task setting Transform does not use keeps its default."""
  task = tasks.get(custom_config["task"])
  names = [f.name for f in dataclasses.fields(task.Settings)
           if f.metadata.get("transform")]
  return (int(custom_config["input_size"]), task.name,
          task.Settings(**{n: custom_config[n] for n in names}))
