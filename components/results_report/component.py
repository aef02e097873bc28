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
from typing import Any, Dict, List, Mapping, Optional

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx import types
from tfx.dsl.components.base import base_component, base_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

import tasks
from components import candidate_inputs
from components.candidate_inputs import model_key, run_key
from components.image_example_gen.component import IngestReport
from components.image_example_gen.report import REJECTED_FILE, SUMMARY_FILE
from components.model_selector.component import (AHEAD, CANDIDATES,
                                                 COMPARISON, FLOOR,
                                                 NUM_CLASSES, in_pair_words,
                                                 SELECTED, SWEEP, UNDER_FLOOR,
                                                 read_info)
from components.production_evaluator.executor import evaluated
from components.push_decision.component import DECISION
from components.results_report import figures, model_card
from gate import costs, stats, sweep
from gate.tfma_metric import TOP1
from trainer import features, tensorboard

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
  pair = in_pair_words(selection)  # the default pair's own words
  if pair:
    why = _selection_why(selection["outcome"],
                         stats.Comparison.from_dict(selection), scores, floor,
                         min_gain)
  else:
    why = selection[SWEEP]["reason"]
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
  if decision == "over_budget":
    return f"nothing pushed: {why}."
  if decision == "same_as_production":
    return (f"nothing pushed: the candidate ({selected}) is the model already "
            "in production.")
  candidate = scores.text(selected)
  if decision == "worse_than_production":
    return (f"nothing pushed: {why}; the candidate {selected} ({candidate}) "
            f"is significantly worse than production ({prod_text}) by more "
            f"than {tolerance_text} ({prod_evidence}).")
  if pair and scores.under("learned", floor) and scores.under(selected,
                                                                floor):
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
          **({"cost": info["cost"]} if "cost" in info else {}),
          **task.model_results(name, info, overall, per_class, num_classes)}


def beside_pushed_model(pushed_path, name):
  """<serving>/<version>.<name>: a file of the run kept beside its pushed
  model (on Vertex too: the serving folder is on Cloud Storage)."""
  return f"{pushed_path.rstrip('/')}.{name}"


def image_sizes(statistics_uri):
  """{split: {height|width: {min, median, mean, max}}} of the ingested
  images, from StatisticsGen's TFDV statistics."""
  import tensorflow_data_validation as tfdv  # pylint: disable=import-outside-toplevel
  sides = {features.HEIGHT: "height", features.WIDTH: "width"}
  found = {}
  for folder in sorted(tf.io.gfile.glob(os.path.join(statistics_uri,
                                                     "Split-*"))):
    path = os.path.join(folder, "FeatureStats.pb")
    if not tf.io.gfile.exists(path):
      continue
    split = os.path.basename(folder.rstrip("/"))[len("Split-"):]
    for dataset in tfdv.load_stats_binary(path).datasets:
      for feature in dataset.features:
        name = feature.name or "/".join(feature.path.step)
        if name in sides:
          n = feature.num_stats
          found.setdefault(split, {})[sides[name]] = {
              "min": n.min, "median": n.median, "mean": n.mean,
              "max": n.max}
  return found


def build_results(summary, infos, evaluation, production_evaluation, selected,
                  selection, decision, production_comparison, pushed_path,
                  thresholds, num_classes, rejected_files=(), image_sizes=None):
  """num_classes: counted in the Transform vocabulary at run time (by
  ModelSelector); top-5 is reported only above 5. rejected_files: the
  ingest's first rejected {path, reason} rows."""
  overall, per_class = evaluation
  prod_overall, _ = production_evaluation
  first = next(iter(infos.values()))
  task = _task(first)
  models = {name: _model_results(name, info, overall, per_class, task,
                                 num_classes)
            for name, info in infos.items()}
  # Without a production model Evaluator_production evaluates nothing: then
  # the candidate's metrics are those of the candidates' evaluation, on the
  # same eval examples.
  candidate_metrics = prod_overall.get("candidate") or overall[selected]
  production = {"candidate": selected, "comparison": production_comparison,
                "decision": decision,
                **task.production_results(candidate_metrics,
                                          prod_overall.get("production", {}))}
  thresholds = {**thresholds, **task.thresholds(overall)}
  scores = Scores({n: task.headline(m) for n, m in models.items()}, task)
  pushed = selected if pushed_path else None
  entries = [sweep.Entry(n, scores[n], models[n]["cost"], True)
             for n in models if "cost" in models[n]]
  return {
      "task": task.name,
      "candidates": list(models),
      "front": (sweep.front(entries, selection.get("cost", costs.DEFAULT),
                            task.higher_is_better)
                if len(entries) == len(models) else []),
      "models": models,
      "class_names": first["class_names"],
      "selected": selected,
      "selection": selection,
      "production": production,
      "pushed": pushed,
      "pushed_path": pushed_path,
      "reason": explain(selected, selection, scores, thresholds["floor"],
                        thresholds["min_gain"],
                        thresholds["production_tolerance"], production,
                        decision),
      "power_note": _power_note(selection),
      "thresholds": thresholds,
      "examples": {"train": summary["splits"].get("train", 0),
                   "eval": summary["splits"].get("eval", 0)},
      "rejected": summary["rejected"],
      "seen": summary["seen"],
      # Per class folder ("<split folder>/<class>"): ingested and rejected.
      "class_folders": summary.get("classes", {}),
      "rejected_files": list(rejected_files),
      "image_sizes": dict(image_sizes or {}),
  }




def _power_note(selection):
  """The pair's, or the chosen candidate's comparison with the best (else
  the first one the sweep made)."""
  if in_pair_words(selection):
    return stats.power_note(stats.Comparison.from_dict(selection))
  compared = selection[SWEEP]["comparisons"]
  found = compared.get(selection[SWEEP]["chosen"]) or next(
      iter(compared.values()), None)
  return stats.power_note(stats.Comparison.from_dict(found)) if found else ""


def _gates(results):
  """(name, Comparison dict) of each comparison a gate made."""
  selection = results["selection"]
  if in_pair_words(selection):
    gates = [("learned vs bilinear", selection)]
  else:
    best = selection[SWEEP]["best"]
    gates = [(f"{name} vs {best} (best)", c)
             for name, c in selection[SWEEP]["comparisons"].items()]
  return gates + [("candidate vs production",
                   results["production"]["comparison"])]


def _comparison_rows(results):
  task = _task(results)
  rows = [f"| gate | {task.difference_unit} | interval | p | test | eval "
          "images |", "|---|---|---|---|---|---|"]
  gates = _gates(results)
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


def candidate_rows(results):
  """Each candidate's serving cost and where the gate left it."""
  selection = results["selection"]
  decision = selection.get(SWEEP, {})
  adjusted = decision.get("adjusted_p", {})
  front = set(results.get("front", ()))
  rows = ["| candidate | input → target | GFLOPs / image | latency b1 / b32 "
          "(ms / image) | SavedModel (MB) | adjusted p vs best | front | gate |",
          "|---|---|---|---|---|---|---|---|"]
  for name in results["candidates"]:
    m = results["models"][name]
    cost = m.get("cost")
    if cost is None:
      continue
    if name == decision.get("chosen"):
      status = "chosen" + (" (best)" if name == decision.get("best") else "")
    elif name == decision.get("best"):
      status = "best" + (f": {decision['dropped'][name]}"
                         if name in decision.get("dropped", {}) else "")
    else:
      status = decision.get("dropped", {}).get(name, "")
    p = f"{adjusted[name]:.3g}" if name in adjusted else ""
    rows.append(
        f"| {name} | {m.get('input_size', '')} → {m.get('target_size', '')} "
        f"| {cost['flops_per_image'] / 1e9:.3g} | "
        f"{cost['latency_ms_batch1']:.3g} / {cost['latency_ms_batch32']:.3g} "
        f"| {cost['saved_model_bytes'] / 2 ** 20:.3g} | {p} | "
        f"{'yes' if name in front else ''} | {status} |")
  machine = next((results["models"][n]["cost"].get("machine")
                  for n in results["candidates"]
                  if "cost" in results["models"][n]), "")
  rows.append("")
  rows.append(f"Latency measured on: {machine}.")
  return rows


def results_table(results):
  """The seed's table (model, parameters in millions, the task's scores),
  the paired comparisons behind both gates, the reason."""
  task = _task(results)
  rows = list(task.table_header())
  for name in results.get("candidates", ("learned", "bilinear")):
    m = results["models"][name]
    pushed = " (pushed)" if results["pushed"] == name else ""
    rows.append(f"| {name}{pushed} | {m['params'] / 1e6:.3f} | "
                f"{task.table_cells(m)} |")
  text = "\n".join(rows) + "\n\n" + "\n".join(_comparison_rows(results))
  if any("cost" in m for m in results["models"].values()):
    text += "\n\n" + "\n".join(candidate_rows(results))
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


class ResultsReportSpec(types.ComponentSpec):
  """The inputs every report has; ResultsReport adds model_<name> and
  run_<name> per candidate (as ModelSelector's)."""
  PARAMETERS = {
      CANDIDATES: ExecutionParameter(type=str),
      "report_dir": ExecutionParameter(type=str),
      "min_gain": ExecutionParameter(type=float),
      "production_tolerance": ExecutionParameter(type=float),
      "confidence": ExecutionParameter(type=float),
      "input_size": ExecutionParameter(type=int),
      "tensorboard_dir": ExecutionParameter(type=str),
      # The Trainers' <run> (trainer/tensorboard.py); "": this process's.
      "tensorboard_run": ExecutionParameter(type=str),
  }
  INPUTS = {
      "examples": ChannelParameter(type=standard_artifacts.Examples),
      "ingest_report": ChannelParameter(type=IngestReport),
      "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
      "selected_model": ChannelParameter(type=standard_artifacts.Model),
      "push_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
      "pushed_model": ChannelParameter(type=standard_artifacts.PushedModel),
      # With nothing in production: none (skipped locally) or not evaluated().
      "production_evaluation": ChannelParameter(
          type=standard_artifacts.ModelEvaluation, optional=True),
      # StatisticsGen's: the image sizes the card states.
      "statistics": ChannelParameter(
          type=standard_artifacts.ExampleStatistics, optional=True),
  }
  OUTPUTS = {}


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    one = lambda key: artifact_utils.get_single_instance(input_dict[key])  # noqa: E731
    names = json.loads(exec_properties[CANDIDATES])
    models = candidate_inputs.one_each(input_dict, names, model_key(""),
                                       "ResultsReport")
    runs = candidate_inputs.one_each(input_dict, names, run_key(""),
                                     "ResultsReport")
    production = input_dict.get("production_evaluation") or [None]
    statistics = input_dict.get("statistics") or [None]
    write_report(
        examples=one("examples"), ingest_report=one("ingest_report"),
        models=models, runs=runs, evaluation=one("evaluation"),
        selected_model=one("selected_model"),
        push_blessing=one("push_blessing"), pushed_model=one("pushed_model"),
        production_evaluation=production[0], statistics=statistics[0], **{
            k: exec_properties[k] for k in (
                "report_dir", "min_gain", "production_tolerance",
                "confidence", "input_size", "tensorboard_dir",
                "tensorboard_run")})


def write_report(examples, ingest_report, models, runs, evaluation,
                 selected_model, push_blessing, pushed_model, report_dir,
                 min_gain, production_tolerance, confidence, input_size,
                 tensorboard_dir, tensorboard_run, production_evaluation=None,
                 statistics=None):
  """results.json, results.md, the figures and the model card of a run;
  models / runs: {candidate name: its Trainer's artifact}, in order."""
  infos = {name: read_info(run.uri) for name, run in runs.items()}
  task = _task(next(iter(infos.values())))
  task.prepare_infos(evaluation.uri, infos)
  pushed = pushed_model.get_int_custom_property("pushed") == 1
  selection = json.loads(selected_model.get_string_custom_property(COMPARISON))
  results = build_results(
      summary=_read_json(os.path.join(ingest_report.uri, SUMMARY_FILE)),
      infos=infos, evaluation=load_metrics(evaluation.uri),
      production_evaluation=(load_metrics(production_evaluation.uri)
                             if evaluated(production_evaluation)
                             else ({}, {})),
      selected=selected_model.get_string_custom_property(SELECTED),
      selection=selection,
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
      rejected_files=_first_rejected(ingest_report.uri),
      image_sizes=image_sizes(statistics.uri) if statistics else {})
  if results["pushed_path"]:
    results["pushed_model_card"] = {
        name: beside_pushed_model(results["pushed_path"], name)
        for name in (model_card.MARKDOWN_FILE, model_card.HTML_FILE)}
  tf.io.gfile.makedirs(report_dir)
  _write(os.path.join(report_dir, RESULTS_FILE),
         json.dumps(results, indent=2, sort_keys=True))
  title = ("Learned resizer vs bilinear" if sorted(models) == sorted(
      ("learned", "bilinear")) else f"{len(models)} candidates")
  _write(os.path.join(report_dir, "results.md"),
         f"# {title}\n\n" + results_table(results))
  figures.training_curves(infos, task.score,
                          os.path.join(report_dir, "training.png"))
  model_uris = {name: model.uri for name, model in models.items()}
  for name in task.figures:
    figures.FIGURES[name](examples.uri, model_uris, report_dir)
  figures.resized_grid(examples, [(n, models[n].uri, runs[n].uri, infos[n])
                                  for n in models], input_size,
                       os.path.join(report_dir, "resized.png"))
  drawn = ["resized.png", "training.png"]
  if all("cost" in m for m in results["models"].values()):
    pareto_figure(results, os.path.join(report_dir, PARETO_FILE))
    drawn.append(PARETO_FILE)
  write_model_card(results, report_dir,
                   drawn + [f"{name}.png" for name in task.figures])
  for name, path in results.get("pushed_model_card", {}).items():
    # Beside the version folder, not in it: the pushed files stay the
    # selected model's, and TF Serving and predict skip non-numeric names.
    tf.io.gfile.copy(os.path.join(report_dir, name), path, overwrite=True)
  # Last: a bad run name fails here, with every report file written.
  tensorboard.write_comparison(
      tensorboard_dir, tensorboard_run or tensorboard.current_run(),
      comparison_text(results))


PARETO_FILE = "pareto.png"


def pareto_points(results):
  """pareto.png's points: each candidate's cost in the gate's unit and its
  score, with the bounds of the score the interval of its difference to the
  best puts it in (none for the best)."""
  task = _task(results)
  decision = results["selection"][SWEEP]
  cost = results["selection"].get("cost", costs.DEFAULT)
  field, _, scale = costs.COSTS[cost]
  best = task.headline(results["models"][decision["best"]])
  points = []
  for name in results["candidates"]:
    m = results["models"][name]
    point = {"name": name, "cost": m["cost"][field] * scale,
             "score": task.headline(m), "lower": None, "upper": None}
    c = decision["comparisons"].get(name)
    if c is not None:
      # A difference in the task's headline units (top-1) moves the score;
      # an MSE reduction is not in RMSE units, so no bar is drawn.
      if c.get("metric", "top-1") == "top-1":
        point["lower"], point["upper"] = best + c["lower"], best + c["upper"]
    points.append(point)
  return points


def pareto_figure(results, path):
  task = _task(results)
  cost = results["selection"].get("cost", costs.DEFAULT)
  figures.pareto(pareto_points(results), results["selected"],
                 results["front"], costs.COSTS[cost][1],
                 task.score_label or task.score, path)


class ResultsReport(base_component.BaseComponent):
  """models / runs: {candidate name: its Trainer's model / model_run
  channel}, in the candidates' order."""

  SPEC_CLASS = ResultsReportSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, examples, ingest_report,
               models: Mapping[str, types.BaseChannel],
               runs: Mapping[str, types.BaseChannel], evaluation,
               selected_model, push_blessing, pushed_model, report_dir: str,
               min_gain: float, production_tolerance: float,
               confidence: float, input_size: int, tensorboard_dir: str,
               tensorboard_run: str,
               production_evaluation: Optional[types.BaseChannel] = None,
               statistics: Optional[types.BaseChannel] = None):
    names = list(models)
    spec_class = candidate_inputs.spec_class(ResultsReportSpec, names)
    super().__init__(spec=spec_class(
        examples=examples, ingest_report=ingest_report,
        evaluation=evaluation, selected_model=selected_model,
        push_blessing=push_blessing, pushed_model=pushed_model,
        production_evaluation=production_evaluation, statistics=statistics,
        candidates=json.dumps(names), report_dir=report_dir,
        min_gain=float(min_gain),
        production_tolerance=float(production_tolerance),
        confidence=float(confidence), input_size=int(input_size),
        tensorboard_dir=tensorboard_dir, tensorboard_run=tensorboard_run,
        **candidate_inputs.channels({model_key(""): models,
                                     run_key(""): runs})))
