"""Runs the DAG locally: LocalDagRunner with Beam's DirectRunner."""
import contextlib
import dataclasses
import json
import os
from typing import Optional

from tfx import v1 as tfx

from components.results_report.component import RESULTS_FILE
from components.tfx_internals import beam_executor_argv
from pipeline import output_folder
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline_with_lines
from pipeline.progress import Progress, observe_steps
from trainer import tensorboard


def preflight(config: PipelineConfig) -> None:
  """Fails before any component runs when ImageNet weights can't be had.

  Building the backbone once downloads its weights into the Keras cache,
  where the Trainers find them.
  """
  if config.model.weights == "imagenet":
    from trainer.backbones import build_backbone  # pylint: disable=import-outside-toplevel
    build_backbone(config.model.backbone, config.model.target_size, "imagenet")


def run(config: PipelineConfig,
        progress: Optional[Progress] = None) -> dict:
  """Runs the whole DAG, holding the output folder's lock; returns
  results.json as a dict. Raises output_folder.OutputInUseError at once while
  another run uses config.output.

  progress: prints each step as it starts and finishes (pipeline/progress.py);
  on a failure it knows which step failed.
  """
  # Names this run's TensorBoard folder (trainer/tensorboard.py).
  config = dataclasses.replace(
      config, run_name=config.run_name or tensorboard.run_name())
  config.validate()
  os.makedirs(config.output, exist_ok=True)
  # One run at a time: two would both push as the first model in production
  # and write one report between them.
  with output_folder.lock(config.output):
    output_folder.mark(config.output)
    preflight(config)
    dag, lines = create_pipeline_with_lines(config)
    steps = observe_steps(progress) if progress else contextlib.nullcontext()
    if progress:
      progress.total_steps, progress.lines = len(dag.components), lines
    # TFX's BaseBeamExecutor parses sys.argv with absl flags: a caller's `-v`
    # (pytest, scripts) would be read as --verbosity. Our own options already
    # live in `config`.
    with beam_executor_argv(), steps, tensorboard.run_env(config.run_name):
      tfx.orchestration.LocalDagRunner().run(dag)
    with open(os.path.join(config.report_dir, RESULTS_FILE)) as f:
      return json.load(f)
