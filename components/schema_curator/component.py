"""CuratedSchemaGen: the curated base schema plus the class names in the data.

SchemaGen would infer every constraint from one sample of data; here the
constraints are curated (schema/base_schema.pbtxt) and only the class domain
comes from the training split, so an unknown class at eval time is an anomaly.
Regression data (an `image/target` float instead of `image/class`) gets the
target as a required float with its observed range, over both splits: the
range documents the data, and a split's own extremes are no anomaly.
"""
import os

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2
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


def curate_regression(base, stats_list):
  """The base schema with image/class replaced by the float image/target."""
  low, high = float("inf"), float("-inf")
  for stats in stats_list:
    for feature in stats.datasets[0].features:
      if feature.path.step == [features.TARGET]:
        low = min(low, feature.num_stats.min)
        high = max(high, feature.num_stats.max)
  if low > high:
    raise ValueError(f"the training split has no {features.TARGET} values")
  kept = [f for f in base.feature if f.name != features.LABEL]
  del base.feature[:]
  base.feature.extend(kept)
  kept = [d for d in base.string_domain if d.name != features.LABEL]
  del base.string_domain[:]
  base.string_domain.extend(kept)
  target = base.feature.add(name=features.TARGET, type=schema_pb2.FLOAT)
  target.float_domain.min, target.float_domain.max = low, high
  target.presence.min_fraction, target.presence.min_count = 1.0, 1
  target.shape.dim.add(size=1)
  return base


def is_regression(train_stats):
  return any(f.path.step == [features.TARGET]
             for f in train_stats.datasets[0].features)


@component
def CuratedSchemaGen(
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: OutputArtifact[standard_artifacts.Schema],
    base_schema: Parameter[str] = ""):
  """base_schema: a schema.pbtxt path; empty means the packaged one."""
  base = tfdv.load_schema_text(base_schema or schema_pkg.BASE_SCHEMA)
  train_stats = stats_artifact_utils.load_statistics(statistics, "train").proto()
  if is_regression(train_stats):
    eval_stats = stats_artifact_utils.load_statistics(statistics,
                                                      "eval").proto()
    curated = curate_regression(base, [train_stats, eval_stats])
  else:
    curated = curate(base, train_stats)
  tfdv.write_schema_text(curated, os.path.join(schema.uri, SCHEMA_FILE))
