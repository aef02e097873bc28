"""The run's model card: results.json's facts in the sections and field names
of the Model Card Toolkit schema, rendered to Markdown and to self-contained
HTML (figures as data: URIs) with Jinja2.

Model Card Toolkit itself can't be installed beside TFX 1.16 (it pins
protobuf < 4 and TFX < 1.11); Jinja2 is already in TFX's dependency set.
Fields outside that schema: `decision` (the gates, and the sweep over the
candidates), the models' numbers and costs beside `model_architecture`, and
the ingest counts under `data`.
"""
import base64
import datetime
import html
import importlib.metadata
import os

import jinja2

import tasks
from gate import costs
from gate.sweep import adjustment
from trainer.text import escape

DISTRIBUTION = "learnable-resizer-pipeline"  # setup.py's name
# The pipeline's commit: git is not there on Vertex, so the image build
# records it (Dockerfile: --build-arg PIPELINE_COMMIT=$(git rev-parse HEAD)).
COMMIT_ENV = "PIPELINE_COMMIT"
UNKNOWN = "unknown"
MARKDOWN_FILE, HTML_FILE = "model_card.md", "model_card.html"  # in report_dir
PAPER = ("Talebi and Milanfar, Learning to Resize Images for Computer Vision "
         "Tasks, ICCV 2021 (arXiv:2103.09950)")
NUMBER = ".4g"  # how the card prints every metric and bound
MODELS = ("learned", "bilinear")  # a run's candidates before the sweep
GATES = (("learned", "bilinear"), ("candidate", "production"))
# What a model's architecture names, of model_info.json's fields.
ARCHITECTURE = ("backbone", "resizer", "resizer_config", "input_size",
                "target_size", "params", "trainable_params", "precision",
                "strategy", "replicas", "recipe")
# The recipe's settings the card states (TrainConfig's names).
RECIPE = ("epochs", "batch_size", "learning_rate", "schedule", "warmup_epochs",
          "optimizer", "ema", "augment", "bn_recalibration", "seed")


MEGABYTE = 1e6  # the card states a SavedModel's size in MB


def candidates(results):
  """The candidates' names in the order given (the default pair for a
  results.json written before candidates were named)."""
  return list(results.get("candidates") or MODELS)


def _cost(record):
  """A model_info.json cost record in the card's units ({} without one)."""
  if not record:
    return {}
  field, _, scale = costs.COSTS["flops"]
  return {"gflops": record[field] * scale,
          "latency_ms_batch1": record["latency_ms_batch1"],
          "latency_ms_batch32": record["latency_ms_batch32"],
          "saved_model_mb": record["saved_model_bytes"] / MEGABYTE,
          "machine": record["machine"]}


def pipeline_version():
  """{name, commit}: the installed package's version and $PIPELINE_COMMIT,
  each "unknown" when not known."""
  try:
    name = importlib.metadata.version(DISTRIBUTION)
  except importlib.metadata.PackageNotFoundError:
    name = UNKNOWN
  return {"name": name, "commit": os.environ.get(COMMIT_ENV) or UNKNOWN}


def _architecture_text(name, model):
  resizer = model.get("resizer", name)
  sizes = ""
  if "input_size" in model and "target_size" in model:
    sizes = (f": {model['input_size']}px images resized to "
             f"{model['target_size']}px")
  return (f"{name}: {model.get('backbone', UNKNOWN)} backbone behind a "
          f"{resizer} resizer{sizes}; {model['params']} parameters "
          f"({model['trainable_params']} trainable)")


def _comparison_metrics(gate, comparison):
  a, b = gate
  kind = f"{comparison['metric']} gain of {a} over {b}"
  shared = {"slice": f"eval ({comparison['n']} paired images)"}
  return [{"type": kind, "value": comparison["difference"],
           "confidence_interval": {"lower_bound": comparison["lower"],
                                   "upper_bound": comparison["upper"]},
           "confidence": comparison["confidence"], **shared},
          {"type": f"{kind}: p-value ({comparison['test']})",
           "value": comparison["p_value"], **shared}]


def _superiority(selection):
  """The learned-vs-bilinear Comparison when the superiority gate of the
  default pair decided (its fields are then at the top level), else None."""
  return selection if "difference" in selection else None


def _sweep_metrics(sweep):
  """Each tested candidate's comparison with the best, with its adjusted
  p-value (gate/sweep.py, step 3)."""
  metrics = []
  how = adjustment(sweep["rivals"], len(sweep["comparisons"]))
  for name, comparison in sweep["comparisons"].items():
    rows = _comparison_metrics((name, sweep["best"]), comparison)
    metrics.extend(rows)
    metrics.append({**rows[-1], "value": sweep["adjusted_p"][name],
                    "type": f"{rows[0]['type']}: adjusted p-value{how}"})
  return metrics


def _performance_metrics(results, task):
  metrics = []
  for name in candidates(results):
    model = results["models"][name]
    for kind, slice_name, value in task.card_metrics(model):
      metrics.append({"type": f"{name} {kind}", "value": value,
                      "slice": slice_name})
  comparisons = (_superiority(results["selection"]),
                 results["production"]["comparison"])
  for gate, comparison in zip(GATES, comparisons):
    if comparison is not None:
      metrics.extend(_comparison_metrics(gate, comparison))
  if results["selection"].get("sweep"):
    metrics.extend(_sweep_metrics(results["selection"]["sweep"]))
  return metrics


def _split(results, name):
  count = results["examples"][name]
  return {"name": name, "examples": count,
          "description": f"{count} examples in the {name} split"}


def _data(results):
  return {"train": _split(results, "train"), "eval": _split(results, "eval"),
          # TFDV's statistics of the ingested images' sides, per split.
          "image_sizes": results.get("image_sizes", {}),
          "ingest": {"seen": results["seen"], "rejected": results["rejected"],
                     "class_folders": results.get("class_folders", {}),
                     "rejected_files": results.get("rejected_files", [])}}


def _sweep(selection, front):
  """The sweep's decision as the card states it (None before the sweep)."""
  sweep = selection.get("sweep")
  if not sweep:
    return None
  cost = selection.get("cost", costs.DEFAULT)
  return {"outcome": sweep["outcome"], "chosen": sweep["chosen"],
          "best": sweep["best"], "reason": sweep["reason"],
          "cost": f"{cost} ({costs.COSTS[cost][1]})",
          "budgets": {k: "none" if v is None else format(v, "g")
                      for k, v in sorted(selection.get("budgets",
                                                       {}).items())},
          "front": list(front or ()),
          "dropped": [{"name": n, "reason": why}
                      for n, why in sweep["dropped"].items()]}


def _considerations(results, task):
  limitations = [
      f"Measured on {results['examples']['eval']} eval images only; the "
      "intervals (quantitative analysis) say how far the numbers "
      "can be trusted.",
      f"Only {task.name} on the images this run ingested: "
      f"{results['rejected']} of {results['seen']} files were refused "
      "(data section) and nothing is known of images unlike those."]
  if results.get("power_note"):
    limitations.append(results["power_note"])
  return {
      "users": [{"description": "whoever deploys or reviews this run's "
                                "pushed model"}],
      "use_cases": [{"description": task.card_use_case()}],
      "limitations": [{"description": text} for text in limitations],
      "tradeoffs": [{"description": (
          "The learned resizer adds parameters and compute before the "
          "backbone; bilinear is pushed unless the learned model is "
          "significantly better (decision section)."
          if candidates(results) == list(MODELS) else
          "A learned resizer and a larger input add compute before the "
          "backbone (costs in model parameters); the cheapest candidate "
          "not significantly worse than the best is pushed (decision "
          "section).")}],
      "ethical_considerations": [{
          "name": "The data's labels and who is in the images are whatever "
                  "the data folder held; this pipeline does not check them.",
          "mitigation_strategy": "Review the data, and per-class recall "
                                 "where there are classes, before any use "
                                 "that affects people."}],
  }


def model_card(results, figures, version=None, date=None):
  """The card (a dict in the Model Card Toolkit's sections) of a run's
  results.json; figures: {file name: PNG bytes}; version: {name, commit}
  (pipeline_version() by default); date: ISO date (today, UTC)."""
  task = tasks.get(results["task"])
  version = version or pipeline_version()
  date = date or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
  selected = results["selected"]
  models = {}
  for name in candidates(results):
    model = results["models"][name]
    models[name] = {k: model[k] for k in ARCHITECTURE if k in model}
    models[name]["epochs"] = len(model["history"].get("loss", []))
    models[name]["cost"] = _cost(model.get("cost"))
    models[name]["recipe"] = {k: model["recipe"][k] for k in RECIPE
                              if k in model.get("recipe", {})}
  gate = ("learned vs bilinear" if _superiority(results["selection"])
          or "sweep" not in results["selection"]
          else f"{len(models)} candidates")
  return {
      "model_details": {
          "name": f"{task.name} model, {selected} resizer",
          "overview": results["reason"],
          "version": {"name": version["name"], "date": date,
                      "commit": version["commit"]},
          "references": [{"reference": PAPER}],
          "path": results["pushed_path"],
      },
      "model_parameters": {
          "model_architecture": _architecture_text(
              selected, results["models"][selected]),
          "models": models,
          "data": _data(results),
          "input_format": ("serving_default: serialized tf.Examples with the "
                           "encoded image (JPEG, PNG, ...) in image/encoded; "
                           "serving_images: the encoded images"),
          "output_format": task.card_output_format(),
      },
      "quantitative_analysis": {
          "performance_metrics": _performance_metrics(results, task),
          "graphics": {"collection": [
              {"name": name, "image": base64.b64encode(data).decode("ascii")}
              for name, data in sorted(figures.items())]},
      },
      "considerations": _considerations(results, task),
      "decision": {
          "selected": selected,
          "selection_gate": gate,
          "selection_outcome": results["selection"]["outcome"],
          "sweep": _sweep(results["selection"], results.get("front")),
          "production_decision": results["production"]["decision"],
          "pushed": results["pushed"],
          "reason": results["reason"],
          "power_note": results.get("power_note") or "",
          "thresholds": results["thresholds"],
      },
  }


def _number(value):
  return "" if value is None else format(value, NUMBER)


def _markdown(text):
  """Text from outside (class names, file names, reasons) inert in Markdown:
  no HTML, no table cell break, no line break."""
  text = html.escape(escape(text), quote=False)
  return text.replace("|", "\\|").replace("`", "\\`").replace("*", "\\*")


def _environment(autoescape):
  env = jinja2.Environment(
      loader=jinja2.PackageLoader("components.results_report", "templates"),
      autoescape=autoescape, undefined=jinja2.StrictUndefined,
      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
  env.filters["num"] = _number
  env.filters["md"] = _markdown
  env.filters["printable"] = escape
  env.globals["recipe_keys"] = RECIPE
  return env


def render_markdown(card):
  return _environment(False).get_template("model_card.md.j2").render(card=card)


def render_html(card):
  """Self-contained: the figures are data: URIs, nothing is loaded."""
  return _environment(True).get_template("model_card.html.j2").render(
      card=card)
