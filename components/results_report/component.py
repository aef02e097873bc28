"""ResultsReport: the decision record of a run, and the figures users look at.

Writes <report_dir>/results.json, results.md, resized.png, training.png,
the model card (model_card.md, model_card.html: model_card.py) and the
comparison as text for TensorBoard (<tensorboard_dir>/<run>/comparison) from
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

import tasks
from components.image_example_gen.component import IngestReport
from components.image_example_gen.report import REJECTED_FILE, SUMMARY_FILE
from components.model_selector.component import (AHEAD, COMPARISON, FLOOR,
                                                 NUM_CLASSES, SELECTED,
                                                 UNDER_FLOOR)
from components.production_evaluator.executor import evaluated
from components.push_decision.component import DECISION
from components.results_report import figures, model_card
from gate import stats
from gate.tfma_metric import TOP1
from trainer import features, tensorboard
from trainer.training import MODEL_INFO

RESULTS_FILE = "results.json"  # in report_dir: the run's decision record
# The ingest's rejected files named in results.json (the count is of all).
MAX_REJECTED_SHOWN = 20


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


class Scores:
  """The headline score of each model as the reason states it, in the
  task's words (tasks/: a top-1, an RMSE)."""

  def __init__(self, values, task):
    self.values, self.task = values, task

  def __getitem__(self, name):
    return self.values[name]

  def text(self, name):
    return self.task.text(self.values[name])

  def under(self, name, floor):
    return not self.task.clears(self.values[name], floor)


def _selection_why(outcome, comparison, scores, floor, min_gain):
  task = scores.task
  learned, bilinear = scores.text("learned"), scores.text("bilinear")
  evidence = stats.describe(comparison)
  if outcome == AHEAD:
    return (f"the learned resizer ({learned}) is ahead of bilinear "
            f"({bilinear}) by more than {task.margin_text(min_gain)} at "
            f"{100 * comparison.confidence:.0f}% confidence ({evidence}) and "
            f"{task.clears_verb()} {task.floor_text(floor)}")
  if outcome == UNDER_FLOOR:
    return task.under_floor_clause(learned, floor)
  if comparison.upper < 0:
    verdict = "bilinear is significantly better"
  elif comparison.lower > 0:
    verdict = (f"the learned resizer is ahead, but not by more than "
               f"{task.margin_text(min_gain)}")
  else:
    verdict = "no significant difference"
  return (f"{verdict} (learned {learned} vs bilinear {bilinear}: "
          f"{evidence}), so the cheaper bilinear model is the candidate")


def explain(selected, selection, scores, floor, min_gain, tolerance,
            production, decision):
  """One sentence: what was pushed and why, with the evidence. `scores`: a
  Scores, or {model: top-1} of the default task."""
  if not isinstance(scores, Scores):
    scores = Scores(scores, tasks.default())
  task = scores.task
  comparison = stats.Comparison.from_dict(selection)
  why = _selection_why(selection["outcome"], comparison, scores, floor,
                       min_gain)
  prod = production.get("comparison")
  tolerance_text = task.tolerance_text(tolerance)
  if prod is not None:
    prod_text = task.production_text(production)
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
    return (f"nothing pushed: learned ({scores.text('learned')}) and bilinear "
            f"({scores.text('bilinear')})" + task.both_under_clause(floor))
  return (f"nothing pushed: {why}, and the candidate {selected} ({candidate}) "
          f"does not clear {task.floor_text(floor)}.")


def _task(record):
  """The task of results.json or a model_info.json (the default task for
  records written before they named it)."""
  return tasks.get(record.get("task") or tasks.default().name)


def _model_results(name, info, overall, per_class, task, num_classes):
  # What the model card names of its architecture and training (older
  # model_info.json files lack some).
  return {**{k: info[k] for k in model_card.ARCHITECTURE if k in info},
          "params": info["params"],
          "trainable_params": info["trainable_params"],
          "history": info["history"],
          **task.model_results(name, info, overall, per_class, num_classes)}


def build_results(summary, infos, evaluation, production_evaluation, selected,
                  selection, decision, production_comparison, pushed_path,
                  thresholds, num_classes, rejected_files=()):
  """num_classes: counted in the Transform vocabulary at run time (by
  ModelSelector); top-5 is reported only above 5. rejected_files: the
  ingest's first rejected {path, reason} rows."""
  overall, per_class = evaluation
  prod_overall, _ = production_evaluation
  task = _task(infos["learned"])
  models = {name: _model_results(name, info, overall, per_class, task,
                                 num_classes)
            for name, info in infos.items()}
  # Without a production model Evaluator_production evaluates nothing: then
  # the candidate's metrics are those of the learned-vs-bilinear evaluation,
  # on the same eval examples.
  candidate_metrics = prod_overall.get("candidate") or overall[selected]
  production = {"candidate": selected, "comparison": production_comparison,
                "decision": decision,
                **task.production_results(candidate_metrics,
                                          prod_overall.get("production", {}))}
  thresholds = {**thresholds, **task.thresholds(overall)}
  scores = Scores({n: task.headline(m) for n, m in models.items()}, task)
  pushed = selected if pushed_path else None
  return {
      "task": task.name,
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
      # Per class folder ("<split folder>/<class>"): ingested and rejected.
      "class_folders": summary.get("classes", {}),
      "rejected_files": list(rejected_files),
  }




def _comparison_rows(results):
  task = _task(results)
  rows = [f"| gate | {task.difference_unit} | interval | p | test | eval "
          "images |", "|---|---|---|---|---|---|"]
  gates = [("learned vs bilinear", results["selection"]),
           ("candidate vs production", results["production"]["comparison"])]
  num = task.difference_text
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
  """The seed's table (model, parameters in millions, the task's scores),
  the paired comparisons behind both gates, the reason."""
  task = _task(results)
  rows = list(task.table_header())
  for name in ("learned", "bilinear"):
    m = results["models"][name]
    pushed = " (pushed)" if results["pushed"] == name else ""
    rows.append(f"| {name}{pushed} | {m['params'] / 1e6:.3f} | "
                f"{task.table_cells(m)} |")
  text = "\n".join(rows) + "\n\n" + "\n".join(_comparison_rows(results))
  text += "\n\n" + results["reason"] + "\n"
  if results.get("power_note"):
    text += "\n" + results["power_note"] + "\n"
  return text


def comparison_text(results):
  """The run's decision and results.md's table, for TensorBoard's text
  dashboard (it renders markdown)."""
  decision = results["production"]["decision"]
  pushed = results["pushed"] or "nothing"
  return (f"**decision: {decision}** (pushed: {pushed})\n\n"
          + results_table(results))


def _read_json(path):
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _write(path, text):
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(text)


def _first_rejected(ingest_uri, limit=MAX_REJECTED_SHOWN):
  """The first `limit` {path, reason} rows of the ingest's rejected.jsonl
  (none for a report written before it existed)."""
  path = os.path.join(ingest_uri, REJECTED_FILE)
  if not tf.io.gfile.exists(path):
    return []
  rows = []
  with tf.io.gfile.GFile(path) as f:
    for line in f:
      if len(rows) == limit:
        break
      if line.strip():
        rows.append(json.loads(line))
  return rows


def write_model_card(results, report_dir, figure_names):
  """model_card.md and model_card.html of results.json, with the figures
  of report_dir (written before) embedded."""
  pngs = {}
  for name in figure_names:
    with tf.io.gfile.GFile(os.path.join(report_dir, name), "rb") as f:
      pngs[name] = f.read()
  card = model_card.model_card(results, pngs)
  _write(os.path.join(report_dir, model_card.MARKDOWN_FILE),
         model_card.render_markdown(card))
  _write(os.path.join(report_dir, model_card.HTML_FILE),
         model_card.render_html(card))


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
    tensorboard_dir: Parameter[str],
    # The Trainers' <run> (trainer/tensorboard.py); "": this process's.
    tensorboard_run: Parameter[str],
    # With nothing in production: None (skipped locally) or not evaluated().
    production_evaluation: InputArtifact[
        standard_artifacts.ModelEvaluation] = None):
  infos = {"learned": _read_json(os.path.join(learned_run.uri, MODEL_INFO)),
           "bilinear": _read_json(os.path.join(bilinear_run.uri, MODEL_INFO))}
  task = _task(infos["learned"])
  task.prepare_infos(evaluation.uri, infos)
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
      num_classes=selected_model.get_int_custom_property(NUM_CLASSES),
      rejected_files=_first_rejected(ingest_report.uri))
  tf.io.gfile.makedirs(report_dir)
  _write(os.path.join(report_dir, RESULTS_FILE),
         json.dumps(results, indent=2, sort_keys=True))
  _write(os.path.join(report_dir, "results.md"),
         "# Learned resizer vs bilinear\n\n" + results_table(results))
  figures.training_curves(infos, task.score,
                          os.path.join(report_dir, "training.png"))
  model_uris = {"learned": learned_model.uri, "bilinear": bilinear_model.uri}
  for name in task.figures:
    figures.FIGURES[name](examples.uri, model_uris, report_dir)
  figures.resized_grid(examples, learned_model.uri, learned_run.uri,
                       infos["learned"], input_size,
                       os.path.join(report_dir, "resized.png"))
  write_model_card(results, report_dir,
                   ["resized.png", "training.png"] +
                   [f"{name}.png" for name in task.figures])
  # Last: a bad run name fails here, with every report file written.
  tensorboard.write_comparison(
      tensorboard_dir, tensorboard_run or tensorboard.current_run(),
      comparison_text(results))
