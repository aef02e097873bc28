"""Regression: a number per image (a CSV column: a photo's score, a count),
one linear output on the z-scored target, MSE judged by a paired t-test on the
per-image squared errors, and a floor of "better than predicting the training
mean". The served model answers in the target's own units."""
# pylint: disable=import-outside-toplevel
import dataclasses
import math

from tasks.base import Task, no_pair
from trainer import features
from trainer.model import Head
from trainer.text import escape

LOSSES = ("mse", "huber")          # on the z-scored target
TARGET_TRANSFORMS = ("none", "log1p")  # applied before the z-score
NUMERIC_SHARE = 0.9  # of non-empty targets, for --task auto to pick this task


@dataclasses.dataclass
class Settings:
  loss: str = dataclasses.field(default="mse", metadata={
      "help": "loss on the z-scored target", "choices": LOSSES})
  target_transform: str = dataclasses.field(default="none", metadata={
      "help": "applied to the target before the z-score (log1p: counts)",
      "choices": TARGET_TRANSFORMS, "transform": True})

  def check(self):
    """(flag, message) of the first bad setting, or None."""
    return None  # the choices say it all


def is_number(text):
  try:
    return math.isfinite(float(text))
  except ValueError:
    return False


def forward_target(target, transform):
  import tensorflow as tf
  return tf.math.log1p(target) if transform == "log1p" else target


def inverse_target(value, transform):
  import tensorflow as tf
  return tf.math.expm1(value) if transform == "log1p" else value


def rmse(metrics):
  """RMSE from TFMA's mean squared error (None when not measured)."""
  from gate.tfma_metric import MSE
  return metrics[MSE] ** 0.5 if MSE in metrics else None


class Regression(Task):
  name = "regression"
  raw_feature = features.TARGET
  claim_help = f"a labels CSV with numbers in {NUMERIC_SHARE:.0%} of targets"
  Settings = Settings
  floor_help = ("the RMSE a model must stay below (default: predicting the "
                "training mean's)")
  score, short = "rmse", "rmse"
  score_label = "RMSE"  # the score, as the progress lines name it
  higher_is_better = False
  label_key = features.TARGET_NORM
  difference_unit = "MSE reduction"
  figures = ("predicted",)  # predicted.png: predicted against true targets

  # Ingest.
  def claims(self, targets):
    """Numbers in (nearly) every target; the few others become rejected
    rows."""
    numeric = [t for t in targets if is_number(t)]
    return bool(targets) and len(numeric) >= NUMERIC_SHARE * len(targets)

  def target_problem(self, text, where):
    if not is_number(text):
      return f"target '{escape(text)}' for {where} is not a number"
    return ""

  def parse_target(self, text):
    return float(text)

  def example_feature(self, value):
    import tensorflow as tf
    return features.TARGET, tf.train.Feature(
        float_list=tf.train.FloatList(value=[value]))

  def curate_schema(self, base, statistics):
    """image/class replaced by the float image/target, required, with its
    observed range over every split: the range documents the data, and a
    split's own extremes are no anomaly."""
    from tensorflow_metadata.proto.v0 import schema_pb2
    low, high = float("inf"), float("-inf")
    for stats in statistics.values():
      for feature in stats.datasets[0].features:
        if feature.path.step == [features.TARGET]:
          low = min(low, feature.num_stats.min)
          high = max(high, feature.num_stats.max)
    if low > high:
      raise ValueError(f"the training split has no {features.TARGET} values")
    kept = [f for f in base.feature if f.name != features.LABEL]
    del base.feature[:]
    base.feature.extend(kept)
    kept = [d for d in base.string_domain if d.name != features.LABEL]
    del base.string_domain[:]
    base.string_domain.extend(kept)
    target = base.feature.add(name=features.TARGET, type=schema_pb2.FLOAT)
    target.float_domain.min, target.float_domain.max = low, high
    target.presence.min_fraction, target.presence.min_count = 1.0, 1
    target.shape.dim.add(size=1)
    return base

  def schema_line(self, schema):
    import tensorflow_data_validation as tfdv
    domain = tfdv.get_feature(schema, features.TARGET).float_domain
    return f"numeric target from {domain.min:g} to {domain.max:g}"

  # Transform and Trainer.
  def transform(self, inputs, batch, settings):
    """The target z-scored with the training split's mean and deviation,
    constants of the graph; with the image alone (serving) only the
    constants, which need no target."""
    import tensorflow as tf
    import tensorflow_transform as tft
    from trainer.preprocessing import dense_1d
    raw = tf.reshape(tf.cast(dense_1d(inputs[features.TARGET]), tf.float32),
                     [-1])
    forward = forward_target(raw, settings.target_transform)
    mean = tft.mean(forward)
    std = tf.sqrt(tf.maximum(tft.var(forward), 1e-12))
    return {features.TARGET_RAW: raw,
            features.TARGET_NORM: (forward - mean) / std,
            features.TARGET_MEAN: tf.fill([batch], mean),
            features.TARGET_STD: tf.fill([batch], std)}

  def head(self, num_classes):
    return Head(1, None, "prediction")

  def prepare_label(self, label, num_classes):
    import tensorflow as tf
    return tf.reshape(tf.cast(label, tf.float32), [-1, 1])

  def compile(self, model, optimizer, settings):
    from trainer.keras_lib import keras
    losses = {"mse": keras.losses.MeanSquaredError,
              # delta 1: one standard deviation of the target
              "huber": lambda: keras.losses.Huber(delta=1.0)}
    if settings.loss not in losses:
      raise ValueError(f"loss={settings.loss!r}: choose one of "
                       f"{', '.join(LOSSES)}")
    model.compile(optimizer=optimizer, loss=losses[settings.loss](),
                  metrics=[keras.metrics.RootMeanSquaredError(name=self.score),
                           keras.metrics.MeanAbsoluteError(name="mae")])

  def serving_outputs(self, outputs, transformed, class_names, settings,
                      refused):
    from trainer.export import nan_where
    # Back from the z-score, then from log1p if it was used.
    mean = transformed[features.TARGET_MEAN]
    value = outputs[:, 0] * transformed[features.TARGET_STD] + mean
    return {"prediction": nan_where(
                refused, inverse_target(value, settings.target_transform)),
            # The constant predictor the floor is measured against
            # (gate/tfma_metric.py), in the same units.
            "training_mean": inverse_target(mean, settings.target_transform)}

  def trainer_phrase(self, info):
    return f"eval RMSE {info['eval_rmse']:.3f} (normalised target)"

  # TFMA.
  def eval_keys(self):
    return features.TARGET_RAW, "prediction"

  def tfma_metrics(self):
    import tensorflow_model_analysis as tfma
    from gate import tfma_metric
    return [tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name="MeanSquaredError"),
            tfma.MetricConfig(class_name="MeanAbsoluteError"),
            tfma.MetricConfig(class_name="PairedSquaredError",
                              module=tfma_metric.__name__)]

  def slicing_specs(self):
    import tensorflow_model_analysis as tfma
    return [tfma.SlicingSpec()]

  # Gates: the floor is a ceiling on RMSE.
  def score_of(self, metrics):
    return rmse(metrics)

  def floor(self, configured, evaluation_uri, transform_graph_uri):
    """An RMSE a model must stay below: configured, else that of predicting
    the training mean (measured beside every model on the eval examples)."""
    from gate import tfma_metric
    if configured is not None:
      return float(configured), 0
    return float(tfma_metric.constant_squared_error(
        tfma_metric.overall_metrics(evaluation_uri)) ** 0.5), 0

  def clears(self, score, floor):
    return score < floor

  def compare(self, evaluation_uri, model_name, confidence):
    from gate import tfma_metric
    v = tfma_metric.load_values(evaluation_uri, model_name)
    if tfma_metric.SQ_EXAMPLES not in v:
      raise RuntimeError(f"{evaluation_uri}: no PairedSquaredError sums for "
                         f"{model_name!r}; the Evaluator must run with a "
                         "baseline and gate.tfma_metric's metric")
    return _comparison(v, confidence)

  def compare_pair(self, evaluation_uri, a, b, confidence):
    from gate import tfma_metric
    v = tfma_metric.load_pair(evaluation_uri, a, b)
    if tfma_metric.SQ_EXAMPLES not in v:
      raise RuntimeError(no_pair(evaluation_uri, "PairedSquaredError sums", a,
                                 b))
    return _comparison(v, confidence)

  # Report.
  def text(self, score):
    return f"RMSE {score:.4g}"

  def floor_text(self, floor):
    return (f"the floor RMSE {floor:.4g} (default: predicting the training "
            "mean)")

  def margin_text(self, margin):
    return f"an MSE of {margin:.4g}"

  tolerance_text = margin_text

  def clears_verb(self):
    return "beats"

  def under_floor_clause(self, learned_text, floor):
    return (f"the learned resizer ({learned_text}) does not beat "
            f"{self.floor_text(floor)}")

  def both_under_clause(self, floor):
    return f": neither beats {self.floor_text(floor)}."

  def model_results(self, name, info, overall, per_class, num_classes):
    from gate.tfma_metric import MAE
    return {"metrics": dict(overall[name]), "rmse": rmse(overall[name]),
            "mae": overall[name][MAE],
            # in standard deviations of the (transformed) training targets
            "train_sample_rmse_normalized": info.get("train_sample_rmse")}

  def headline(self, model):
    return model["rmse"]

  def production_results(self, candidate, production):
    production_rmse = rmse(production)
    return {"candidate_rmse": rmse(candidate),
            "production_rmse": production_rmse,
            "production_score_text": (None if production_rmse is None
                                      else self.text(production_rmse))}

  def production_text(self, production):
    return production["production_score_text"]

  def thresholds(self, overall):
    from gate.tfma_metric import constant_squared_error
    return {"mean_predictor_rmse": constant_squared_error(overall) ** 0.5,
            "floor_means": "the RMSE a model must stay below"}

  def table_header(self):
    return ("| model | parameters (M) | RMSE (eval) | MAE (eval) |",
            "|---|---|---|---|")

  def table_cells(self, model):
    return f"{model['rmse']:.4g} | {model['mae']:.4g}"

  def difference_text(self, value):
    return f"{value:+.4g}"

  def card_metrics(self, model):
    named = [("RMSE", "eval", model["rmse"]), ("MAE", "eval", model["mae"]),
             ("RMSE (normalised target)", "train sample",
              model.get("train_sample_rmse_normalized"))]
    return [row for row in named if row[2] is not None]

  def card_use_case(self):
    return ("Predict the numeric target of images like the training set's, "
            "in the target's own units; far outside the training targets' "
            "range the answer is an extrapolation.")

  def card_output_format(self):
    return ("prediction (in the target's units), training_mean (the "
            "constant predictor the floor is measured against) and error; "
            "NaN for an image that could not be decoded, with error saying "
            "why")



def _comparison(values, confidence):
  """The paired t-test from the paired sums (tfma_metric's names)."""
  from gate import stats, tfma_metric
  return stats.paired_squared_error(
      values[tfma_metric.SQ_EXAMPLES], values[tfma_metric.SQ_DIFF_SUM],
      values[tfma_metric.SQ_DIFF_SUMSQ], confidence=confidence)


TASK = Regression()
