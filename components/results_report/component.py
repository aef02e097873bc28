"""ResultsReport: the decision record of a run, and the figures users look at.

Writes <report_dir>/results.json, results.md, resized.png and training.png from
what the components recorded (ingest counts, Trainer model_info.json, TFMA
metrics and plots, the selection, the push decision and the Pusher's result).
It decides nothing.
"""
import json
import os

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.types import standard_artifacts
from tfx.v1.dsl.components import InputArtifact, Parameter, component

from components.image_example_gen.component import IngestReport
from components.image_example_gen.executor import SUMMARY_FILE
from components.model_selector.component import (AHEAD, COMPARISON, FLOOR,
                                                 NUM_CLASSES, SELECTED,
                                                 UNDER_FLOOR)
from components.production_evaluator.executor import evaluated
from components.push_decision.component import DECISION
from components.results_report import figures
from gate import stats, tfma_metric
from gate.tfma_metric import MAE, MSE, TOP1, TOP5, TOP_K
from trainer import features
from trainer.task import MODEL_INFO


def load_metrics(evaluation_uri):
  """({model: {metric: value}} overall, {model: {class: top-1}} per class)."""
  overall, per_class = {}, {}
  for metrics in tfma.load_metrics(evaluation_uri):
    keys = metrics.slice_key.single_slice_keys
    for kv in metrics.metric_keys_and_values:
      if kv.key.is_diff or not kv.value.HasField("double_value"):
        continue
      value = kv.value.double_value.value
      if not keys:
        overall.setdefault(kv.key.model_name, {})[kv.key.name] = value
      elif keys[0].column == features.LABEL and kv.key.name == TOP1:
        label = keys[0].bytes_value.decode()
        per_class.setdefault(kv.key.model_name, {})[label] = value
  return overall, per_class


def load_confusion_matrices(evaluation_uri, class_names):
  """{model: [[count of true i predicted j]]} on the overall slice."""
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


class Scores:
  """The headline score of each model as the reason states it: top-1
  (higher is better) or, for regression, RMSE in the target's units."""

  def __init__(self, values, regression):
    self.values, self.regression = values, regression

  def __getitem__(self, name):
    return self.values[name]

  def text(self, name):
    v = self.values[name]
    return f"RMSE {v:.4g}" if self.regression else f"{v:.4f}"

  def under(self, name, floor):
    return self.values[name] >= floor if self.regression else \
        self.values[name] < floor

  def floor_text(self, floor):
    return (f"the floor RMSE {floor:.4g} (default: predicting the training "
            "mean)" if self.regression else f"the floor {floor:.4f}")

  def margin_text(self, margin):
    return (f"an MSE of {margin:.4g}" if self.regression
            else f"{100 * margin:+.1f} points")


def _selection_why(outcome, comparison, scores, floor, min_gain):
  learned, bilinear = scores.text("learned"), scores.text("bilinear")
  evidence = stats.describe(comparison)
  if outcome == AHEAD:
    clears = ("beats " if scores.regression else "clears ") + \
        scores.floor_text(floor)
    return (f"the learned resizer ({learned}) is ahead of bilinear "
            f"({bilinear}) by more than {scores.margin_text(min_gain)} at "
            f"{100 * comparison.confidence:.0f}% confidence ({evidence}) and "
            f"{clears}")
  if outcome == UNDER_FLOOR:
    return (f"the learned resizer ({learned}) does not beat "
            f"{scores.floor_text(floor)}" if scores.regression else
            f"the learned resizer ({learned}) is under the floor {floor:.4f}")
  if comparison.upper < 0:
    verdict = "bilinear is significantly better"
  elif comparison.lower > 0:
    verdict = (f"the learned resizer is ahead, but not by more than "
               f"{scores.margin_text(min_gain)}")
  else:
    verdict = "no significant difference"
  return (f"{verdict} (learned {learned} vs bilinear {bilinear}: "
          f"{evidence}), so the cheaper bilinear model is the candidate")


def explain(selected, selection, scores, floor, min_gain, tolerance,
            production, decision):
  """One sentence: what was pushed and why, with the evidence. `scores`: a
  Scores, or {model: top-1} for classification."""
  if not isinstance(scores, Scores):
    scores = Scores(scores, regression=False)
  comparison = stats.Comparison.from_dict(selection)
  why = _selection_why(selection["outcome"], comparison, scores, floor,
                       min_gain)
  prod = production.get("comparison")
  tolerance_text = (f"an MSE of {tolerance:.4g}" if scores.regression
                    else f"{100 * tolerance:.1f} points")
  if prod is not None:
    prod_text = production["production_score_text"] if scores.regression \
        else f"{production['production_top1']:.4f}"
    prod_evidence = stats.describe(stats.Comparison.from_dict(prod))
  if decision == "push":
    where = ("it is the first model in production" if prod is None else
             f"it is not significantly worse than production ({prod_text}) "
             f"by more than {tolerance_text} ({prod_evidence})")
    return f"{selected} pushed: {why}; {where}."
  if decision == "same_as_production":
    return (f"nothing pushed: the candidate ({selected}) is the model already "
            "in production.")
  candidate = scores.text(selected)
  if decision == "worse_than_production":
    return (f"nothing pushed: {why}; the candidate {selected} ({candidate}) "
            f"is significantly worse than production ({prod_text}) by more "
            f"than {tolerance_text} ({prod_evidence}).")
  if scores.under("learned", floor) and scores.under(selected, floor):
    what = ("neither beats " + scores.floor_text(floor) if scores.regression
            else f"both under the floor {floor:.4f}")
    return (f"nothing pushed: learned ({scores.text('learned')}) and "
            f"bilinear ({scores.text('bilinear')}): {what}." if
            scores.regression else
            f"nothing pushed: learned ({scores.text('learned')}) and bilinear "
            f"({scores.text('bilinear')}) are {what}.")
  return (f"nothing pushed: {why}, and the candidate {selected} ({candidate}) "
          f"does not clear {scores.floor_text(floor)}.")


def _model_results(name, info, overall, per_class, regression, num_classes):
  metrics = dict(overall[name])
  if num_classes <= TOP_K:  # every label is in the top k: always 1.0
    metrics.pop(TOP5, None)
  m = {"params": info["params"], "trainable_params": info["trainable_params"],
       "metrics": metrics, "history": info["history"]}
  if regression:
    m.update(rmse=overall[name][MSE] ** 0.5, mae=overall[name][MAE],
             # in standard deviations of the (transformed) training targets
             train_sample_rmse_normalized=info.get("train_sample_rmse"))
  else:
    m.update(top1=metrics[TOP1], top5=metrics.get(TOP5),
             # Inference-mode top-1 on a sample of the training split: far
             # above eval is overfitting, far below a broken inference mode.
             train_sample_top1=info.get("train_sample_top1"),
             per_class_recall=per_class.get(name, {}),
             confusion_matrix=info.get("confusion_matrix"))
  return m


def build_results(summary, infos, evaluation, production_evaluation, selected,
                  selection, decision, production_comparison, pushed_path,
                  thresholds, num_classes):
  """num_classes: counted in the Transform vocabulary at run time (by
  ModelSelector); top-5 is reported only above 5."""
  overall, per_class = evaluation
  prod_overall, _ = production_evaluation
  regression = infos["learned"].get("task") == "regression"
  models = {name: _model_results(name, info, overall, per_class, regression,
                                 num_classes)
            for name, info in infos.items()}
  # Without a production model Evaluator_production evaluates nothing: then
  # the candidate's metrics are those of the learned-vs-bilinear evaluation,
  # on the same eval examples.
  candidate_metrics = prod_overall.get("candidate") or overall[selected]
  production_metrics = prod_overall.get("production", {})
  production = {"candidate": selected, "comparison": production_comparison,
                "decision": decision}
  if regression:
    thresholds = {**thresholds, "mean_predictor_rmse":
                  overall["learned"][tfma_metric.CONSTANT_SE] ** 0.5,
                  "floor_means": "the RMSE a model must stay below"}
    rmse = lambda m: m[MSE] ** 0.5 if MSE in m else None  # noqa: E731
    production.update(candidate_rmse=rmse(candidate_metrics),
                      production_rmse=rmse(production_metrics))
    production["production_score_text"] = (
        f"RMSE {production['production_rmse']:.4g}"
        if production["production_rmse"] is not None else None)
    scores = Scores({n: m["rmse"] for n, m in models.items()}, True)
  else:
    production.update(candidate_top1=candidate_metrics.get(TOP1),
                      production_top1=production_metrics.get(TOP1))
    scores = Scores({n: m["top1"] for n, m in models.items()}, False)
  pushed = selected if pushed_path else None
  return {
      "task": "regression" if regression else "classification",
      "models": models,
      "class_names": infos["learned"]["class_names"],
      "selected": selected,
      "selection": selection,
      "production": production,
      "pushed": pushed,
      "pushed_path": pushed_path,
      "reason": explain(selected, selection, scores, thresholds["floor"],
                        thresholds["min_gain"],
                        thresholds["production_tolerance"], production,
                        decision),
      "power_note": stats.power_note(stats.Comparison.from_dict(selection)),
      "thresholds": thresholds,
      "examples": {"train": summary["splits"].get("train", 0),
                   "eval": summary["splits"].get("eval", 0)},
      "rejected": summary["rejected"],
      "seen": summary["seen"],
  }


def _comparison_rows(results):
  regression = results.get("task") == "regression"
  unit = "MSE reduction" if regression else "difference (points)"
  rows = [f"| gate | {unit} | interval | p | test | eval images |",
          "|---|---|---|---|---|---|"]
  gates = [("learned vs bilinear", results["selection"]),
           ("candidate vs production", results["production"]["comparison"])]
  # Points of top-1 to one decimal; MSE in the target's units.
  num = (lambda v: f"{v:+.4g}") if regression else (lambda v: f"{100 * v:+.1f}")
  for name, c in gates:
    if c is None:
      rows.append(f"| {name} | no model in production | | | | |")
      continue
    rows.append(
        f"| {name} | {num(c['difference'])} | "
        f"{100 * c['confidence']:.0f}% CI {num(c['lower'])}…{num(c['upper'])} "
        f"| {c['p_value']:.3g} | {c['test']} | {c['n']} |")
  return rows


def results_table(results):
  """The seed's table (model, parameters in millions, top-1; RMSE and MAE
  for regression), the paired comparisons behind both gates, the reason."""
  regression = results.get("task") == "regression"
  if regression:
    rows = ["| model | parameters (M) | RMSE (eval) | MAE (eval) |",
            "|---|---|---|---|"]
  else:
    rows = ["| model | parameters (M) | top-1 (eval) | top-1 (train sample) |",
            "|---|---|---|---|"]
  for name in ("learned", "bilinear"):
    m = results["models"][name]
    pushed = " (pushed)" if results["pushed"] == name else ""
    if regression:
      cells = f"{m['rmse']:.4g} | {m['mae']:.4g}"
    else:
      train = m.get("train_sample_top1")
      train = "" if train is None else f"{100 * train:.2f}%"
      cells = f"{100 * m['top1']:.2f}% | {train}"
    rows.append(f"| {name}{pushed} | {m['params'] / 1e6:.3f} | {cells} |")
  text = "\n".join(rows) + "\n\n" + "\n".join(_comparison_rows(results))
  text += "\n\n" + results["reason"] + "\n"
  if results.get("power_note"):
    text += "\n" + results["power_note"] + "\n"
  return text


def _read_json(path):
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _write(path, text):
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(text)


@component
def ResultsReport(
    examples: InputArtifact[standard_artifacts.Examples],
    ingest_report: InputArtifact[IngestReport],
    learned_model: InputArtifact[standard_artifacts.Model],
    learned_run: InputArtifact[standard_artifacts.ModelRun],
    bilinear_model: InputArtifact[standard_artifacts.Model],
    bilinear_run: InputArtifact[standard_artifacts.ModelRun],
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    selected_model: InputArtifact[standard_artifacts.Model],
    push_blessing: InputArtifact[standard_artifacts.ModelBlessing],
    pushed_model: InputArtifact[standard_artifacts.PushedModel],
    report_dir: Parameter[str],
    min_gain: Parameter[float],
    production_tolerance: Parameter[float],
    confidence: Parameter[float],
    input_size: Parameter[int],
    # With nothing in production: None (skipped locally) or not evaluated().
    production_evaluation: InputArtifact[
        standard_artifacts.ModelEvaluation] = None):
  infos = {"learned": _read_json(os.path.join(learned_run.uri, MODEL_INFO)),
           "bilinear": _read_json(os.path.join(bilinear_run.uri, MODEL_INFO))}
  regression = infos["learned"].get("task") == "regression"
  if not regression:
    matrices = load_confusion_matrices(evaluation.uri,
                                       infos["learned"]["class_names"])
    for name, info in infos.items():
      info["confusion_matrix"] = matrices.get(name)
  pushed = pushed_model.get_int_custom_property("pushed") == 1
  results = build_results(
      summary=_read_json(os.path.join(ingest_report.uri, SUMMARY_FILE)),
      infos=infos, evaluation=load_metrics(evaluation.uri),
      production_evaluation=(load_metrics(production_evaluation.uri)
                             if evaluated(production_evaluation)
                             else ({}, {})),
      selected=selected_model.get_string_custom_property(SELECTED),
      selection=json.loads(
          selected_model.get_string_custom_property(COMPARISON)),
      decision=push_blessing.get_string_custom_property(DECISION),
      production_comparison=json.loads(
          push_blessing.get_string_custom_property(COMPARISON) or "null"),
      pushed_path=(pushed_model.get_string_custom_property("pushed_destination")
                   if pushed else None),
      # The floor both gates used, resolved at run time by ModelSelector.
      thresholds={"min_gain": min_gain,
                  "floor": selected_model.get_float_custom_property(FLOOR),
                  "confidence": confidence,
                  "production_tolerance": production_tolerance},
      num_classes=selected_model.get_int_custom_property(NUM_CLASSES))
  tf.io.gfile.makedirs(report_dir)
  _write(os.path.join(report_dir, "results.json"),
         json.dumps(results, indent=2, sort_keys=True))
  _write(os.path.join(report_dir, "results.md"),
         "# Learned resizer vs bilinear\n\n" + results_table(results))
  figures.training_curves(infos, os.path.join(report_dir, "training.png"))
  if regression:
    truth, predictions = figures.eval_targets_and_predictions(
        examples.uri, {"learned": learned_model.uri,
                       "bilinear": bilinear_model.uri})
    figures.predicted_vs_true(truth, predictions,
                              os.path.join(report_dir, "predicted.png"))
  figures.resized_grid(examples, learned_model.uri, learned_run.uri,
                       infos["learned"], input_size,
                       os.path.join(report_dir, "resized.png"))
