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
from components.model_selector.component import SELECTED
from components.push_decision.component import DECISION
from components.results_report import figures
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


def explain(selected, top1, floor, min_gain, tolerance, production, decision):
  """One sentence: what was pushed and why."""
  learned, bilinear = top1["learned"], top1["bilinear"]
  prod = production.get("production_top1")
  if decision == "push":
    if selected == "learned":
      why = (f"the learned resizer (top-1 {learned:.4f}) beats bilinear "
             f"({bilinear:.4f}) by at least {min_gain:+.4f} and clears the "
             f"floor {floor:.4f}")
    else:
      why = (f"the learned resizer (top-1 {learned:.4f}) did not beat bilinear "
             f"({bilinear:.4f}) by {min_gain:+.4f} or missed the floor "
             f"{floor:.4f}, and bilinear clears the floor")
    where = ("it is the first model in production" if prod is None else
             f"it is not worse than production ({prod:.4f}) by more than "
             f"{tolerance:.4f}")
    return f"{selected} pushed: {why}; {where}."
  if decision == "same_as_production":
    return (f"nothing pushed: the candidate ({selected}) is the model already "
            "in production.")
  candidate = top1[selected]
  if candidate < floor:
    if learned < floor:
      return (f"nothing pushed: learned ({learned:.4f}) and bilinear "
              f"({bilinear:.4f}) are both under the floor {floor:.4f}.")
    return (f"nothing pushed: the learned resizer ({learned:.4f}) did not beat "
            f"bilinear by {min_gain:+.4f}, and bilinear ({bilinear:.4f}) is "
            f"under the floor {floor:.4f}.")
  if prod is None:  # not expected: without production only the floor gates
    return (f"nothing pushed: the candidate {selected} ({candidate:.4f}) did "
            "not pass the production gate.")
  return (f"nothing pushed: the candidate {selected} ({candidate:.4f}) is worse "
          f"than production ({prod:.4f}) by more than the tolerance "
          f"{tolerance:.4f}.")


def build_results(summary, infos, evaluation, production_evaluation, selected,
                  decision, pushed_path, thresholds):
  overall, per_class = evaluation
  prod_overall, _ = production_evaluation
  models = {name: {
      "params": info["params"], "trainable_params": info["trainable_params"],
      "top1": overall[name][TOP1], "top5": overall[name].get(TOP5),
      "metrics": overall[name], "per_class_recall": per_class.get(name, {}),
      "confusion_matrix": info.get("confusion_matrix"),
      "history": info["history"]} for name, info in infos.items()}
  production = {
      "candidate": selected,
      # Without a production model TFX drops the baseline spec and TFMA files
      # the lone model's metrics under the empty name.
      "candidate_top1": (prod_overall.get("candidate")
                         or prod_overall.get("", {})).get(TOP1),
      "production_top1": prod_overall.get("production", {}).get(TOP1),
      "decision": decision}
  pushed = selected if pushed_path else None
  top1 = {name: m["top1"] for name, m in models.items()}
  return {
      "models": models,
      "class_names": infos["learned"]["class_names"],
      "selected": selected,
      "production": production,
      "pushed": pushed,
      "pushed_path": pushed_path,
      "reason": explain(selected, top1, thresholds["floor"],
                        thresholds["min_gain"],
                        thresholds["production_tolerance"], production,
                        decision),
      "thresholds": thresholds,
      "examples": {"train": summary["splits"].get("train", 0),
                   "eval": summary["splits"].get("eval", 0)},
      "rejected": summary["rejected"],
      "seen": summary["seen"],
  }


def results_table(results):
  """The seed's table (model, parameters in millions, top-1) and the reason."""
  rows = ["| model | parameters (M) | top-1 |", "|---|---|---|"]
  for name in ("learned", "bilinear"):
    m = results["models"][name]
    pushed = " (pushed)" if results["pushed"] == name else ""
    rows.append(f"| {name}{pushed} | {m['params'] / 1e6:.3f} | "
                f"{100 * m['top1']:.2f}% |")
  return "\n".join(rows) + "\n\n" + results["reason"] + "\n"


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
    production_evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    push_blessing: InputArtifact[standard_artifacts.ModelBlessing],
    pushed_model: InputArtifact[standard_artifacts.PushedModel],
    report_dir: Parameter[str],
    min_gain: Parameter[float],
    floor: Parameter[float],
    production_tolerance: Parameter[float],
    input_size: Parameter[int]):
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
      production_evaluation=load_metrics(production_evaluation.uri),
      selected=selected_model.get_string_custom_property(SELECTED),
      decision=push_blessing.get_string_custom_property(DECISION),
      pushed_path=(pushed_model.get_string_custom_property("pushed_destination")
                   if pushed else None),
      thresholds={"min_gain": min_gain, "floor": floor,
                  "production_tolerance": production_tolerance})
  tf.io.gfile.makedirs(report_dir)
  _write(os.path.join(report_dir, "results.json"),
         json.dumps(results, indent=2, sort_keys=True))
  _write(os.path.join(report_dir, "results.md"),
         "# Learned resizer vs bilinear\n\n" + results_table(results))
  figures.training_curves(infos, os.path.join(report_dir, "training.png"))
  figures.resized_grid(examples, learned_model.uri, infos["learned"],
                       input_size, os.path.join(report_dir, "resized.png"))
