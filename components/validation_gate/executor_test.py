"""ValidationGate's executor, run as TFX runs it, with ExampleValidator's
output on ram:// (only tf.io.gfile reaches it, as gs:// on Vertex)."""
import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifacts

from components.validation_gate.component import (ANOMALIES_FILE,
                                                  DataAnomalyError,
                                                  ValidationGate)
from testing.helpers import ram_root, write_file
from trainer import features


def run_gate(eval_anomalies):
  anomalies = standard_artifacts.ExampleAnomalies()
  anomalies.uri = ram_root("validation-gate")
  anomalies.split_names = '["train", "eval"]'
  for split, found in (("train", anomalies_pb2.Anomalies()),
                       ("eval", eval_anomalies)):
    write_file(f"{anomalies.uri}/Split-{split}/{ANOMALIES_FILE}",
               found.SerializeToString())
  ValidationGate.EXECUTOR_SPEC.executor_class().Do(
      {"anomalies": [anomalies]}, {}, {})


def test_clean_splits_pass():
  run_gate(anomalies_pb2.Anomalies())


def test_anomalies_stop_the_run_naming_split_feature_and_reason():
  found = anomalies_pb2.Anomalies()
  found.anomaly_info[features.LABEL].reason.add(
      short_description="Unexpected string values",
      description="Examples contain values missing from the schema: zebra.")
  found.dataset_anomaly_info.description = "Low number of examples."
  with pytest.raises(DataAnomalyError) as raised:
    run_gate(found)
  message = str(raised.value)
  assert (f"  split 'eval', feature '{features.LABEL}': Unexpected string "
          "values: Examples contain values missing from the schema: zebra."
          in message)
  assert "  split 'eval', dataset: Low number of examples." in message
  assert "split 'train'" not in message
