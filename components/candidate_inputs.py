"""The inputs a component takes per candidate: one key per candidate and
kind, `model_<name>` (its Trainer's Model) and `run_<name>` (its ModelRun),
made from the candidate names when the DAG is built. The name travels with
its channel (a union of channels would lose which model is which), and
Vertex compiles each key as an input. SweepEvaluator, ModelSelector and
ResultsReport take them so.
"""
from typing import Dict, List, Mapping, Sequence

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter

from gate import tfma_metric

KINDS = {"model_": standard_artifacts.Model,
         "run_": standard_artifacts.ModelRun}


def model_key(name: str) -> str:
  return "model_" + name


def run_key(name: str) -> str:
  return "run_" + name


def spec_class(base: type, names: Sequence[str],
               prefixes: Sequence[str] = tuple(KINDS)) -> type:
  """`base` (a ComponentSpec) with an input per candidate and prefix; a
  name that can't name a model is refused (ValueError naming it)."""
  for name in names:
    tfma_metric.check_model_name(name)
  return type(base.__name__, (base,), {"INPUTS": {
      **base.INPUTS,
      **{prefix + n: ChannelParameter(type=KINDS[prefix])
         for prefix in prefixes for n in names}}})


def channels(channels_by_prefix: Mapping[str, Mapping[str, types.BaseChannel]]
             ) -> Dict[str, types.BaseChannel]:
  """{input key: channel} of {prefix: {candidate name: channel}}."""
  return {prefix + name: channel
          for prefix, by_name in channels_by_prefix.items()
          for name, channel in by_name.items()}


def one_each(input_dict: Mapping[str, List[types.Artifact]],
             names: Sequence[str], prefix: str, component: str
             ) -> Dict[str, types.Artifact]:
  """{candidate name: its one artifact of `prefix`}; ValueError naming the
  candidate and its input when there is none or several."""
  found = {}
  for name in names:
    artifacts = input_dict.get(prefix + name, [])
    if len(artifacts) != 1:
      raise ValueError(
          f"{component}: candidate {name!r} has {len(artifacts)} artifacts in "
          f"its input {prefix + name!r}, expected one: connect it to the "
          "Trainer of that candidate")
    found[name] = artifacts[0]
  return found
