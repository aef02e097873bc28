"""ImageExampleGen's pre-cache check on Vertex: TFX's KubeflowV2 ExampleGen
driver, with the fingerprint of ImageInputProcessor (every file under the input
base, as the local ImageFileDriver) instead of TFX's (what the split patterns
match, which misses an image added inside a class folder's subfolder).

    python -m components.image_example_gen.vertex_driver \
        --json_serialized_invocation_args '{...}' [Beam args, ignored]

pipeline/vertex_runner.py points the compiled pre-cache check here.
"""
from absl import app

from components import tfx_internals
from components.image_example_gen.component import ImageInputProcessor

# The same flags as TFX's driver (the compiled args are TFX's), under its name:
# a caller runs either driver module alike.
_parse_flags = tfx_internals.parse_example_gen_driver_flags


def main(args) -> None:
  """TFX's driver main (span, fingerprint, the examples artifact, the
  ExecutorOutput file), run with ImageInputProcessor (see
  tfx_internals.run_example_gen_driver)."""
  tfx_internals.run_example_gen_driver(args, ImageInputProcessor)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
