"""ImageExampleGen: a FileBasedExampleGen whose executor reads image folders.

Being a FileBasedExampleGen keeps TFX's own driver (span, version and input
fingerprint, so an unchanged folder is a cache hit) locally and on Vertex. The
extra `rejected` output lists every file that was not ingested, with a reason.
"""
from typing import Optional

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx import types

from components.image_example_gen import executor

DEFAULT_MAX_PIXELS = 40_000_000  # ~ a 7300x5500 photo; bombs declare far more


class IngestReport(artifact.Artifact):
  """rejected.jsonl (one line per rejected file) and summary.json (counts)."""
  TYPE_NAME = "ImageIngestReport"


class ImageExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
  PARAMETERS = {
      **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
      executor.MAX_PIXELS_KEY: ExecutionParameter(type=int),
  }
  OUTPUTS = {
      **standard_component_specs.FileBasedExampleGenSpec.OUTPUTS,
      executor.REJECTED_KEY: ChannelParameter(type=IngestReport),
  }


class ImageExampleGen(FileBasedExampleGen):
  """Ingests `input_base/<class>/<image>` or `input_base/<split>/<class>/<image>`."""

  SPEC_CLASS = ImageExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, input_base: str,
               input_config: example_gen_pb2.Input,
               output_config: Optional[example_gen_pb2.Output] = None,
               max_pixels: int = DEFAULT_MAX_PIXELS):
    # FileBasedExampleGen.__init__ builds its own spec, so build ours here.
    spec = ImageExampleGenSpec(
        input_base=input_base,
        input_config=input_config,
        output_config=output_config or example_gen_pb2.Output(),
        output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        max_pixels=max_pixels,
        examples=types.Channel(type=types.standard_artifacts.Examples),
        rejected=types.Channel(type=IngestReport))
    super(FileBasedExampleGen, self).__init__(spec=spec)  # pylint: disable=bad-super-call
