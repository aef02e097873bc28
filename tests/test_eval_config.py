"""The TFMA gate: what is measured and where the thresholds apply."""
import tensorflow_model_analysis as tfma

from pipeline.pipeline import eval_config
from trainer import features


def _metric(config, name):
  return next(m for m in config.metrics_specs[0].metrics if m.class_name == name)


def test_no_thresholds_so_the_evaluator_blesses_nothing():
  # The floor is applied by ModelSelector / PushDecision at run time
  # (gate/floor.py). Without thresholds TFX's Evaluator skips validation and
  # writes no `blessed` property: on Vertex, LatestBlessedModelStrategy's
  # query for blessed=1 then matches only PushDecision's blessing.
  for names in (("learned", "bilinear"), ("candidate", "production")):
    for has_baseline in (True, False):
      config = tfma.utils.update_eval_config_with_defaults(
          eval_config(*names, num_classes=10), has_baseline=has_baseline,
          rubber_stamp=True)  # as TFX's Evaluator executor does
      assert tfma.metrics.metric_thresholds_from_metrics_specs(
          config.metrics_specs, eval_config=config) == {}
  config = eval_config("learned", "bilinear")
  paired = _metric(config, "PairedAccuracy")
  assert paired.module == "gate.tfma_metric"


def test_per_class_slices_confusion_matrix_and_top5_when_many_classes():
  config = eval_config("candidate", "production", num_classes=3)
  assert [list(s.feature_keys) for s in config.slicing_specs] == \
      [[], [features.LABEL]]
  names = {m.class_name for m in config.metrics_specs[0].metrics}
  assert "MultiClassConfusionMatrixPlot" in names
  assert "SparseTopKCategoricalAccuracy" not in names
  many = eval_config("candidate", "production", num_classes=10)
  assert "SparseTopKCategoricalAccuracy" in {
      m.class_name for m in many.metrics_specs[0].metrics}
  specs = {m.name: m.is_baseline for m in many.model_specs}
  assert specs == {"candidate": False, "production": True}
