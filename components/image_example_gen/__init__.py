"""ImageExampleGen: class-folder images -> tf.Examples, with a rejection list.

The component (TFX) loads on first use, so the ingest library (ingest.py,
report.py) imports without TFX or Beam.
"""
__all__ = ["ImageExampleGen", "IngestReport"]


def __getattr__(name):
  if name in __all__:
    from components.image_example_gen import component  # pylint: disable=import-outside-toplevel
    return getattr(component, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
