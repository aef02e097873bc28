"""ResultsReport: the decision record of a run, as results.json and results.md.

Reads what the components recorded (ingest counts, Trainer model_info.json,
TFMA metrics, the blessing and the Pusher's result); it decides nothing.
"""
import json
import os

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.types import standard_artifacts
from tfx.v1.dsl.components import InputArtifact, Parameter, component

from components.image_example_gen.component import IngestReport
from components.image_example_gen.executor import SUMMARY_FILE
from trainer.task import MODEL_INFO

TOP1 = "sparse_categorical_accuracy"  # TFMA metric name of SparseCategoricalAccuracy


def overall_metrics(evaluation_uri):
  """{model_name: {metric_name: value}} on the overall slice."""
  out = {}
  for metrics in tfma.load_metrics(evaluation_uri):
    if metrics.slice_key.single_slice_keys:
      continue
    for kv in metrics.metric_keys_and_values:
      if kv.key.is_diff:
        continue
      if kv.value.HasField("double_value"):
        out.setdefault(kv.key.model_name, {})[kv.key.name] = \
            kv.value.double_value.value
  return out


def _read_json(path):
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def build_results(summary, infos, metrics, blessed, pushed, pushed_path,
                  min_gain, floor):
  models = {}
  for name, info in infos.items():
    models[name] = {"params": info["params"],
                    "trainable_params": info["trainable_params"],
                    "top1": metrics.get(name, {}).get(TOP1),
                    "metrics": metrics.get(name, {}),
                    "history": info["history"]}
  learned, bilinear = models["learned"]["top1"], models["bilinear"]["top1"]
  if pushed:
    reason = (f"learned resizer pushed: top-1 {learned:.4f} vs bilinear "
              f"{bilinear:.4f} meets the minimum gain {min_gain:+.4f} and the "
              f"floor {floor:.4f}")
  else:
    reason = (f"nothing pushed: the learned resizer (top-1 {learned:.4f}) was "
              f"{'blessed but the push failed' if blessed else 'not blessed'}; "
              f"it needs at least bilinear {bilinear:.4f} {min_gain:+.4f} and "
              f"the floor {floor:.4f}")
  return {
      "models": models,
      "pushed": "learned" if pushed else None,
      "pushed_path": pushed_path if pushed else None,
      "reason": reason,
      "thresholds": {"min_gain": min_gain, "floor": floor},
      "examples": {"train": summary["splits"].get("train", 0),
                   "eval": summary["splits"].get("eval", 0)},
      "rejected": summary["rejected"],
      "seen": summary["seen"],
  }


def results_table(results):
  rows = ["| model | parameters (M) | top-1 |", "|---|---|---|"]
  for name in ("learned", "bilinear"):
    m = results["models"][name]
    pushed = " (pushed)" if results["pushed"] == name else ""
    rows.append(f"| {name}{pushed} | {m['params'] / 1e6:.6f} | "
                f"{m['top1']:.4f} |")
  return "\n".join(rows) + "\n\n" + results["reason"] + "\n"


@component
def ResultsReport(
    ingest_report: InputArtifact[IngestReport],
    learned_run: InputArtifact[standard_artifacts.ModelRun],
    bilinear_run: InputArtifact[standard_artifacts.ModelRun],
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    blessing: InputArtifact[standard_artifacts.ModelBlessing],
    pushed_model: InputArtifact[standard_artifacts.PushedModel],
    report_dir: Parameter[str],
    min_gain: Parameter[float],
    floor: Parameter[float]):
  infos = {"learned": _read_json(os.path.join(learned_run.uri, MODEL_INFO)),
           "bilinear": _read_json(os.path.join(bilinear_run.uri, MODEL_INFO))}
  results = build_results(
      summary=_read_json(os.path.join(ingest_report.uri, SUMMARY_FILE)),
      infos=infos, metrics=overall_metrics(evaluation.uri),
      blessed=bool(blessing.get_int_custom_property("blessed")),
      pushed=bool(pushed_model.get_int_custom_property("pushed")),
      pushed_path=pushed_model.get_string_custom_property("pushed_destination"),
      min_gain=min_gain, floor=floor)
  tf.io.gfile.makedirs(report_dir)
  with tf.io.gfile.GFile(os.path.join(report_dir, "results.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)
  with tf.io.gfile.GFile(os.path.join(report_dir, "results.md"), "w") as f:
    f.write("# Learned resizer vs bilinear\n\n" + results_table(results))
