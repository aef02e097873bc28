"""TFX Transform's module: the one graph that prepares images and targets for
training and serving (it is exported inside the served model).

Images: decoded and resized once (trainer/preprocessing.py). Targets: as the
task says (tasks/): class names -> ids through a vocabulary, or a number
z-scored with the training split's statistics.
"""
import tensorflow as tf

import tasks
from pipeline.config import transform_settings
from trainer import features
from trainer.preprocessing import image_pixels


def preprocessing_fn(inputs, custom_config):
  """custom_config: PipelineConfig.transform_config()."""
  size, task_name, settings = transform_settings(custom_config)
  pixels = image_pixels(inputs[features.IMAGE], size)
  batch = tf.shape(pixels)[0]
  return {features.PIXELS: pixels,
          **tasks.get(task_name).transform(inputs, batch, settings)}
