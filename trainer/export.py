"""The served model: its signatures, all through the Transform graph, and the
SavedModel the Pusher pushes.

serving_default (tf.Examples), transform_features (for TFMA) and
serving_images (raw image bytes); the task (tasks/) says what they answer.
Each image's header is read first (trainer/image_header.py): one that can't be
read, or that would decode to more than max_pixels pixels, is never decoded.
A tiny blank image takes its place so the rest of the batch is answered, its
`error` output says why (the others' is ""), and its answers are blank (NaN,
"").
"""
import tensorflow as tf

from trainer import features, image_header
from trainer.preprocessing import model_pixels


def nan_where(mask, values):
  """values ([B] or [B, ...]) with NaN in the rows where mask ([B]) holds."""
  mask = tf.reshape(mask, [-1] + [1] * (values.shape.rank - 1))
  return tf.where(mask, tf.constant(float("nan"), values.dtype), values)


def serving_signatures(model, tft_output, class_names, size, task,
                       task_settings, max_pixels, stored_size=None):
  """{signature name: tf.function} of `model` for `task`; stored_size: the
  side the Transform graph stores images at (default: the model's input)."""
  stored_size = size if stored_size is None else stored_size
  model.tft_layer = tft_output.transform_features_layer()
  raw_spec = tft_output.raw_feature_spec()
  image_spec = {features.IMAGE: raw_spec[features.IMAGE]}
  labeled_spec = {k: raw_spec[k] for k in (features.IMAGE, task.raw_feature)}
  if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or \
      max_pixels <= 0:
    raise ValueError(f"max_pixels={max_pixels!r}: give the positive pixel "
                     "limit of the pipeline's --max-pixels")
  limit = max_pixels
  # Recorded on the model for clients (pipeline/predict.py checks files
  # against it before sending them).
  model.max_pixels = tf.function(lambda: tf.constant(limit, tf.int64),
                                 input_signature=[])
  placeholder = tf.io.encode_png(tf.zeros([1, 1, 3], tf.uint8)).numpy()

  # The model's forward pass is traced once and both predicting signatures
  # call that one function: inlining `model(...)` into each would trace the
  # whole network twice and store two copies of its graph in the SavedModel.
  # autograph=False: nothing here branches on a tensor, and converting every
  # Keras layer's call would make up most of the export's time.
  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None, size, size, 3], tf.float32, "pixels")])
  def forward(pixels):
    return model(pixels, training=False)

  def guarded(raw):
    """raw features with every refused image replaced, and the errors."""
    images = raw[features.IMAGE]
    encoded = tf.reshape(images, [-1])
    error = image_header.refusals(image_header.read(encoded), limit)
    safe = tf.where(tf.equal(error, ""), encoded, placeholder)
    return {**raw, features.IMAGE: tf.reshape(safe, tf.shape(images))}, error

  def predict(raw):
    raw, error = guarded(raw)
    transformed = model.tft_layer(raw)
    pixels = model_pixels(transformed[features.PIXELS], stored_size, size)
    return {**task.serving_outputs(forward(pixels), transformed, class_names,
                                   task_settings, tf.not_equal(error, "")),
            "error": error}

  @tf.function(autograph=False,
               input_signature=[tf.TensorSpec([None], tf.string, "examples")])
  def serve_examples(examples):
    return predict(tf.io.parse_example(examples, image_spec))

  @tf.function(autograph=False,
               input_signature=[tf.TensorSpec([None], tf.string, "examples")])
  def transform_features(examples):
    raw, error = guarded(tf.io.parse_example(examples, labeled_spec))
    return {**model.tft_layer(raw), "error": error}

  @tf.function(autograph=False,
               input_signature=[tf.TensorSpec([None], tf.string, "image_bytes")])
  def serve_images(image_bytes):
    return predict({features.IMAGE: image_bytes[:, tf.newaxis]})

  return {"serving_default": serve_examples,
          "transform_features": transform_features,
          "serving_images": serve_images}


def export(model, serving_dir, tft_output, class_names, input_size, task,
           task_settings, max_pixels, stored_size=None):
  """Saves the model with its serving signatures: what the Pusher pushes."""
  signatures = serving_signatures(model, tft_output, class_names, input_size,
                                  task, task_settings, max_pixels, stored_size)
  # save_traces=False: Keras would otherwise trace every layer's call for its
  # own loader, which slows the save and every load (TFMA, ResultsReport)
  # several times over. The signatures are what serving and TFMA run;
  # keras.models.load_model rebuilds layers from their configs (custom ones
  # are registered).
  model.save(serving_dir, save_format="tf", signatures=signatures,
             save_traces=False)
