"""Custom TFX components of the resizer pipeline, one folder each."""
# Custom artifact types, importable as their TYPE_NAME (see IngestReport).
# Loaded on first use, so the TFX-free libraries below (the ingest library)
# import without TFX.
__all__ = ["IngestReport"]


def __getattr__(name):
  if name == "IngestReport":
    from components.image_example_gen.component import IngestReport  # pylint: disable=import-outside-toplevel
    return IngestReport
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
