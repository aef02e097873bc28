"""The two models the pipeline compares.

    learned:  pixels -> learnable resizer -> backbone -> head
    bilinear: pixels -> bilinear resize   -> backbone -> head

The head is the task's (tasks/): softmax over the classes, or one linear
output. Both are built from one seed, and the backbone + head ("classifier") is built
first under that seed, so both start from identical classifier weights (the
seed trained both "from the same initial checkpoint").
"""
# pylint: disable=import-outside-toplevel
# Importing this module loads no TensorFlow: tasks/ names heads with Head.
import dataclasses
from typing import Optional

RESIZERS = ("learned", "bilinear")


@dataclasses.dataclass(frozen=True)
class Head:
  """The model's output layer, as the task wants it: units, activation
  (None: linear) and the name of the output."""
  units: int
  activation: Optional[str]
  name: str


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """What to build (trainer/training.py model_spec makes it from the typed
  config and the task's head)."""
  head: Head
  input_size: int = 64
  target_size: int = 32
  backbone: str = "tiny_cnn"
  resizer: str = "learned"
  filters: int = 16
  res_blocks: int = 1
  interpolation: str = "bilinear"
  weights: str = None
  seed: int = 42

  def __post_init__(self):
    if self.resizer not in RESIZERS:
      raise ValueError(f"resizer={self.resizer!r}: choose learned or bilinear")
    if not 0 < self.target_size < self.input_size:
      raise ValueError(f"target size {self.target_size} must be below input "
                       f"size {self.input_size} (the resizer downsamples)")


def build_classifier(spec):
  """Backbone + float32 head on target-size images in [0, 1] ("classifier"
  names the backbone + head whatever the task)."""
  from trainer import backbones
  from trainer.keras_lib import keras, layers
  keras.utils.set_random_seed(spec.seed)
  net = backbones.build_backbone(spec.backbone, spec.target_size, spec.weights)
  inputs = layers.Input((spec.target_size, spec.target_size, 3), name="resized")
  x = net(inputs)
  # float32 outputs even under a mixed-precision policy.
  head = spec.head
  if head.activation is None:
    outputs = layers.Dense(head.units, dtype="float32", name=head.name)(x)
  else:
    x = layers.Dense(head.units, name="logits")(x)
    outputs = layers.Activation(head.activation, dtype="float32",
                                name=head.name)(x)
  return keras.Model(inputs, outputs, name="classifier")


def build_model(spec):
  """Input: [B, input_size, input_size, 3] pixels in [0, 255] (any dtype)."""
  from trainer.keras_lib import keras, layers
  from trainer.resizer import learnable_resizer
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
