"""ImageExampleGen's outputs on ram:// (as gs:// on Vertex): the examples and
the rejected report are written and merged through Beam's and TensorFlow's
filesystems only. The images stay on local disk."""
import json

import tensorflow as tf
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.image_example_gen import IngestReport
from components.image_example_gen.executor import Executor
from components.image_example_gen.report import REJECTED_FILE, SUMMARY_FILE
from pipeline.data_layout import example_gen_configs
from testing.helpers import ram_root, tiny_dataset  # also Beam's ram:// view


def test_examples_and_report_on_ram(tmp_path):
  n = tiny_dataset(tmp_path / "data", per_class=4)
  (tmp_path / "data" / "checker" / "empty.jpg").write_bytes(b"")
  input_config, output_config = example_gen_configs(str(tmp_path / "data"))
  root = ram_root("image-example-gen")
  examples = standard_artifacts.Examples()
  examples.uri = f"{root}/examples"
  report = IngestReport()
  report.uri = f"{root}/rejected"
  Executor().Do({}, {"examples": [examples], "rejected": [report]}, {
      "input_base": str(tmp_path / "data"),
      "input_config": proto_utils.proto_to_json(input_config),
      "output_config": proto_utils.proto_to_json(output_config),
      "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
      "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
      "max_pixels": 40_000_000})
  counts = {}
  for split in ("train", "eval"):
    files = tf.io.gfile.glob(f"{examples.uri}/Split-{split}/*.gz")
    counts[split] = sum(1 for _ in tf.data.TFRecordDataset(
        files, compression_type="GZIP"))
  assert counts["train"] + counts["eval"] == n == 12
  with tf.io.gfile.GFile(f"{report.uri}/{SUMMARY_FILE}") as f:
    summary = json.load(f)
  assert summary["splits"] == counts
  assert (summary["seen"], summary["ingested"], summary["rejected"]) == \
      (n + 1, n, 1)
  with tf.io.gfile.GFile(f"{report.uri}/{REJECTED_FILE}") as f:
    rejected = [json.loads(line) for line in f]
  assert [r["path"] for r in rejected] == ["checker/empty.jpg"]
  # The Beam shards were merged and removed.
  assert sorted(tf.io.gfile.listdir(report.uri)) == [REJECTED_FILE,
                                                     SUMMARY_FILE]
