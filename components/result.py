"""A step's one-line result, recorded by the component on its output artifact.

Each custom component says what it did where it has the facts ("push",
"3 classes (a, b, c)"); `resizer-pipeline run` prints it when the step
finishes (pipeline/progress.py) without knowing which component that is. The
line is an MLMD custom property, so a cached step shows it again and the
Vertex console lists it with the artifact.
"""
from typing import Optional

RESULT = "result"  # custom property: the step's one-line result


def record(artifact, text: str) -> None:
  """Records `text` as the result of the step that outputs `artifact`."""
  artifact.set_string_custom_property(RESULT, text)


def recorded(artifact) -> Optional[str]:
  """The result recorded on `artifact` (a TFX artifact), None if none."""
  if not artifact.has_custom_property(RESULT):
    return None
  return artifact.get_string_custom_property(RESULT) or None


def evaluation_line(evaluation_uri: str) -> str:
  """'top-1 learned 0.712, bilinear 0.701': the headline score of each model
  in a TFMA evaluation, as the task whose score it holds names it (tasks/),
  the baseline last; "" when no task's score is there."""
  # pylint: disable=import-outside-toplevel
  import tasks
  from gate import tfma_metric
  overall = tfma_metric.overall_metrics(evaluation_uri)
  for task in tasks.all_tasks():
    scores = {name: task.score_of(m) for name, m in overall.items()}
    if scores and all(v is not None for v in scores.values()):
      break
  else:
    return ""
  # TFMA files the paired metrics under the candidate: the baseline has none.
  ordered = sorted(scores, key=lambda name: not tfma_metric.PAIRED.intersection(
      overall[name]))
  # Without a baseline TFMA files the lone model under the empty name.
  return f"{task.score_label} " + ", ".join(
      f"{name or 'candidate'} {scores[name]:.3f}" for name in ordered)
