"""The absolute top-1 floor, resolved at run time on every runner.

The default floor is just above chance, 1/classes. The class count is read from
the Transform graph's label vocabulary when the gates run, not from the data
folder when the DAG is built: on Vertex the data is on gs://, which compiling
(offline) cannot list. The floor is checked here, by ModelSelector and
PushDecision, rather than as a TFMA threshold: an EvalConfig is fixed when the
DAG is compiled.
"""
import tensorflow_transform as tft

from trainer import preprocessing


def class_names(transform_graph_uri):
  """The class names, in label-id order, of a Transform output."""
  return preprocessing.class_names(tft.TFTransformOutput(transform_graph_uri))


def chance_floor(num_classes):
  """Just above chance: a model must beat guessing."""
  return 1.0 / num_classes + 1e-6


def resolve(configured, transform_graph_uri):
  """(floor, number of classes): the configured floor, else above chance."""
  num_classes = len(class_names(transform_graph_uri))
  if num_classes < 2:
    raise ValueError(f"{transform_graph_uri}: the label vocabulary has "
                     f"{num_classes} classes; at least 2 are needed")
  floor = chance_floor(num_classes) if configured is None else configured
  return float(floor), num_classes


def clears(top1, floor):
  """TFMA's lower-bound semantics: at the floor is enough."""
  return top1 >= floor

