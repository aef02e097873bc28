"""The training recipe's choices, one list each for the CLI, the config and
the Trainer, and the optimizer and learning-rate schedule they name.

Schedules are per epoch:
  constant  the base rate throughout
  cosine    cosine decay to 0 over the epochs after a linear warm-up of
            `warmup_epochs` (0: none)
  step      the paper's: x0.94 every 2 epochs (use with --optimizer sgd,
            momentum 0.9, and label smoothing 0.1 for its whole recipe)
"""
import math

from trainer.keras_lib import keras

OPTIMIZERS = ("adam", "sgd")
LOSSES = ("mse", "huber")  # regression
SCHEDULES = ("constant", "cosine", "step")
AUGMENTATIONS = ("none", "flip", "flip_crop")
STEP_DECAY, STEP_EPOCHS = 0.94, 2


def lr_schedule(cfg):
  """epoch (0-based) -> learning rate."""
  base, epochs = float(cfg.get("learning_rate", 1e-3)), int(cfg["epochs"])
  name = cfg.get("schedule", "constant")
  if name == "constant":
    return lambda epoch: base
  if name == "step":
    return lambda epoch: base * STEP_DECAY ** (epoch // STEP_EPOCHS)
  if name == "cosine":
    warmup = min(int(cfg.get("warmup_epochs", 0)), epochs - 1)

    def cosine(epoch):
      if epoch < warmup:  # linear: base/(w+1), 2 base/(w+1), ... below base
        return base * (epoch + 1) / (warmup + 1)
      progress = (epoch - warmup) / max(1, epochs - warmup)
      return 0.5 * base * (1 + math.cos(math.pi * progress))
    return cosine
  raise ValueError(f"schedule={name!r}: choose one of {', '.join(SCHEDULES)}")


def optimizer(cfg):
  """Adam or SGD (momentum 0.9); with ema > 0, Keras keeps an exponential
  moving average of the weights and fit ends by copying it into the model."""
  lr = float(cfg.get("learning_rate", 1e-3))
  ema = float(cfg.get("ema", 0.0))
  averaging = dict(use_ema=True, ema_momentum=ema) if ema else {}
  name = cfg.get("optimizer", "adam")
  if name == "adam":
    return keras.optimizers.Adam(lr, **averaging)
  if name == "sgd":
    return keras.optimizers.SGD(lr, momentum=0.9, **averaging)
  raise ValueError(f"optimizer={name!r}: choose one of {', '.join(OPTIMIZERS)}")


def loss(cfg):
  """The regression loss, on the normalised target."""
  name = cfg.get("loss", "mse")
  if name == "mse":
    return keras.losses.MeanSquaredError()
  if name == "huber":  # delta 1: one standard deviation of the target
    return keras.losses.Huber(delta=1.0)
  raise ValueError(f"loss={name!r}: choose one of {', '.join(LOSSES)}")
