"""The resizer TFX pipeline: config, DAG, runners and CLI."""
