"""The training recipe: the learning-rate schedule and the optimizer a
TrainConfig (pipeline/config.py) names, and the choice lists its fields take.

Schedules are per epoch:
  constant  the base rate throughout
  cosine    cosine decay to 0 over the epochs after a linear warm-up of
            `warmup_epochs` (0: none)
  step      the paper's: x0.94 every 2 epochs (use with --optimizer sgd,
            momentum 0.9, and label smoothing 0.1 for its whole recipe)

Importing this module loads no TensorFlow (the CLI reads the choices).
"""
import math

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine", "step")
AUGMENTATIONS = ("none", "flip", "flip_crop")
STEP_DECAY, STEP_EPOCHS = 0.94, 2


def lr_schedule(train):
  """epoch (0-based) -> learning rate, for a TrainConfig."""
  base, epochs = float(train.learning_rate), int(train.epochs)
  if train.schedule == "constant":
    return lambda epoch: base
  if train.schedule == "step":
    return lambda epoch: base * STEP_DECAY ** (epoch // STEP_EPOCHS)
  if train.schedule == "cosine":
    warmup = min(int(train.warmup_epochs), epochs - 1)

    def cosine(epoch):
      if epoch < warmup:  # linear: base/(w+1), 2 base/(w+1), ... below base
        return base * (epoch + 1) / (warmup + 1)
      progress = (epoch - warmup) / max(1, epochs - warmup)
      return 0.5 * base * (1 + math.cos(math.pi * progress))
    return cosine
  raise ValueError(f"schedule={train.schedule!r}: choose one of "
                   f"{', '.join(SCHEDULES)}")


def optimizer(train):
  """Adam or SGD (momentum 0.9); with ema > 0, Keras keeps an exponential
  moving average of the weights and fit ends by copying it into the model."""
  from trainer.keras_lib import keras  # pylint: disable=import-outside-toplevel
  lr, ema = float(train.learning_rate), float(train.ema)
  averaging = dict(use_ema=True, ema_momentum=ema) if ema else {}
  if train.optimizer == "adam":
    return keras.optimizers.Adam(lr, **averaging)
  if train.optimizer == "sgd":
    return keras.optimizers.SGD(lr, momentum=0.9, **averaging)
  raise ValueError(f"optimizer={train.optimizer!r}: choose one of "
                   f"{', '.join(OPTIMIZERS)}")
