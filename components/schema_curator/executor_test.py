"""CuratedSchemaGen's executor, run as TFX runs it, with its artifacts on
ram:// (only tf.io.gfile / TFX fileio reach them, as gs:// on Vertex)."""
import os

import tensorflow_data_validation as tfdv
from tfx.types import standard_artifacts

from components.result import recorded
from components.schema_curator.component import SCHEMA_FILE, CuratedSchemaGen
from components.validation_gate.anomalies_test import examples, statistics
from testing.helpers import ram_root, write_file
from trainer import features


def curate(name, labels):
  """Runs the executor on train/eval statistics of examples with these
  labels (class names, or float targets); returns (the schema it wrote, the
  result it recorded)."""
  root = ram_root(name)
  stats = standard_artifacts.ExampleStatistics()
  stats.uri = f"{root}/statistics"
  stats.split_names = '["train", "eval"]'
  for split, values in labels.items():
    write_file(f"{stats.uri}/Split-{split}/FeatureStats.pb",
               statistics(examples(values)).SerializeToString())
  schema = standard_artifacts.Schema()
  schema.uri = f"{root}/schema"
  CuratedSchemaGen.EXECUTOR_SPEC.executor_class().Do(
      {"statistics": [stats]}, {"schema": [schema]}, {})
  return (tfdv.load_schema_text(os.path.join(schema.uri, SCHEMA_FILE)),
          recorded(schema))


def test_schema_with_the_training_classes_on_ram():
  written, line = curate("schema-curator", {
      "train": ["zebra", "ant", "zebra"],
      "eval": ["bee"]})  # eval classes are not the domain
  assert list(tfdv.get_domain(written, features.LABEL).value) == ["ant",
                                                                  "zebra"]
  # The rest is the curated base schema.
  assert {f.name for f in written.feature} >= {features.IMAGE, features.LABEL}
  assert line == "2 classes (ant, zebra)"


def test_regression_target_is_a_required_float_with_its_observed_range():
  # Float labels become ImageExampleGen's image/target.
  written, line = curate("schema-curator-regression", {
      "train": [3.0, 11.5, 7.0], "eval": [1.5, 9.0]})
  target = tfdv.get_feature(written, features.TARGET)
  # Over both splits: an eval value below the training minimum is no anomaly.
  assert (target.float_domain.min, target.float_domain.max) == (1.5, 11.5)
  assert target.presence.min_fraction == 1.0
  assert features.LABEL not in {f.name for f in written.feature}
  assert features.LABEL not in {d.name for d in written.string_domain}
  assert line == "numeric target from 1.5 to 11.5"


def test_many_classes_are_counted_and_the_first_named():
  _, line = curate("schema-curator-many", {
      "train": [f"c{i:02d}" for i in range(12)], "eval": ["c00"]})
  assert line == "12 classes (c00, c01, c02, c03, c04, ...)"
