"""Compiles the DAG for Vertex AI Pipelines, and submits a compiled DAG.

The same `create_pipeline(config)` as the local runner: `config.vertex` sends
the Beam components to Dataflow, the Trainers to Vertex custom jobs and,
with an endpoint, the pushed model to a Vertex endpoint.
"""
# pylint: disable=import-outside-toplevel
# TFX (and so TensorFlow) loads only to compile; submit needs only aiplatform.
import json
import os
from typing import Optional

from pipeline.config import PipelineConfig


def compile_pipeline(config: PipelineConfig, pipeline_file: str) -> dict:
  """Writes the PipelineJob JSON to pipeline_file, offline; returns it."""
  from tfx import v1 as tfx
  from pipeline.pipeline import create_pipeline
  config.validate()
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=config.vertex.image),
      output_dir=os.path.dirname(pipeline_file) or ".",
      output_filename=os.path.basename(pipeline_file))
  return runner.run(create_pipeline(config))


def submit(pipeline_file: str, project: str, region: str,
           service_account: Optional[str] = None) -> str:
  """Starts a Vertex AI PipelineJob from a compiled file; returns its name."""
  from google.cloud import aiplatform
  with open(pipeline_file) as f:
    display_name = json.load(f).get("displayName")
  # The pipeline root and the caching setting come from the compiled file.
  job = aiplatform.PipelineJob(display_name=display_name,
                               template_path=pipeline_file,
                               project=project, location=region)
  job.submit(service_account=service_account)
  return job.resource_name
