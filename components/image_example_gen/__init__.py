"""ImageExampleGen: class-folder images -> tf.Examples, with a rejection list."""
from components.image_example_gen.component import (ImageExampleGen,
                                                    IngestReport)

__all__ = ["ImageExampleGen", "IngestReport"]
