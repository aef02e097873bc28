"""ModelSelector: where the gate over the candidates decides.

The SweepEvaluator scored every candidate on the same eval examples and kept
every pair's paired statistics (gate/tfma_metric.py); each Trainer measured
its model's serving cost (model_info.json "cost"). gate/sweep.py chooses:
the cheapest candidate (by --cost, within the budgets) that clears the floor
and is not behind the best by more than `min_gain` at `confidence`,
corrected for choosing the best and for the number compared (gate/sweep.py,
step 3). For the default
pair (learned, and the cheaper bilinear) that is the superiority gate:
learned only when it clears the floor and is ahead of bilinear by more than
min_gain. The floor (`floor`, else the task's default, e.g. just above
chance from the Transform graph's label vocabulary) is resolved here, at run
time, and recorded on the output with the evidence.

Each candidate has its own inputs, model_<name> and run_<name>
(components/candidate_inputs.py).
"""
import hashlib
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_component, base_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils

import tasks
from components import candidate_inputs, result
from components.candidate_inputs import model_key, run_key
from gate import costs, stats, sweep, tfma_metric
from trainer.training import MODEL_INFO

SELECTED = "selected"        # custom property: "learned" | "bilinear"
FINGERPRINT = "fingerprint"  # custom property: sha256 of the model's files
COMPARISON = "comparison"    # custom property: JSON of the gate's evidence
FLOOR = "floor"              # custom property: the floor both gates use
                             # (the task's: a top-1, an RMSE)
NUM_CLASSES = "num_classes"  # custom property: classes the floor was set from
# custom property: 1 when a model is in production (the resolver found one),
# else 0; the pipeline runs Evaluator_production only when it is 1.
IN_PRODUCTION = "in_production"
# Why the selection came out as it did (COMPARISON["outcome"]).
AHEAD, NOT_SIGNIFICANT, UNDER_FLOOR = "ahead", "not_significant", "under_floor"
OUTCOMES = {AHEAD: "the learned resizer is ahead",
            NOT_SIGNIFICANT: "no significant difference",
            UNDER_FLOOR: "the learned model is under the floor"}


def score(evaluation_uri, model_name, task):
  """The task's headline score of `model_name` in a TFMA evaluation."""
  value = tasks.named(task).score_of(
      tfma_metric.load_values(evaluation_uri, model_name))
  if value is None:
    raise RuntimeError(f"{evaluation_uri}: no score of {model_name!r} in the "
                       "TFMA evaluation")
  return value


def fingerprint(model_dir):
  """Content hash of a model folder: equal models hash equal wherever they are."""
  digest = hashlib.sha256()
  for dirpath, _, files in sorted(tf.io.gfile.walk(model_dir)):
    for name in sorted(files):
      path = os.path.join(dirpath, name)
      digest.update(os.path.relpath(path, model_dir).encode())
      with tf.io.gfile.GFile(path, "rb") as f:
        digest.update(f.read())
  return digest.hexdigest()


def select(above_floor, comparison, min_gain):
  """(selected model, outcome) of the default pair from the learned model's
  floor check and its Comparison with bilinear: gate/sweep.py's decision
  for two candidates, learned the costlier (bilinear's floor aside)."""
  learned, bilinear = PAIR
  entries = [sweep.Entry(learned, comparison.difference, {"flops_per_image": 2},
                         above_floor),
             sweep.Entry(bilinear, 0.0, {"flops_per_image": 1}, True)]
  decision = sweep.decide(
      entries, lambda a, b: comparison if a == learned else
      comparison.mirrored(), min_gain, comparison.confidence)
  return decision.chosen, pair_outcome(decision)


def result_line(name, outcome, comparison):
  """'learned (the learned resizer is ahead; +4.0 points, 95% CI ..., p =
  ..., 100 eval images)': the step's result."""
  return f"{name} ({OUTCOMES[outcome]}; {stats.describe(comparison)})"


def read_comparison(evaluation_uri, model_name, confidence,
                    task=""):
  """The paired Comparison of `model_name` against the evaluation's baseline,
  by the task's paired test (tasks/)."""
  return tasks.named(task).compare(evaluation_uri, model_name, confidence)


CANDIDATES = "candidates"  # parameter: JSON list of the names, in order
SWEEP = "sweep"            # COMPARISON["sweep"]: gate/sweep.py's Decision
PAIR = ("learned", "bilinear")


def read_info(run_uri):
  with tf.io.gfile.GFile(os.path.join(run_uri, MODEL_INFO)) as f:
    return json.load(f)


def pair_outcome(decision):
  """The default pair's outcome (AHEAD, NOT_SIGNIFICANT, UNDER_FLOOR) when
  the decision is the superiority gate's, else None."""
  learned, bilinear = PAIR
  if decision.outcome == sweep.UNDER_FLOOR and decision.chosen == bilinear:
    return UNDER_FLOOR
  if decision.outcome not in (sweep.CHEAPEST, sweep.COSTLIER):
    return None
  if decision.chosen == bilinear:
    return (UNDER_FLOOR if decision.dropped.get(learned) == "under the floor"
            else NOT_SIGNIFICANT)
  if decision.dropped.get(bilinear, "").startswith(sweep.BEHIND):
    return AHEAD
  return None


def choose(evaluation_uri, transform_graph_uri, infos, names, task, floor,
           min_gain, confidence, cost, budgets):
  """(Decision, floor, number of classes, the COMPARISON record) for
  candidates `names` (in the order given) with model_info.json `infos`."""
  kind = tasks.named(task)
  threshold, num_classes = kind.floor(floor, evaluation_uri,
                                      transform_graph_uri)
  entries = []
  for name in names:
    value = score(evaluation_uri, name, task)
    entries.append(sweep.Entry(name, value, infos[name]["cost"],
                               kind.clears(value, threshold)))
  decision = sweep.decide(
      entries, lambda a, b: kind.compare_pair(evaluation_uri, a, b,
                                              confidence),
      min_gain, confidence, cost, budgets, kind.higher_is_better)
  record = {"margin": min_gain, "outcome": decision.outcome, "cost": cost,
            "budgets": budgets, SWEEP: decision.as_dict()}
  outcome = pair_outcome(decision) if sorted(names) == sorted(PAIR) else None
  if outcome is not None:
    # The default pair's evidence, as the report states it: learned vs
    # bilinear, whichever was best.
    record.update(kind.compare_pair(evaluation_uri, *PAIR,
                                    confidence).as_dict(), outcome=outcome)
  return decision, threshold, num_classes, record


def in_pair_words(record):
  """Whether a COMPARISON record is the default pair's superiority gate
  (its learned-vs-bilinear evidence at top level), else a sweep's."""
  return "difference" in record


def line(decision, record):
  """The step's result line: the pair's, or the sweep's choice."""
  if in_pair_words(record):
    return result_line(decision.chosen, record["outcome"],
                       stats.Comparison.from_dict(record))
  return f"{decision.chosen} ({decision.reason})"


class ModelSelectorSpec(types.ComponentSpec):
  """The inputs every selection has; ModelSelector adds model_<name> and
  run_<name> per candidate."""
  PARAMETERS = {
      CANDIDATES: ExecutionParameter(type=str),
      "min_gain": ExecutionParameter(type=float),
      "confidence": ExecutionParameter(type=float),
      "floor": ExecutionParameter(type=float, optional=True),
      "task": ExecutionParameter(type=str, optional=True),
      "cost": ExecutionParameter(type=str),
      **{budget: ExecutionParameter(type=float, optional=True)
         for budget in costs.BUDGETS},
  }
  INPUTS = {
      "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
      "transform_graph": ChannelParameter(
          type=standard_artifacts.TransformGraph),
      "production_model": ChannelParameter(type=standard_artifacts.Model,
                                           optional=True),
  }
  OUTPUTS = {"model": ChannelParameter(type=standard_artifacts.Model)}


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    names = json.loads(exec_properties[CANDIDATES])
    models = candidate_inputs.one_each(input_dict, names, model_key(""),
                                       "ModelSelector")
    infos = {name: read_info(run.uri) for name, run in
             candidate_inputs.one_each(input_dict, names, run_key(""),
                                       "ModelSelector").items()}
    evaluation = artifact_utils.get_single_instance(input_dict["evaluation"])
    graph = artifact_utils.get_single_instance(input_dict["transform_graph"])
    decision, threshold, num_classes, record = choose(
        evaluation.uri, graph.uri, infos, names,
        exec_properties.get("task") or "", exec_properties.get("floor"),
        float(exec_properties["min_gain"]),
        float(exec_properties["confidence"]), exec_properties["cost"],
        {b: exec_properties.get(b) for b in costs.BUDGETS})
    model = artifact_utils.get_single_instance(output_dict["model"])
    io_utils.copy_dir(models[decision.chosen].uri, model.uri)
    model.set_string_custom_property(SELECTED, decision.chosen)
    model.set_string_custom_property(FINGERPRINT, fingerprint(model.uri))
    model.set_string_custom_property(COMPARISON, json.dumps(record))
    model.set_float_custom_property(FLOOR, threshold)
    # A TFX conditional can test a property of an artifact, not whether a
    # channel (the resolver's) is empty: record it here, on an artifact that
    # always exists.
    model.set_int_custom_property(
        IN_PRODUCTION, int(bool(input_dict.get("production_model"))))
    model.set_int_custom_property(NUM_CLASSES, num_classes)
    result.record(model, line(decision, record))


class ModelSelector(base_component.BaseComponent):
  """models / runs: {candidate name: its Trainer's model / model_run
  channel}, in the candidates' order; floor: the task's floor (its --floor
  help), None: its default; min_gain: the tolerance of the gate."""

  SPEC_CLASS = ModelSelectorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, models: Mapping[str, types.BaseChannel],
               runs: Mapping[str, types.BaseChannel],
               evaluation: types.BaseChannel,
               transform_graph: types.BaseChannel,
               production_model: Optional[types.BaseChannel] = None,
               min_gain: float = 0.0, confidence: float = 0.95,
               floor: Optional[float] = None, task: str = "",
               cost: str = costs.DEFAULT,
               budgets: Optional[Mapping[str, Optional[float]]] = None):
    names = list(models)
    if sorted(names) != sorted(runs):
      raise ValueError(f"ModelSelector: models {names} and runs "
                       f"{list(runs)} must name the same candidates")
    spec_class = candidate_inputs.spec_class(ModelSelectorSpec, names)
    budgets = {b: v for b, v in (budgets or {}).items() if v is not None}
    optional = {k: v for k, v in (("floor", floor), ("task", task))
                if v not in (None, "")}
    super().__init__(spec=spec_class(
        evaluation=evaluation, transform_graph=transform_graph,
        production_model=production_model,
        model=types.Channel(type=standard_artifacts.Model),
        candidates=json.dumps(names), min_gain=float(min_gain),
        confidence=float(confidence), cost=cost, **budgets, **optional,
        **candidate_inputs.channels({model_key(""): models,
                                     run_key(""): runs})))
