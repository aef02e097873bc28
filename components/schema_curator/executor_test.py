"""CuratedSchemaGen's executor, run as TFX runs it, with its artifacts on
ram:// (only tf.io.gfile / TFX fileio reach them, as gs:// on Vertex)."""
import os

import tensorflow_data_validation as tfdv
from tfx.types import standard_artifacts

from components.schema_curator.component import SCHEMA_FILE, CuratedSchemaGen
from components.validation_gate.anomalies_test import examples, statistics
from tests.helpers import ram_root, write_file
from trainer import features


def test_schema_with_the_training_classes_on_ram():
  root = ram_root("schema-curator")
  stats = standard_artifacts.ExampleStatistics()
  stats.uri = f"{root}/statistics"
  stats.split_names = '["train", "eval"]'
  for split, classes in (("train", ["zebra", "ant", "zebra"]),
                         ("eval", ["bee"])):  # eval classes are not the domain
    write_file(f"{stats.uri}/Split-{split}/FeatureStats.pb",
               statistics(examples(classes)).SerializeToString())
  schema = standard_artifacts.Schema()
  schema.uri = f"{root}/schema"
  CuratedSchemaGen.EXECUTOR_SPEC.executor_class().Do(
      {"statistics": [stats]}, {"schema": [schema]}, {})
  written = tfdv.load_schema_text(os.path.join(schema.uri, SCHEMA_FILE))
  assert list(tfdv.get_domain(written, features.LABEL).value) == ["ant",
                                                                  "zebra"]
  # The rest is the curated base schema.
  assert {f.name for f in written.feature} >= {features.IMAGE, features.LABEL}


def test_regression_target_is_a_required_float_with_its_observed_range():
  root = ram_root("schema-curator-regression")
  stats = standard_artifacts.ExampleStatistics()
  stats.uri = f"{root}/statistics"
  stats.split_names = '["train", "eval"]'
  targets = examples  # float labels become ImageExampleGen's image/target
  for split, values in (("train", [3.0, 11.5, 7.0]), ("eval", [1.5, 9.0])):
    write_file(f"{stats.uri}/Split-{split}/FeatureStats.pb",
               statistics(targets(values)).SerializeToString())
  schema = standard_artifacts.Schema()
  schema.uri = f"{root}/schema"
  CuratedSchemaGen.EXECUTOR_SPEC.executor_class().Do(
      {"statistics": [stats]}, {"schema": [schema]}, {})
  written = tfdv.load_schema_text(os.path.join(schema.uri, SCHEMA_FILE))
  target = tfdv.get_feature(written, features.TARGET)
  # Over both splits: an eval value below the training minimum is no anomaly.
  assert (target.float_domain.min, target.float_domain.max) == (1.5, 11.5)
  assert target.presence.min_fraction == 1.0
  assert features.LABEL not in {f.name for f in written.feature}
  assert features.LABEL not in {d.name for d in written.string_domain}
