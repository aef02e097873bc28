"""Transform preprocessing, model and Trainer run_fn for the resizer pipeline."""
