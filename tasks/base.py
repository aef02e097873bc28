"""What a task is to the pipeline: the one object each stage asks whatever
differs between classification and regression.

Every stage names the method it needs, in the order data flows:
  ingest      claims, target_problem, parse_target, example_feature,
              dataset_problem, curate_schema, schema_line
  Transform   transform, class_names
  Trainer     head, label_key, prepare_label, compile, score, short,
              serving_outputs, trainer_phrase
  TFMA        eval_keys, tfma_metrics, slicing_specs
  gates       score_of, floor, clears, compare, compare_pair
  report      text, floor_text, margin_text, tolerance_text, ... (phrasing),
              model_results, production_results, thresholds, table_*,
              figures, card_* (the model card)

Modules of tasks/ import no TensorFlow when loaded; a method imports what it
uses, so `resizer-pipeline --help` lists tasks and their settings quickly.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

from trainer.model import Head


def no_pair(evaluation_uri: str, what: str, a: str, b: str) -> str:
  """Why compare_pair can't read a pair, and the fix."""
  return (f"{evaluation_uri}: no {what} of {a!r} against {b!r}; both must be "
          "models of one SweepEvaluator evaluation, with the task's metrics")


class Task:
  """The interface; tasks/classification.py and tasks/regression.py
  implement it."""

  name: str = ""
  # The raw tf.Example feature of the target (features.LABEL or TARGET).
  raw_feature: str = ""
  # Class folders can label images for this task (else a labels CSV must).
  from_folders: bool = False
  # How --task auto recognises this task's targets, for the CLI's help; ""
  # when only the default.
  claim_help: str = ""
  # The task's own settings (a dataclass: its CLI flags and their defaults).
  Settings: type = None
  # What --floor means for this task, and its default, for the CLI's help.
  floor_help: str = ""
  # Keras's name of the per-epoch score in the history (val_<score> too),
  # and the short name of the model_info.json scores (eval_<short>).
  score: str = ""
  short: str = ""
  score_label: str = ""  # the headline score as the progress lines name it
  higher_is_better: bool = True  # of the headline score (a top-1; an RMSE not)

  # Ingest.
  def claims(self, targets: Sequence[str]) -> bool:
    """Whether --task auto picks this task for a CSV's (non-empty) targets."""
    return False

  def target_problem(self, text: str, where: str) -> str:
    """Why the CSV target of `where` (an image path, shown) can't be used
    ("" when it can)."""
    raise NotImplementedError

  def parse_target(self, text: str) -> Any:
    raise NotImplementedError

  def example_feature(self, value: Any):
    """(feature name, tf.train.Feature) of a target in a tf.Example."""
    raise NotImplementedError

  def dataset_problem(self, summary: Dict[str, Any], input_base: str,
                      roots: Sequence[str]) -> str:
    """What makes an ingested dataset unusable for this task ("" if
    nothing), beyond what every task needs; named with the fix."""
    return ""

  def curate_schema(self, base, statistics: Dict[str, Any]):
    """The base schema made this task's, from each split's statistics."""
    raise NotImplementedError

  def schema_line(self, schema) -> str:
    """What a curated schema says of the target, in one line (the schema
    step's result: the classes, a numeric target's range)."""
    raise NotImplementedError

  # Transform and Trainer.
  def transform(self, inputs: Dict[str, Any], batch, settings) -> Dict:
    """The Transform graph's target features (TF Transform analyzers)."""
    raise NotImplementedError

  def class_names(self, tft_output) -> List[str]:
    return []

  def head(self, num_classes: int) -> Head:
    raise NotImplementedError

  label_key: str = ""  # the transformed feature the Trainer learns

  def prepare_label(self, label, num_classes: int):
    raise NotImplementedError

  def compile(self, model, optimizer, settings) -> None:
    raise NotImplementedError

  def serving_outputs(self, outputs, transformed, class_names, settings,
                      refused) -> Dict[str, Any]:
    """The served signatures' answers from the model's `outputs`; `refused`
    ([B] bool) marks the images that were not decoded, whose answers are
    blank (NaN, "")."""
    raise NotImplementedError

  def trainer_phrase(self, info: Dict[str, Any]) -> str:
    """The Trainer's score in its progress line, from model_info.json."""
    raise NotImplementedError

  # TFMA.
  def eval_keys(self) -> Tuple[str, str]:
    """(label key, prediction key) of the TFMA ModelSpecs."""
    raise NotImplementedError

  def tfma_metrics(self) -> list:
    raise NotImplementedError

  def slicing_specs(self) -> list:
    raise NotImplementedError

  # Gates.
  def score_of(self, metrics: Dict[str, float]) -> Optional[float]:
    """The headline score in a model's TFMA metrics (None: not there)."""
    raise NotImplementedError

  def floor(self, configured: Optional[float], evaluation_uri: str,
            transform_graph_uri: str) -> Tuple[float, int]:
    """(the floor both gates use, the number of classes it was set from)."""
    raise NotImplementedError

  def clears(self, score: float, floor: float) -> bool:
    raise NotImplementedError

  def compare(self, evaluation_uri: str, model_name: str, confidence: float):
    """The gate.stats.Comparison of `model_name` against the baseline of a
    TFMA evaluation, from the paired metric's per-example sums."""
    raise NotImplementedError

  def compare_pair(self, evaluation_uri: str, a: str, b: str,
                   confidence: float):
    """The gate.stats.Comparison of model `a` against model `b` in a TFMA
    evaluation of several models without a baseline (positive favours
    `a`)."""
    raise NotImplementedError

  # Report: the words and fields that differ.
  def text(self, score: float) -> str:
    raise NotImplementedError

  def floor_text(self, floor: float) -> str:
    raise NotImplementedError

  def margin_text(self, margin: float) -> str:
    raise NotImplementedError

  def tolerance_text(self, tolerance: float) -> str:
    raise NotImplementedError

  def clears_verb(self) -> str:
    """'clears' or 'beats' (the floor)."""
    raise NotImplementedError

  def under_floor_clause(self, learned_text: str, floor: float) -> str:
    raise NotImplementedError

  def both_under_clause(self, floor: float) -> str:
    raise NotImplementedError

  def model_results(self, name, info, overall, per_class,
                    num_classes) -> Dict[str, Any]:
    """results.json's fields of one model that belong to this task."""
    raise NotImplementedError

  def headline(self, model: Dict[str, Any]) -> float:
    """The score the reason states, from model_results' fields."""
    raise NotImplementedError

  def production_results(self, candidate: Dict[str, float],
                         production: Dict[str, float]) -> Dict[str, Any]:
    raise NotImplementedError

  def production_text(self, production: Dict[str, Any]) -> str:
    raise NotImplementedError

  def thresholds(self, overall: Dict[str, Dict[str, float]]
                 ) -> Dict[str, Any]:
    return {}

  def table_header(self) -> Tuple[str, str]:
    raise NotImplementedError

  def table_cells(self, model: Dict[str, Any]) -> str:
    raise NotImplementedError

  def difference_text(self, value: float) -> str:
    raise NotImplementedError

  difference_unit: str = ""

  def prepare_infos(self, evaluation_uri: str,
                    infos: Dict[str, Dict[str, Any]]) -> None:
    """Adds to each model's model_info what this task's results need from
    the evaluation (e.g. a confusion matrix)."""

  def card_metrics(self, model: Dict[str, Any]
                   ) -> List[Tuple[str, str, float]]:
    """(metric, slice, value) of one model's results.json entry, for the
    model card."""
    raise NotImplementedError

  def card_use_case(self) -> str:
    raise NotImplementedError

  def card_output_format(self) -> str:
    raise NotImplementedError

  # The report's figures of this task's own, by their names in
  # components/results_report/figures.py FIGURES.
  figures: Tuple[str, ...] = ()
