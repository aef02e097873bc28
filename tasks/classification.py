"""Classification: a class name per image (its folder, or a CSV column),
softmax over the classes, top-1 judged by McNemar's exact paired test, a floor
just above chance (1/classes, counted at run time)."""
# pylint: disable=import-outside-toplevel
import dataclasses
import json

from tasks.base import Task, no_pair
from trainer import features
from trainer.model import Head
from trainer.text import label_problem

SHOWN_CLASSES = 5  # named in the schema step's line; the rest are "..."


@dataclasses.dataclass
class Settings:
  label_smoothing: float = dataclasses.field(default=0.1, metadata={
      "help": "label smoothing of the cross-entropy loss"})

  def check(self):
    """(flag, message) of the first bad setting, or None."""
    if not 0 <= self.label_smoothing < 1:
      return "--label-smoothing", "must be in [0, 1)"
    return None


class Classification(Task):
  name = "classification"
  raw_feature = features.LABEL
  from_folders = True
  floor_help = "the top-1 a model must reach (default: above chance, 1/classes)"
  Settings = Settings
  score, short = "accuracy", "top1"
  score_label = "top-1"  # the score, as the progress lines name it
  label_key = features.LABEL_ID
  difference_unit = "difference (points)"

  # Ingest.
  def target_problem(self, text, where):
    problem = label_problem(text)
    return f"{where}: {problem}" if problem else ""

  def parse_target(self, text):
    return text

  def example_feature(self, value):
    import tensorflow as tf
    return features.LABEL, tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))

  def dataset_problem(self, summary, input_base, roots):
    from trainer.text import escape
    names = lambda keys: ", ".join(escape(k) for k in keys)  # noqa: E731
    labels = {key.rsplit("/", 1)[-1] for key in summary["classes"]}
    if len(labels) < 2:
      return (f"only one class folder ({names(sorted(labels))}) under "
              f"{input_base}: a classifier needs at least two. Add a folder "
              "per class.")
    empty = [k for k, n in summary["classes"].items() if n["ingested"] == 0]
    if empty:
      return ("class folder(s) with no usable image under "
              f"{input_base}: {names(empty)}. Add images or remove the "
              "folder; the rejected output says why each file was refused.")
    if len(roots) > 1:  # the model can only predict classes it trained on
      train = f"{roots[0]}/"
      trained = {k[len(train):] for k in summary["classes"]
                 if k.startswith(train)}
      eval_only = [k for k in summary["classes"] if not k.startswith(train)
                   and k.rsplit("/", 1)[-1] not in trained]
      if eval_only:
        return (f"class folder(s) under {input_base} with no {train} "
                f"counterpart: {names(eval_only)}. Add {train}<class>/ images "
                "for each, or remove the folder.")
    return ""

  def curate_schema(self, base, statistics):
    """The class domain from the training split: an unknown class at eval
    time is an anomaly."""
    import tensorflow_data_validation as tfdv
    inferred = tfdv.infer_schema(statistics["train"],
                                 max_string_domain_size=100_000)
    classes = sorted(tfdv.get_domain(inferred, features.LABEL).value)
    if not classes:
      raise ValueError("the training split has no class names")
    domain = next(d for d in base.string_domain if d.name == features.LABEL)
    del domain.value[:]
    domain.value.extend(classes)
    return base

  def schema_line(self, schema):
    import tensorflow_data_validation as tfdv
    classes = list(tfdv.get_domain(schema, features.LABEL).value)
    shown = ", ".join(classes[:SHOWN_CLASSES]) + (
        ", ..." if len(classes) > SHOWN_CLASSES else "")
    return f"{len(classes)} classes ({shown})"

  # Transform and Trainer.
  def transform(self, inputs, batch, settings):
    """Class name -> id, through a vocabulary exported with the model."""
    import tensorflow_transform as tft
    from trainer.preprocessing import dense_1d
    if features.LABEL not in inputs:  # serving raw images
      return {}
    return {features.LABEL_ID: tft.compute_and_apply_vocabulary(
        dense_1d(inputs[features.LABEL]), vocab_filename=features.LABEL_VOCAB)}

  def class_names(self, tft_output):
    from trainer.preprocessing import class_names
    return class_names(tft_output)

  def head(self, num_classes):
    if num_classes < 2:
      raise ValueError(f"need at least 2 classes, got {num_classes}")
    return Head(num_classes, "softmax", "probabilities")

  def prepare_label(self, label, num_classes):
    import tensorflow as tf
    return tf.one_hot(tf.reshape(label, [-1]), num_classes)

  def compile(self, model, optimizer, settings):
    from trainer.keras_lib import keras
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(
                      label_smoothing=float(settings.label_smoothing)),
                  metrics=[keras.metrics.CategoricalAccuracy(name=self.score)])

  def serving_outputs(self, outputs, transformed, class_names, settings,
                      refused):
    import tensorflow as tf
    from trainer.export import nan_where
    names = tf.constant(class_names or [""])
    batch = tf.shape(outputs)[0]
    return {
        "probabilities": nan_where(refused, outputs),
        "class_names": tf.tile(names[tf.newaxis], [batch, 1]),
        "top_class": tf.where(refused, "",
                              tf.gather(names, tf.argmax(outputs, axis=-1))),
    }

  def trainer_phrase(self, info):
    return f"eval top-1 {info['eval_top1']:.3f}"

  # TFMA.
  def eval_keys(self):
    return features.LABEL_ID, "probabilities"

  def tfma_metrics(self):
    import tensorflow_model_analysis as tfma
    from gate import tfma_metric
    return [tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name="SparseCategoricalAccuracy"),
            # Always: with k or fewer classes it is 1.0 (every label is in
            # the top k), and the report, which knows the class count at
            # run time, leaves it out.
            tfma.MetricConfig(class_name="SparseTopKCategoricalAccuracy",
                              config=json.dumps({"k": tfma_metric.TOP_K})),
            tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
            tfma.MetricConfig(class_name="PairedAccuracy",
                              module=tfma_metric.__name__)]

  def slicing_specs(self):
    import tensorflow_model_analysis as tfma
    # Overall, and per true class: a label slice's top-1 is its recall.
    return [tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[features.LABEL])]

  # Gates.
  def score_of(self, metrics):
    from gate.tfma_metric import TOP1
    return metrics.get(TOP1)

  def floor(self, configured, evaluation_uri, transform_graph_uri):
    from gate import floor
    return floor.resolve(configured, transform_graph_uri)

  def clears(self, score, floor):
    from gate import floor as top1_floor
    return top1_floor.clears(score, floor)

  def compare(self, evaluation_uri, model_name, confidence):
    from gate import stats, tfma_metric
    table = tfma_metric.load_table(evaluation_uri, model_name)
    if table is None:
      raise RuntimeError(
          f"{evaluation_uri}: no PairedAccuracy table for {model_name!r}; the "
          "Evaluator must run with a baseline and gate.tfma_metric's metric")
    return stats.paired_accuracy(*table, confidence=confidence)

  def compare_pair(self, evaluation_uri, a, b, confidence):
    from gate import stats, tfma_metric
    values = tfma_metric.load_pair(evaluation_uri, a, b)
    names = (tfma_metric.EXAMPLES, tfma_metric.CANDIDATE_ONLY,
             tfma_metric.BASELINE_ONLY)
    if not all(n in values for n in names):
      raise RuntimeError(no_pair(evaluation_uri, "PairedAccuracy table", a,
                                 b))
    return stats.paired_accuracy(*(values[n] for n in names),
                                 confidence=confidence)

  # Report.
  def text(self, score):
    return f"{score:.4f}"

  def floor_text(self, floor):
    return f"the floor {floor:.4f}"

  def margin_text(self, margin):
    return f"{100 * margin:+.1f} points"

  def tolerance_text(self, tolerance):
    return f"{100 * tolerance:.1f} points"

  def clears_verb(self):
    return "clears"

  def under_floor_clause(self, learned_text, floor):
    return f"the learned resizer ({learned_text}) is under the floor {floor:.4f}"

  def both_under_clause(self, floor):
    return f" are both under the floor {floor:.4f}."

  def model_results(self, name, info, overall, per_class, num_classes):
    from gate.tfma_metric import TOP1, TOP5, TOP_K
    metrics = dict(overall[name])
    if num_classes <= TOP_K:  # every label is in the top k: always 1.0
      metrics.pop(TOP5, None)
    return {"metrics": metrics, "top1": metrics[TOP1],
            "top5": metrics.get(TOP5),
            # Inference-mode top-1 on a sample of the training split: far
            # above eval is overfitting, far below a broken inference mode.
            "train_sample_top1": info.get("train_sample_top1"),
            "per_class_recall": per_class.get(name, {}),
            "confusion_matrix": info.get("confusion_matrix")}

  def headline(self, model):
    return model["top1"]

  def production_results(self, candidate, production):
    return {"candidate_top1": self.score_of(candidate),
            "production_top1": self.score_of(production)}

  def production_text(self, production):
    return f"{production['production_top1']:.4f}"

  def table_header(self):
    return ("| model | parameters (M) | top-1 (eval) | top-1 (train sample) |",
            "|---|---|---|---|")

  def table_cells(self, model):
    train = model.get("train_sample_top1")
    train = "" if train is None else f"{100 * train:.2f}%"
    return f"{100 * model['top1']:.2f}% | {train}"

  def difference_text(self, value):
    return f"{100 * value:+.1f}"

  def card_metrics(self, model):
    named = [("top-1", "eval", model["top1"]),
             ("top-5", "eval", model.get("top5")),
             ("top-1", "train sample", model.get("train_sample_top1"))]
    # A label slice's top-1 is the recall of that class.
    named += [("recall", f"eval, {features.LABEL}={label}", value)
              for label, value in sorted(model["per_class_recall"].items())]
    return [row for row in named if row[2] is not None]

  def card_use_case(self):
    return ("Classify images like the training set's into its classes; the "
            "answer is one of those classes, even for an image of none.")

  def card_output_format(self):
    return ("probabilities (one per class), class_names, top_class (the most "
            "likely class name) and error; blank for an image that could "
            "not be decoded, with error saying why")

  def prepare_infos(self, evaluation_uri, infos):
    from gate.tfma_metric import confusion_matrices
    matrices = confusion_matrices(evaluation_uri,
                                  next(iter(infos.values()))["class_names"])
    for name, info in infos.items():
      info["confusion_matrix"] = matrices.get(name)


TASK = Classification()
