"""One typed configuration object for the whole pipeline.

Defaults are the seed's setup (DenseNet-121, 300 -> 150, 16 filters, 1 residual
block); `make demo` and the tests override them for CPU-sized runs. Every
setting is checked in `validate()` before any component runs.
"""
import dataclasses
import os
from typing import Any, Dict, List, Optional

from trainer.backbones import BACKBONES
from trainer.distribution import STRATEGIES
from trainer.resizer import INTERPOLATIONS

LAYOUTS = ("auto", "flat", "splits")


class ConfigError(ValueError):
  """A setting is wrong; the message names it and says how to fix it."""


@dataclasses.dataclass
class DataConfig:
  path: str = ""
  layout: str = "auto"       # auto | flat (<class>/) | splits (<split>/<class>/)
  eval_percent: int = 20     # hash split for the flat layout
  max_pixels: int = 40_000_000


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
  batch_size: int = 32       # global batch
  learning_rate: float = 1e-3
  optimizer: str = "adam"
  label_smoothing: float = 0.1
  augment: str = "flip"      # flip | none
  seed: int = 42
  strategy: str = "auto"
  precision: str = "auto"


@dataclasses.dataclass
class EvalConfig:
  min_gain: float = 0.0          # learned top-1 minus bilinear top-1
  floor: Optional[float] = None  # absolute top-1 floor; None: above chance


@dataclasses.dataclass
class PipelineConfig:
  output: str = ""
  name: str = "learnable-resizer"
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
  eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
  beam_workers: int = 0          # 0: one per core
  beam_mode: str = "multi_processing"
  enable_cache: bool = True

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
    workers = self.beam_workers or os.cpu_count() or 1
    return [f"--direct_running_mode={self.beam_mode}",
            f"--direct_num_workers={workers}"]

  def trainer_config(self, resizer: str) -> Dict[str, Any]:
    """custom_config of one Trainer: the two differ only in `resizer`."""
    return {**dataclasses.asdict(self.model), **dataclasses.asdict(self.train),
            "resizer": resizer}

  def validate(self) -> None:
    m, t, d = self.model, self.train, self.data
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
        (t.optimizer in ("adam", "sgd"), "--optimizer", "choose adam or sgd"),
        (t.strategy in STRATEGIES, "--strategy",
         f"choose one of {', '.join(STRATEGIES)}"),
        (0 <= t.label_smoothing < 1, "--label-smoothing", "must be in [0, 1)"),
        (d.layout in LAYOUTS, "--layout", f"choose one of {', '.join(LAYOUTS)}"),
        (0 < d.eval_percent < 100, "--eval-percent", "must be between 1 and 99"),
        (d.max_pixels > 0, "--max-pixels", "must be positive"),
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
