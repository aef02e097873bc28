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
  from tfx.dsl.io import fileio
  from pipeline.pipeline import create_pipeline
  config.validate()
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=config.vertex.image),
      output_dir=os.path.dirname(pipeline_file) or ".",
      output_filename=os.path.basename(pipeline_file))
  job = runner.run(create_pipeline(config), write_out=False)
  use_image_driver(job)
  # As KubeflowV2DagRunner writes it (JSON: what submit reads).
  fileio.makedirs(os.path.dirname(pipeline_file) or ".")
  with fileio.open(pipeline_file, "w") as f:
    json.dump(job, f, sort_keys=True)
  return job


IMAGE_DRIVER = "components.image_example_gen.vertex_driver"


def use_image_driver(job: dict, task: str = "ImageExampleGen") -> None:
  """Points `task`'s pre-cache check at this project's driver, in place.

  KubeflowV2 compiles TFX's ExampleGen driver in as the pre-cache check of
  every FileBasedExampleGen, whatever its DRIVER_CLASS, and offers no hook.
  Its fingerprint (Vertex's cache key for the step) counts only what the split
  patterns match, so an image added inside a class folder's subfolder, which
  the executor ingests, would keep it and Vertex would reuse stale examples.
  The project's driver is TFX's with ImageInputProcessor, the local
  fingerprint. Raises if the compiled command is not TFX's driver (a TFX
  upgrade changed the compiler).
  """
  from components import tfx_internals
  tfx_internals.use_image_driver(job, IMAGE_DRIVER, task)


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
