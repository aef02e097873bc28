"""The TFMA gate: what is measured and where the thresholds apply; top-5,
always measured and reported only above 5 classes."""
import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs, metric_types

from components.results_report.component import build_results
from gate import stats, tfma_metric
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
          eval_config(*names), has_baseline=has_baseline,
          rubber_stamp=True)  # as TFX's Evaluator executor does
      assert tfma.metrics.metric_thresholds_from_metrics_specs(
          config.metrics_specs, eval_config=config) == {}
  config = eval_config("learned", "bilinear")
  paired = _metric(config, "PairedAccuracy")
  assert paired.module == "gate.tfma_metric"


def test_per_class_slices_confusion_matrix_and_top5():
  config = eval_config("candidate", "production")
  assert [list(s.feature_keys) for s in config.slicing_specs] == \
      [[], [features.LABEL]]
  names = {m.class_name for m in config.metrics_specs[0].metrics}
  assert "MultiClassConfusionMatrixPlot" in names
  # Whatever the class count: it is known only at run time on Vertex.
  assert _metric(config, "SparseTopKCategoricalAccuracy").config == '{"k": 5}'
  specs = {m.name: m.is_baseline for m in config.model_specs}
  assert specs == {"candidate": False, "production": True}
  regression = eval_config("candidate", "production", "regression")
  assert "SparseTopKCategoricalAccuracy" not in {
      m.class_name for m in regression.metrics_specs[0].metrics}


def top5_by_tfma(labels, candidate, production):
  """{model: top-5} by TFMA's own computations of the configured metric, as
  in the Evaluator (the pipeline's model specs), less Beam."""
  config = eval_config("candidate", "production")
  metric = _metric(config, "SparseTopKCategoricalAccuracy")
  del config.metrics_specs[:]
  config.metrics_specs.add().metrics.append(metric)
  # As TFX's Evaluator executor does: the metrics spec names the models.
  config = tfma.utils.update_eval_config_with_defaults(config,
                                                       has_baseline=True)
  values = {}
  for computation in metric_specs.to_computations(config.metrics_specs,
                                                  eval_config=config):
    combiner = computation.combiner
    combiner.setup()
    halves = []  # merged as Beam would
    for part in (slice(0, len(labels) // 2), slice(len(labels) // 2, None)):
      accumulator = combiner.create_accumulator()
      for y, p, q in zip(labels[part], candidate[part], production[part]):
        accumulator = combiner.add_input(
            accumulator, metric_types.StandardMetricInputs(
                labels=np.array([y]),
                predictions={
                    "candidate": {"probabilities": np.float32(p)},
                    "production": {"probabilities": np.float32(q)}},
                example_weights={"candidate": np.array([1.0]),
                                 "production": np.array([1.0])}))
      halves.append(accumulator)
    for key, value in combiner.extract_output(
        combiner.merge_accumulators(halves)).items():
      assert key.name == tfma_metric.TOP5
      values[key.model_name] = value
  return values


def test_top5_is_the_share_of_labels_among_the_5_highest_scores():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 8, size=40)
  candidate, production = rng.dirichlet(np.ones(8), size=(2, 40))  # no ties
  # Numpy: the label's score is beaten by fewer than 5 others.
  expected = {name: np.mean([np.sum(p > p[y]) < 5 for y, p in zip(labels, ps)])
              for name, ps in (("candidate", candidate),
                               ("production", production))}
  assert all(0.3 < v < 0.9 for v in expected.values())  # neither 0, 1 nor top-1
  assert expected["candidate"] != expected["production"]
  assert top5_by_tfma(labels, candidate, production) == \
      pytest.approx(expected)
  # TFMA does not refuse k > classes: every label is in the top 5 of 3.
  few = rng.dirichlet(np.ones(3), size=(2, 10))
  assert top5_by_tfma(rng.integers(0, 3, size=10), *few) == {
      "candidate": 1.0, "production": 1.0}


def report_top5(num_classes, top5):
  """results.json's top-5 for a run with this many classes (in the Transform
  vocabulary) and this top-5 from TFMA."""
  metrics = {"learned": {tfma_metric.TOP1: 0.6, tfma_metric.TOP5: top5},
             "bilinear": {tfma_metric.TOP1: 0.5, tfma_metric.TOP5: top5}}
  info = {"params": 1, "trainable_params": 1, "history": {},
          "class_names": [f"c{i}" for i in range(num_classes)]}
  selection = {**stats.paired_accuracy(100, 20, 10).as_dict(), "margin": 0.0,
               "outcome": "not_significant"}
  results = build_results(
      summary={"splits": {"train": 400, "eval": 100}, "rejected": 0,
               "seen": 500},
      infos={"learned": info, "bilinear": info},
      evaluation=(metrics, {}), production_evaluation=({}, {}),
      selected="bilinear", selection=selection, decision="push",
      production_comparison=None, pushed_path="serving/1",
      thresholds={"min_gain": 0.0, "floor": 0.2, "confidence": 0.95,
                  "production_tolerance": 0.0},
      num_classes=num_classes)
  learned = results["models"]["learned"]
  return learned["top5"], learned["metrics"].get(tfma_metric.TOP5)


def test_the_report_shows_top5_only_above_5_classes():
  assert report_top5(5, 1.0) == (None, None)
  assert report_top5(3, 1.0) == (None, None)
  assert report_top5(6, 0.875) == (0.875, 0.875)
