"""CuratedSchemaGen: the curated base schema plus what the data's task says
of its target.

SchemaGen would infer every constraint from one sample of data; here the
constraints are curated (schema/base_schema.pbtxt) and only the target comes
from the data, as its task wants it (tasks/): the class domain from the
training split (an unknown class at eval time is an anomaly), or a numeric
target's observed range over both splits.
"""
import os

import tensorflow_data_validation as tfdv
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import standard_artifacts
from tfx.v1.dsl.components import InputArtifact, OutputArtifact, Parameter
from tfx.v1.dsl.components import component

import schema as schema_pkg
import tasks
from components import result

SCHEMA_FILE = "schema.pbtxt"  # the file name TFX's SchemaGen writes


def task_of(statistics):
  """The task whose target feature the data has (tasks/)."""
  return tasks.with_feature(f.path.step[0] for f in
                            statistics.datasets[0].features if f.path.step)


def curate(base, train_stats, other_stats=()):
  """The base schema made the data's task's: its target feature and domain
  from the training split's statistics (and the others', where the task
  documents a range over every split)."""
  return task_of(train_stats).curate_schema(
      base, {"train": train_stats,
             **{f"split{i}": s for i, s in enumerate(other_stats)}})


@component
def CuratedSchemaGen(
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: OutputArtifact[standard_artifacts.Schema],
    base_schema: Parameter[str] = ""):
  """base_schema: a schema.pbtxt path; empty means the packaged one."""
  base = tfdv.load_schema_text(base_schema or schema_pkg.BASE_SCHEMA)
  train_stats, eval_stats = (
      stats_artifact_utils.load_statistics(statistics, split).proto()
      for split in ("train", "eval"))
  curated = curate(base, train_stats, [eval_stats])
  tfdv.write_schema_text(curated, os.path.join(schema.uri, SCHEMA_FILE))
  result.record(schema, task_of(train_stats).schema_line(curated))
