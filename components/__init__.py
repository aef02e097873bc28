"""Custom TFX components of the resizer pipeline, one folder each."""
