"""TFMA metrics that keep what a paired test needs, per eval example.

PairedAccuracy counts which model was right (class labels);
PairedSquaredError sums the per-example differences of squared errors and the
squared error of predicting the training mean (the floor) (numeric targets).

TFMA runs the candidate and the baseline on the same examples in one pass; this
metric (modelled on TFMA's own flip-rate metrics, which also read both models'
predictions per example) keeps the paired 2x2 table that a paired test needs
and top-1 alone cannot give: how many examples only the candidate got right,
and how many only the baseline did. It is declared in the EvalConfig as
MetricConfig(class_name="PairedAccuracy", module="gate.tfma_metric").
With several models and no baseline (the sweep) both keep the same for every
pair of models, read by load_pair.
"""
import dataclasses
import functools
import re

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.utils import model_util

NAME = "paired_accuracy"
EXAMPLES, CANDIDATE_ONLY, BASELINE_ONLY = (
    "paired_examples", "paired_candidate_only", "paired_baseline_only")


class _Sums:
  """An accumulator of float fields that add up under merge."""

  def merge(self, other):
    for field in dataclasses.fields(self):
      setattr(self, field.name,
              getattr(self, field.name) + getattr(other, field.name))


@dataclasses.dataclass
class _Table(_Sums):
  examples: float = 0.0
  candidate_only: float = 0.0
  baseline_only: float = 0.0


def _correct(element, eval_config, model_name, output_name):
  """Whether `model_name`'s top class is the example's label."""
  label, prediction, _ = next(metric_util.to_label_prediction_example_weight(
      inputs=element, eval_config=eval_config, model_name=model_name,
      output_name=output_name, flatten=False, squeeze=False))
  return int(np.argmax(prediction)) == int(np.asarray(label).reshape(-1)[0])


def _label_prediction(element, eval_config, model_name, output_name):
  """(label, prediction) of a numeric target, as floats."""
  label, prediction, _ = next(metric_util.to_label_prediction_example_weight(
      inputs=element, eval_config=eval_config, model_name=model_name,
      output_name=output_name))
  return float(np.ravel(label)[0]), float(np.ravel(prediction)[0])


def _squared_error(element, eval_config, model_name, output_name):
  label, prediction = _label_prediction(element, eval_config, model_name,
                                        output_name)
  return (prediction - label) ** 2


class _PairedCombiner(beam.CombineFn):
  """Adds one example at a time: is each model's top class the label?"""

  def __init__(self, key, eval_config, model_name, baseline_name, output_name):
    self._key, self._eval_config = key, eval_config
    self._models = (model_name, baseline_name)
    self._output_name = output_name

  def create_accumulator(self):
    return _Table()

  def add_input(self, accumulator, element):
    candidate, baseline = (
        _correct(element, self._eval_config, m, self._output_name)
        for m in self._models)
    accumulator.merge(_Table(1.0, float(candidate and not baseline),
                             float(baseline and not candidate)))
    return accumulator

  def merge_accumulators(self, accumulators):
    accumulators = iter(accumulators)
    result = next(accumulators)
    for accumulator in accumulators:
      result.merge(accumulator)
    return result

  def extract_output(self, accumulator):
    return {self._key: accumulator}


class PairedAccuracy(metric_types.Metric):
  """Three diff metrics of the candidate: examples, candidate-only and
  baseline-only correct. Without a baseline, the same three of every pair of
  models (see _all_pairs)."""

  def __init__(self, name=NAME):
    super().__init__(self._computations, name=name)

  @staticmethod
  def _computations(name, eval_config, model_names, output_names=("",),
                    **_):
    baseline = model_util.get_baseline_model_spec(eval_config)
    if baseline is None:
      return _all_pairs(name, eval_config, model_names, output_names,
                        _correct, _right_only,
                        (EXAMPLES, CANDIDATE_ONLY, BASELINE_ONLY))
    computations = []
    for model_name in model_names:
      if model_name == baseline.name:
        continue
      for output_name in output_names or ("",):
        table_key = metric_types.MetricKey(
            name=f"_{name}_table", model_name=model_name,
            output_name=output_name, is_diff=True)
        keys = [metric_types.MetricKey(name=n, model_name=model_name,
                                       output_name=output_name, is_diff=True)
                for n in (EXAMPLES, CANDIDATE_ONLY, BASELINE_ONLY)]
        computations.append(metric_types.MetricComputation(
            keys=[table_key], preprocessors=None,
            combiner=_PairedCombiner(table_key, eval_config, model_name,
                                     baseline.name, output_name)))
        computations.append(metric_types.DerivedMetricComputation(
            keys=keys, result=functools.partial(_unpack, table_key, keys)))
    return computations


def _unpack(table_key, keys, metrics):
  table = metrics[table_key]
  return dict(zip(keys, (table.examples, table.candidate_only,
                         table.baseline_only)))


# Numeric targets. d = (baseline error)^2 - (candidate error)^2: positive when the
# candidate is closer. CONSTANT_SE: squared error of the model's
# `training_mean` output, the constant predictor the floor compares against.
SQ_EXAMPLES, SQ_DIFF_SUM, SQ_DIFF_SUMSQ = (
    "paired_sq_examples", "paired_sq_diff_sum", "paired_sq_diff_sumsq")
CONSTANT_SE, CONSTANT_OUTPUT = "constant_squared_error", "training_mean"
MSE = "mean_squared_error"  # TFMA's MeanSquaredError


@dataclasses.dataclass
class _SquaredErrorSums(_Sums):
  examples: float = 0.0
  diff: float = 0.0
  diff_sq: float = 0.0
  constant_se: float = 0.0


class _SquaredErrorCombiner(_PairedCombiner):
  """Baseline None: only the constant predictor's error."""

  def create_accumulator(self):
    return _SquaredErrorSums()

  def add_input(self, accumulator, element):
    model_name, baseline_name = self._models
    label, candidate = _label_prediction(element, self._eval_config,
                                         model_name, self._output_name)
    outputs = element.predictions
    if isinstance(outputs.get(model_name), dict):  # several models evaluated
      outputs = outputs[model_name]
    constant = float(np.ravel(outputs[CONSTANT_OUTPUT])[0])
    d = 0.0
    if baseline_name is not None:
      _, baseline = _label_prediction(element, self._eval_config,
                                      baseline_name, self._output_name)
      d = (baseline - label) ** 2 - (candidate - label) ** 2
    accumulator.merge(_SquaredErrorSums(1.0, d, d * d,
                                        (constant - label) ** 2))
    return accumulator


class PairedSquaredError(metric_types.Metric):
  """Per model, the baseline included: the constant predictor's mean squared
  error (the floor of whichever model is selected); per candidate model with
  a baseline, also the examples and the sum and sum of squares of d. Without
  a baseline, those three of every pair of models (see _all_pairs)."""

  def __init__(self, name="paired_squared_error"):
    super().__init__(self._computations, name=name)

  @staticmethod
  def _computations(name, eval_config, model_names, output_names=("",),
                    **_):
    baseline = model_util.get_baseline_model_spec(eval_config)
    baseline_name = baseline.name if baseline else None
    computations = []
    for model_name in model_names:
      # The baseline is paired with nothing: its constant error alone.
      paired_with = None if model_name == baseline_name else baseline_name
      for output_name in output_names or ("",):
        key = functools.partial(metric_types.MetricKey, model_name=model_name,
                                output_name=output_name)
        sums_key = key(name=f"_{name}_sums")
        keys = [key(name=CONSTANT_SE)]
        if paired_with is not None:
          keys += [key(name=n, is_diff=True)
                   for n in (SQ_EXAMPLES, SQ_DIFF_SUM, SQ_DIFF_SUMSQ)]
        computations.append(metric_types.MetricComputation(
            keys=[sums_key], preprocessors=None,
            combiner=_SquaredErrorCombiner(sums_key, eval_config, model_name,
                                           paired_with, output_name)))
        computations.append(metric_types.DerivedMetricComputation(
            keys=keys, result=functools.partial(_unpack_sums, sums_key, keys)))
    if baseline_name is None:
      computations += _all_pairs(name, eval_config, model_names, output_names,
                                 _squared_error, _squared_error_diffs,
                                 (SQ_EXAMPLES, SQ_DIFF_SUM, SQ_DIFF_SUMSQ))
    return computations


def _unpack_sums(sums_key, keys, metrics):
  sums = metrics[sums_key]
  values = [sums.constant_se / max(sums.examples, 1.0)]
  if len(keys) > 1:
    values += [sums.examples, sums.diff, sums.diff_sq]
  return dict(zip(keys, values))


# Every pair of models in one pass, without a baseline (the sweep evaluates K
# candidates at once, and which pairs the gate compares is known only from
# their scores). Per example, one measure per model (right or not; a squared
# error); per unordered pair (a, b), a before b in the EvalConfig, the paired
# metrics above of a ("candidate") against b ("baseline"), filed under a as
# f"{metric}{PAIR}{b}". load_pair reads either order.
PAIR = "@"
# What a model name may be: it is a TFMA model name, an input key of the
# sweep's evaluator, and follows PAIR in a metric name.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
# Reading a pair the other way round: which metric each becomes, and d's sign.
_SWAPPED = {CANDIDATE_ONLY: BASELINE_ONLY, BASELINE_ONLY: CANDIDATE_ONLY}
_NEGATED = frozenset({SQ_DIFF_SUM})


def check_model_name(name):
  """Raises ValueError when `name` can't name a model of an evaluation of
  several models."""
  if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
    raise ValueError(
        f"model name {name!r}: use 1 to 100 letters, digits, '_' or '-', "
        "starting with a letter or digit (e.g. learned_300-150)")


@dataclasses.dataclass
class _PairSums(_Sums):
  examples: float
  first: np.ndarray   # [K, K]
  second: np.ndarray  # [K, K]


def _right_only(right):
  """[i, j]: model i right and model j wrong; and the reverse."""
  only = np.outer(right, 1.0 - right)
  return only, only.T


def _squared_error_diffs(squared_errors):
  """d[i, j] = j's squared error - i's (positive favours i), and d^2."""
  d = squared_errors[None, :] - squared_errors[:, None]
  return d, d * d


class _AllPairsCombiner(_PairedCombiner):
  """One accumulator over every model's answer to the same example."""

  def __init__(self, key, eval_config, model_names, output_name, measure,
               pairs):
    super().__init__(key, eval_config, None, None, output_name)
    self._models = tuple(model_names)
    self._measure, self._pairs = measure, pairs

  def create_accumulator(self):
    k = len(self._models)
    return _PairSums(0.0, np.zeros((k, k)), np.zeros((k, k)))

  def add_input(self, accumulator, element):
    measures = np.array([
        float(self._measure(element, self._eval_config, m, self._output_name))
        for m in self._models])
    accumulator.merge(_PairSums(1.0, *self._pairs(measures)))
    return accumulator


def _all_pairs(name, eval_config, model_names, output_names, measure, pairs,
               metric_names):
  """The computations of every pair's `metric_names`: examples, then the
  two sums of `pairs`' matrices; none with fewer than two models."""
  model_names = list(model_names)
  if len(model_names) < 2:
    return []
  computations = []
  for output_name in output_names or ("",):
    sums_key = metric_types.MetricKey(name=f"_{name}_pairs",
                                      output_name=output_name)
    keys = {}  # (i, j) -> the pair's keys, filed under model i
    for i, a in enumerate(model_names):
      for j in range(i + 1, len(model_names)):
        keys[(i, j)] = [metric_types.MetricKey(
            name=f"{n}{PAIR}{model_names[j]}", model_name=a,
            output_name=output_name) for n in metric_names]
    computations.append(metric_types.MetricComputation(
        keys=[sums_key], preprocessors=None,
        combiner=_AllPairsCombiner(sums_key, eval_config, model_names,
                                   output_name, measure, pairs)))
    computations.append(metric_types.DerivedMetricComputation(
        keys=[k for pair in keys.values() for k in pair],
        result=functools.partial(_unpack_pairs, sums_key, keys)))
  return computations


def _unpack_pairs(sums_key, keys, metrics):
  sums = metrics[sums_key]
  values = {}
  for (i, j), pair_keys in keys.items():
    values.update(zip(pair_keys, (sums.examples, float(sums.first[i, j]),
                                  float(sums.second[i, j]))))
  return values


def pair_values(overall, a, b):
  """{paired metric: value} of model `a` against model `b` in
  overall_metrics' result, named as a candidate's against its baseline;
  {} when the evaluation has none for the pair."""
  def filed(model, other):
    suffix = f"{PAIR}{other}"
    return {n[:-len(suffix)]: v for n, v in overall.get(model, {}).items()
            if n.endswith(suffix) and n[:-len(suffix)] in PAIRED}
  values = filed(a, b)
  if values:
    return values
  return {_SWAPPED.get(n, n): -v if n in _NEGATED else v
          for n, v in filed(b, a).items()}


def load_pair(evaluation_uri, a, b):
  """pair_values of `a` against `b` on the overall slice of a TFMA
  evaluation of several models without a baseline."""
  return pair_values(overall_metrics(evaluation_uri), a, b)


# TFMA's names for the standard metrics the pipeline reads.
TOP1 = "sparse_categorical_accuracy"  # SparseCategoricalAccuracy
TOP5 = "sparse_top_k_categorical_accuracy"  # SparseTopKCategoricalAccuracy
TOP_K = 5                                   # ... with this k
MAE = "mean_absolute_error"
# This module's paired (diff) metrics: TFMA files them under the candidate.
PAIRED = frozenset({EXAMPLES, CANDIDATE_ONLY, BASELINE_ONLY, SQ_EXAMPLES,
                    SQ_DIFF_SUM, SQ_DIFF_SUMSQ})


def overall_metrics(evaluation_uri):
  """{model name: {metric name: value}} on the overall slice of a TFMA
  evaluation, this module's paired (diff) metrics included under their own
  names; TFMA's own "change from baseline" of every metric left out.

  Without a baseline TFX drops the baseline spec and TFMA files the lone
  model's metrics under the empty name.
  """
  values = {}
  for metrics in tfma.load_metrics(evaluation_uri):
    if metrics.slice_key.single_slice_keys:
      continue
    for kv in metrics.metric_keys_and_values:
      if not kv.value.HasField("double_value") or (
          kv.key.is_diff and kv.key.name not in PAIRED):
        continue
      values.setdefault(kv.key.model_name, {})[kv.key.name] = \
          kv.value.double_value.value
  return values


def constant_squared_error(overall):
  """The squared error of predicting the training mean, from {model:
  {metric: value}}: the same for every model (the same eval examples)."""
  return next(v[CONSTANT_SE] for v in overall.values() if CONSTANT_SE in v)


def load_values(evaluation_uri, model_name):
  """{metric name: value} of `model_name` on the overall slice."""
  return overall_metrics(evaluation_uri).get(model_name, {})


def load_table(evaluation_uri, model_name):
  """(examples, candidate_only, baseline_only) of `model_name` on the overall
  slice of a TFMA evaluation, or None when it was run without a baseline."""
  values = load_values(evaluation_uri, model_name)
  if EXAMPLES not in values:
    return None
  return tuple(values[k] for k in (EXAMPLES, CANDIDATE_ONLY, BASELINE_ONLY))


def confusion_matrices(evaluation_uri, class_names):
  """{model: [[count of true i predicted j]]} on the overall slice of a TFMA
  evaluation's MultiClassConfusionMatrixPlot."""
  n = len(class_names)
  matrices = {}
  for plots in tfma.load_plots(evaluation_uri):
    if plots.slice_key.single_slice_keys:
      continue
    for kv in plots.plot_keys_and_values:
      if not kv.value.HasField("multi_class_confusion_matrix_at_thresholds"):
        continue
      matrix = [[0] * n for _ in range(n)]
      at = kv.value.multi_class_confusion_matrix_at_thresholds.matrices[0]
      for e in at.entries:
        if 0 <= e.actual_class_id < n and 0 <= e.predicted_class_id < n:
          matrix[e.actual_class_id][e.predicted_class_id] = int(
              e.num_weighted_examples)
      matrices[kv.key.model_name] = matrix
  return matrices
