"""The TFMA gate: what is measured and where the thresholds apply."""
import tensorflow_model_analysis as tfma

from pipeline.pipeline import eval_config
from trainer import features


def _metric(config, name):
  return next(m for m in config.metrics_specs[0].metrics if m.class_name == name)


def test_floor_applies_to_the_overall_slice_only_and_no_change_threshold():
  config = eval_config("learned", "bilinear", floor=0.5)
  top1 = _metric(config, "SparseCategoricalAccuracy")
  assert not top1.HasField("threshold")  # would also gate every class slice
  (per_slice,) = top1.per_slice_thresholds
  assert list(per_slice.slicing_specs) == [tfma.SlicingSpec()]
  assert per_slice.threshold.value_threshold.lower_bound.value == 0.5
  # The difference is judged by the paired test (gate/), not by TFMA's bare
  # change threshold.
  assert not per_slice.threshold.HasField("change_threshold")
  paired = _metric(config, "PairedAccuracy")
  assert paired.module == "gate.tfma_metric"


def test_per_class_slices_confusion_matrix_and_top5_when_many_classes():
  config = eval_config("candidate", "production", 0.1, num_classes=3)
  assert [list(s.feature_keys) for s in config.slicing_specs] == \
      [[], [features.LABEL]]
  names = {m.class_name for m in config.metrics_specs[0].metrics}
  assert "MultiClassConfusionMatrixPlot" in names
  assert "SparseTopKCategoricalAccuracy" not in names
  many = eval_config("candidate", "production", 0.1, num_classes=10)
  assert "SparseTopKCategoricalAccuracy" in {
      m.class_name for m in many.metrics_specs[0].metrics}
  specs = {m.name: m.is_baseline for m in many.model_specs}
  assert specs == {"candidate": False, "production": True}
