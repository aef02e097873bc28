"""Runs the DAG locally: LocalDagRunner with Beam's DirectRunner."""
import json
import os

from tfx import v1 as tfx

from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline


def run(config: PipelineConfig) -> dict:
  """Runs the whole DAG; returns results.json as a dict."""
  config.validate()
  os.makedirs(config.output, exist_ok=True)
  tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
  with open(os.path.join(config.report_dir, "results.json")) as f:
    return json.load(f)
