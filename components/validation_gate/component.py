"""ValidationGate: stops the run before Transform when the data has anomalies.

ExampleValidator records anomalies but lets the DAG go on; this gate reads its
output and fails with the anomalies named, so no model is trained on bad data.
"""
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.v1.dsl.components import InputArtifact, component

ANOMALIES_FILE = "SchemaDiff.pb"  # the file ExampleValidator writes per split


class DataAnomalyError(RuntimeError):
  """The data does not match the schema."""


def describe(split, anomalies):
  lines = []
  for feature, info in sorted(anomalies.anomaly_info.items()):
    reasons = "; ".join(f"{r.short_description}: {r.description}"
                        for r in info.reason) or info.description
    lines.append(f"  split '{split}', feature '{feature}': {reasons}")
  if anomalies.HasField("dataset_anomaly_info"):
    lines.append(f"  split '{split}', dataset: "
                 f"{anomalies.dataset_anomaly_info.description}")
  return lines


def find_anomalies(anomalies_artifact):
  problems = []
  for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
    path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split),
                        ANOMALIES_FILE)
    parsed = anomalies_pb2.Anomalies()
    with tf.io.gfile.GFile(path, "rb") as f:
      parsed.ParseFromString(f.read())
    problems.extend(describe(split, parsed))
  return problems


@component
def ValidationGate(
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies]):
  problems = find_anomalies(anomalies)
  if problems:
    raise DataAnomalyError(
        "data validation found anomalies, so training was not started:\n"
        + "\n".join(problems)
        + "\nFix the images or class folders named above (a class present only"
        " in eval, a missing image feature, ...) and rerun.")
