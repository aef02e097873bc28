"""Custom TFX components of the resizer pipeline, one folder each."""
# Custom artifact types, importable as their TYPE_NAME (see IngestReport).
from components.image_example_gen.component import IngestReport

__all__ = ["IngestReport"]
