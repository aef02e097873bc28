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
from components.model_selector.component import (AHEAD, COMPARISON,
                                                 SELECTED, UNDER_FLOOR)
from components.push_decision.component import DECISION
from components.results_report import figures
from gate import stats
from trainer import features
from trainer.task import MODEL_INFO

TOP1 = "sparse_categorical_accuracy"  # TFMA's name for SparseCategoricalAccuracy
TOP5 = "sparse_top_k_categorical_accuracy"


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


def _selection_why(outcome, comparison, top1, floor, min_gain):
  learned, bilinear = top1["learned"], top1["bilinear"]
  evidence = stats.describe(comparison)
  if outcome == AHEAD:
    return (f"the learned resizer ({learned:.4f}) is ahead of bilinear "
            f"({bilinear:.4f}) by more than {100 * min_gain:+.1f} points at "
            f"{100 * comparison.confidence:.0f}% confidence ({evidence}) and "
            f"clears the floor {floor:.4f}")
  if outcome == UNDER_FLOOR:
    return (f"the learned resizer ({learned:.4f}) is under the floor "
            f"{floor:.4f}")
  if comparison.upper < 0:
    verdict = "bilinear is significantly better"
  elif comparison.lower > 0:
    verdict = (f"the learned resizer is ahead, but not by more than "
               f"{100 * min_gain:+.1f} points")
  else:
    verdict = "no significant difference"
  return (f"{verdict} (learned {learned:.4f} vs bilinear {bilinear:.4f}: "
          f"{evidence}), so the cheaper bilinear model is the candidate")


def explain(selected, selection, top1, floor, min_gain, tolerance, production,
            decision):
  """One sentence: what was pushed and why, with the evidence."""
  outcome = selection["outcome"]
  comparison = stats.Comparison.from_dict(selection)
  why = _selection_why(outcome, comparison, top1, floor, min_gain)
  prod = production.get("comparison")
  if decision == "push":
    if prod is None:
      where = "it is the first model in production"
    else:
      where = (f"it is not significantly worse than production "
               f"({production['production_top1']:.4f}) by more than "
               f"{100 * tolerance:.1f} points "
               f"({stats.describe(stats.Comparison.from_dict(prod))})")
    return f"{selected} pushed: {why}; {where}."
  if decision == "same_as_production":
    return (f"nothing pushed: the candidate ({selected}) is the model already "
            "in production.")
  candidate = top1[selected]
  if decision == "worse_than_production":
    return (f"nothing pushed: {why}; the candidate {selected} "
            f"({candidate:.4f}) is significantly worse than production "
            f"({production['production_top1']:.4f}) by more than "
            f"{100 * tolerance:.1f} points "
            f"({stats.describe(stats.Comparison.from_dict(prod))}).")
  if top1["learned"] < floor and candidate < floor:
    return (f"nothing pushed: learned ({top1['learned']:.4f}) and bilinear "
            f"({top1['bilinear']:.4f}) are both under the floor {floor:.4f}.")
  return (f"nothing pushed: {why}, and the candidate {selected} "
          f"({candidate:.4f}) is under the floor {floor:.4f}.")


def build_results(summary, infos, evaluation, production_evaluation, selected,
                  selection, decision, production_comparison, pushed_path,
                  thresholds):
  overall, per_class = evaluation
  prod_overall, _ = production_evaluation
  models = {name: {
      "params": info["params"], "trainable_params": info["trainable_params"],
      "top1": overall[name][TOP1], "top5": overall[name].get(TOP5),
      # Inference-mode top-1 on a sample of the training split: far above the
      # eval top-1 is overfitting, far below it is a broken inference mode.
      "train_sample_top1": info.get("train_sample_top1"),
      "metrics": overall[name], "per_class_recall": per_class.get(name, {}),
      "confusion_matrix": info.get("confusion_matrix"),
      "history": info["history"]} for name, info in infos.items()}
  candidate_top1 = (prod_overall.get("candidate")
                    or prod_overall.get("", {})).get(TOP1)
  production = {
      "candidate": selected,
      # Without a production model Evaluator_production does not run locally
      # (on Vertex TFX drops its baseline spec and TFMA files the lone model's
      # metrics under the empty name): the candidate's top-1 is the same as
      # in the learned-vs-bilinear evaluation, on the same eval examples.
      "candidate_top1": (overall[selected][TOP1] if candidate_top1 is None
                         else candidate_top1),
      "production_top1": prod_overall.get("production", {}).get(TOP1),
      "comparison": production_comparison,
      "decision": decision}
  pushed = selected if pushed_path else None
  top1 = {name: m["top1"] for name, m in models.items()}
  return {
      "models": models,
      "class_names": infos["learned"]["class_names"],
      "selected": selected,
      "selection": selection,
      "production": production,
      "pushed": pushed,
      "pushed_path": pushed_path,
      "reason": explain(selected, selection, top1, thresholds["floor"],
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
  rows = ["| gate | difference (points) | interval | p | test | eval images |",
          "|---|---|---|---|---|---|"]
  gates = [("learned vs bilinear", results["selection"]),
           ("candidate vs production", results["production"]["comparison"])]
  for name, c in gates:
    if c is None:
      rows.append(f"| {name} | no model in production | | | | |")
      continue
    rows.append(
        f"| {name} | {100 * c['difference']:+.1f} | "
        f"{100 * c['confidence']:.0f}% CI {100 * c['lower']:+.1f}…"
        f"{100 * c['upper']:+.1f} | {c['p_value']:.3g} | {c['test']} | "
        f"{c['n']} |")
  return rows


def results_table(results):
  """The seed's table (model, parameters in millions, top-1), the paired
  comparisons behind both gates, and the reason."""
  rows = ["| model | parameters (M) | top-1 (eval) | top-1 (train sample) |",
          "|---|---|---|---|"]
  for name in ("learned", "bilinear"):
    m = results["models"][name]
    pushed = " (pushed)" if results["pushed"] == name else ""
    train = m.get("train_sample_top1")
    train = "" if train is None else f"{100 * train:.2f}%"
    rows.append(f"| {name}{pushed} | {m['params'] / 1e6:.3f} | "
                f"{100 * m['top1']:.2f}% | {train} |")
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
    floor: Parameter[float],
    production_tolerance: Parameter[float],
    confidence: Parameter[float],
    input_size: Parameter[int],
    # None when nothing is in production and Evaluator_production was skipped.
    production_evaluation: InputArtifact[
        standard_artifacts.ModelEvaluation] = None):
  infos = {"learned": _read_json(os.path.join(learned_run.uri, MODEL_INFO)),
           "bilinear": _read_json(os.path.join(bilinear_run.uri, MODEL_INFO))}
  matrices = load_confusion_matrices(evaluation.uri,
                                     infos["learned"]["class_names"])
  for name, info in infos.items():
    info["confusion_matrix"] = matrices.get(name)
  pushed = pushed_model.get_int_custom_property("pushed") == 1
  results = build_results(
      summary=_read_json(os.path.join(ingest_report.uri, SUMMARY_FILE)),
      infos=infos, evaluation=load_metrics(evaluation.uri),
      production_evaluation=(load_metrics(production_evaluation.uri)
                             if production_evaluation else ({}, {})),
      selected=selected_model.get_string_custom_property(SELECTED),
      selection=json.loads(
          selected_model.get_string_custom_property(COMPARISON)),
      decision=push_blessing.get_string_custom_property(DECISION),
      production_comparison=json.loads(
          push_blessing.get_string_custom_property(COMPARISON) or "null"),
      pushed_path=(pushed_model.get_string_custom_property("pushed_destination")
                   if pushed else None),
      thresholds={"min_gain": min_gain, "floor": floor,
                  "confidence": confidence,
                  "production_tolerance": production_tolerance})
  tf.io.gfile.makedirs(report_dir)
  _write(os.path.join(report_dir, "results.json"),
         json.dumps(results, indent=2, sort_keys=True))
  _write(os.path.join(report_dir, "results.md"),
         "# Learned resizer vs bilinear\n\n" + results_table(results))
  figures.training_curves(infos, os.path.join(report_dir, "training.png"))
  figures.resized_grid(examples, learned_model.uri, infos["learned"],
                       input_size, os.path.join(report_dir, "resized.png"))
