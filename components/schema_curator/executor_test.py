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
