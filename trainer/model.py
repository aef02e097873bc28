"""The two classifiers the pipeline compares.

    learned:  pixels -> learnable resizer -> backbone -> softmax
    bilinear: pixels -> bilinear resize   -> backbone -> softmax

Both are built from one seed, and the backbone + head ("classifier") is built
first under that seed, so both start from identical classifier weights (the
seed trained both "from the same initial checkpoint").
"""
import dataclasses

from trainer import backbones
from trainer.keras_lib import keras, layers
from trainer.resizer import learnable_resizer

RESIZERS = ("learned", "bilinear")
TASKS = ("classification", "regression")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """What to build; the Trainer's custom_config carries these fields."""
  num_classes: int            # 1 for regression
  input_size: int = 64
  target_size: int = 32
  backbone: str = "tiny_cnn"
  resizer: str = "learned"
  filters: int = 16
  res_blocks: int = 1
  interpolation: str = "bilinear"
  weights: str = None
  seed: int = 42
  task: str = "classification"

  def __post_init__(self):
    if self.resizer not in RESIZERS:
      raise ValueError(f"resizer={self.resizer!r}: choose learned or bilinear")
    if self.task not in TASKS:
      raise ValueError(f"task={self.task!r}: choose {' or '.join(TASKS)}")
    if self.task == "classification" and self.num_classes < 2:
      raise ValueError(f"need at least 2 classes, got {self.num_classes}")
    if not 0 < self.target_size < self.input_size:
      raise ValueError(f"target size {self.target_size} must be below input "
                       f"size {self.input_size} (the resizer downsamples)")


def build_classifier(spec):
  """Backbone + float32 head on target-size images in [0, 1]: softmax over
  the classes, or one linear output (the normalised target) for regression.
  ("classifier" names the backbone + head for both tasks.)"""
  keras.utils.set_random_seed(spec.seed)
  net = backbones.build_backbone(spec.backbone, spec.target_size, spec.weights)
  inputs = layers.Input((spec.target_size, spec.target_size, 3), name="resized")
  x = net(inputs)
  # float32 outputs even under a mixed-precision policy.
  if spec.task == "regression":
    outputs = layers.Dense(1, dtype="float32", name="prediction")(x)
  else:
    x = layers.Dense(spec.num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32",
                                name="probabilities")(x)
  return keras.Model(inputs, outputs, name="classifier")


def build_model(spec):
  """Input: [B, input_size, input_size, 3] pixels in [0, 255] (any dtype)."""
  classifier = build_classifier(spec)
  keras.utils.set_random_seed(spec.seed + 1)
  inputs = layers.Input((spec.input_size, spec.input_size, 3), name="pixels")
  x = layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
  size = (spec.target_size, spec.target_size)
  if spec.resizer == "learned":
    x = learnable_resizer(size, spec.filters, spec.res_blocks,
                          spec.interpolation)(x)
  else:
    x = layers.Resizing(*size, interpolation="bilinear", name="bilinear")(x)
  outputs = classifier(x)
  return keras.Model(inputs, outputs, name=f"{spec.resizer}_{spec.backbone}")
