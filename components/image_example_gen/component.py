"""ImageExampleGen: a FileBasedExampleGen whose executor reads image folders.

Being a FileBasedExampleGen keeps TFX's driver machinery (span, version and
input fingerprint, so an unchanged folder is a cache hit) locally and on
Vertex, with this executor's fingerprint in both (ImageInputProcessor). The
extra `rejected` output lists every file that was not ingested, with a reason.
"""
from typing import Iterable, Optional, Tuple

from tfx.components.example_gen import driver, input_processor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx import types

from components import tfx_internals
from components.image_example_gen import (executor, ingest, input_folder,
                                          labels_csv)

class IngestReport(artifact.Artifact):
  """rejected.jsonl (one line per rejected file) and summary.json (counts)."""
  # On Vertex the type name is both a KFP schema title (`module.Class`, one
  # dot) and the import path the step containers load the class from.
  TYPE_NAME = "components.IngestReport"


class ImageInputProcessor(input_processor.FileBasedInputProcessor):
  """Fingerprints every file under the input base (input_folder.walk): the
  executor ingests or lists each one, in a split or not.

  TFX's fingerprint stats `*/*` only, so it misses nested files and a file
  moved to another class folder with its size and mtime, and it crashes on a
  dangling symlink, which the executor rejects with a reason instead.
  Split patterns here carry no {SPAN}/{VERSION}: span 0, no version.
  """

  def resolve_span_and_version(self) -> Tuple[int, Optional[int]]:
    tfx_internals.set_input_fingerprint(self, input_folder.input_fingerprint(
        tfx_internals.input_base_uri(self)))
    return 0, None


class ImageFileDriver(driver.FileBasedDriver):
  """Used by local runs. On Vertex, whatever DRIVER_CLASS says, KubeflowV2
  compiles TFX's own ExampleGen driver in as the step's pre-cache check;
  pipeline/vertex_runner.py swaps in vertex_driver.py, TFX's driver with
  ImageInputProcessor (tests/test_vertex_entrypoint.py)."""

  def get_input_processor(self, splits: Iterable[example_gen_pb2.Input.Split],
                          range_config=None, input_base_uri=None):
    return ImageInputProcessor(input_base_uri, splits, range_config)


class ImageExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
  PARAMETERS = {
      **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
      executor.MAX_PIXELS_KEY: ExecutionParameter(type=int),
      executor.LABELS_KEY: ExecutionParameter(type=str, optional=True),
      executor.TARGET_KEY: ExecutionParameter(type=str, optional=True),
      executor.TASK_KEY: ExecutionParameter(type=str, optional=True),
      executor.LABELS_HASH_KEY: ExecutionParameter(type=str, optional=True),
  }
  OUTPUTS = {
      **standard_component_specs.FileBasedExampleGenSpec.OUTPUTS,
      executor.REJECTED_KEY: ChannelParameter(type=IngestReport),
  }


class ImageExampleGen(FileBasedExampleGen):
  """Ingests `input_base/<class>/<image>` or `input_base/<split>/<class>/<image>`."""

  SPEC_CLASS = ImageExampleGenSpec
  DRIVER_CLASS = ImageFileDriver
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, input_base: str,
               input_config: example_gen_pb2.Input,
               max_pixels: int,
               output_config: Optional[example_gen_pb2.Output] = None,
               labels: Optional[str] = None, target: Optional[str] = None,
               task: str = "auto"):
    """max_pixels: the pipeline's --max-pixels (pipeline/config.py).
    labels: a CSV of image paths and targets instead of class folders
    (components/image_example_gen/labels_csv.py)."""
    ingest.check_max_pixels(max_pixels)  # fail when the DAG is built
    # FileBasedExampleGen.__init__ builds its own spec, so build ours here.
    spec = ImageExampleGenSpec(
        input_base=input_base,
        input_config=input_config,
        output_config=output_config or example_gen_pb2.Output(),
        output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        max_pixels=max_pixels,
        labels=labels or "", target=target or "", task=task,
        # The CSV's content is an input too: an edited CSV is a new run.
        labels_sha256=labels_csv.content_hash(labels) if labels else "",
        examples=types.Channel(type=types.standard_artifacts.Examples),
        rejected=types.Channel(type=IngestReport))
    tfx_internals.init_file_based_example_gen(self, spec)
