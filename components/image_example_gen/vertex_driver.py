"""ImageExampleGen's pre-cache check on Vertex: TFX's KubeflowV2 ExampleGen
driver, with the fingerprint of ImageInputProcessor (every file under the input
base, as the local ImageFileDriver) instead of TFX's (what the split patterns
match, which misses an image added inside a class folder's subfolder).

    python -m components.image_example_gen.vertex_driver \
        --json_serialized_invocation_args '{...}' [Beam args, ignored]

pipeline/vertex_runner.py points the compiled pre-cache check here.
"""
from absl import app
from tfx.components.example_gen import input_processor
from tfx.orchestration.kubeflow.v2.file_based_example_gen import \
    driver as tfx_driver

from components.image_example_gen.component import ImageInputProcessor

# The same flags as TFX's driver: the compiled args are TFX's.
_parse_flags = tfx_driver._parse_flags  # pylint: disable=protected-access


def main(args) -> None:
  """TFX's driver main (span, fingerprint, the examples artifact, the
  ExecutorOutput file), run with ImageInputProcessor.

  KubeflowV2's compiler offers no hook for the input processor, and TFX's
  _run_driver builds `input_processor.FileBasedInputProcessor(...)` by module
  attribute at call time: that name is ImageInputProcessor while it runs, in
  this driver's own process (restored after, for in-process tests). Fails if
  TFX no longer builds its processor that way, rather than report TFX's
  fingerprint as ours.
  """
  built = []

  class Processor(ImageInputProcessor):

    def __init__(self, *args, **kwargs):
      built.append(self)
      super().__init__(*args, **kwargs)

  tfx_processor = input_processor.FileBasedInputProcessor
  input_processor.FileBasedInputProcessor = Processor
  try:
    tfx_driver.main(args)
  finally:
    input_processor.FileBasedInputProcessor = tfx_processor
  if not built:
    raise RuntimeError(
        "TFX's ExampleGen driver did not build its input processor as "
        "input_processor.FileBasedInputProcessor (a TFX upgrade?): its "
        "output has TFX's fingerprint, not ImageInputProcessor's")


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
