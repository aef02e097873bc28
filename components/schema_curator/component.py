"""CuratedSchemaGen: the curated base schema plus the class names in the data.

SchemaGen would infer every constraint from one sample of data; here the
constraints are curated (schema/base_schema.pbtxt) and only the class domain
comes from the training split, so an unknown class at eval time is an anomaly.
"""
import os

import tensorflow_data_validation as tfdv
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import standard_artifacts
from tfx.v1.dsl.components import InputArtifact, OutputArtifact, Parameter
from tfx.v1.dsl.components import component

import schema as schema_pkg
from trainer import features

SCHEMA_FILE = "schema.pbtxt"  # the file name TFX's SchemaGen writes


def curate(base, train_stats):
  """Returns the base schema with the class domain set from train_stats."""
  inferred = tfdv.infer_schema(train_stats, max_string_domain_size=100_000)
  classes = sorted(tfdv.get_domain(inferred, features.LABEL).value)
  if not classes:
    raise ValueError("the training split has no class names")
  domain = next(d for d in base.string_domain if d.name == features.LABEL)
  del domain.value[:]
  domain.value.extend(classes)
  return base


@component
def CuratedSchemaGen(
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: OutputArtifact[standard_artifacts.Schema],
    base_schema: Parameter[str] = ""):
  """base_schema: a schema.pbtxt path; empty means the packaged one."""
  base = tfdv.load_schema_text(base_schema or schema_pkg.BASE_SCHEMA)
  train_stats = stats_artifact_utils.load_statistics(statistics, "train").proto()
  tfdv.write_schema_text(curate(base, train_stats),
                         os.path.join(schema.uri, SCHEMA_FILE))
