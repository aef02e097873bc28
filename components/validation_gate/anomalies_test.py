"""Schema anomalies on ExampleGen-shaped tf.Examples, at function level:
StatisticsGen's TFDV statistics -> CuratedSchemaGen's curate ->
ExampleValidator's validate_statistics -> the ValidationGate's message."""
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tfx_bsl.coders import example_coder

import schema as schema_pkg
from components.image_example_gen.ingest import inspect_image, make_example
from components.schema_curator.component import curate
from components.validation_gate.component import describe
from testing.bad_inputs import encode, exif, picture
from testing.helpers import jpeg_bytes
from trainer import features


def examples(classes, image=None):
  """One tf.Example per class name (or number: a numeric target), as
  ImageExampleGen writes them."""
  image = image or inspect_image(jpeg_bytes(), max_pixels=10_000)
  return [make_example(image, label, f"{label}/{i}.jpg",
                       "regression" if isinstance(label, float) else "")
          for i, label in enumerate(classes)]


def statistics(split_examples):
  """What StatisticsGen computes for a split: TFDV over decoded tf.Examples,
  in memory instead of in a Beam pipeline."""
  batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(
      [e.SerializeToString() for e in split_examples])
  return stats_impl.generate_statistics_in_memory(batch)


def gate_lines(train, eval_):
  base = tfdv.load_schema_text(schema_pkg.BASE_SCHEMA)
  schema = curate(base, statistics(train))
  return describe("eval", tfdv.validate_statistics(statistics(eval_), schema))


TRAIN = examples(["cats", "dogs"] * 3)


def test_examplegen_output_matches_the_base_schema():
  # Including an EXIF-normalised image: image/normalized is not a new column.
  upright = inspect_image(encode(picture(), "JPEG", exif=exif(6)), 10_000)
  assert upright.normalized == "exif_orientation=6"
  assert gate_lines(TRAIN, examples(["cats", "dogs"])
                    + examples(["dogs"], upright)) == []


def test_a_class_unknown_at_training_is_named():
  lines = gate_lines(TRAIN, examples(["cats", "dogs", "zebra"]))
  assert len(lines) == 1
  assert lines[0].startswith(f"  split 'eval', feature '{features.LABEL}': ")
  assert "zebra" in lines[0]


def test_a_missing_image_feature_is_named():
  eval_ = examples(["cats", "dogs"])
  for example in eval_:  # records written without image/encoded
    del example.features.feature[features.IMAGE]
  lines = gate_lines(TRAIN, eval_)
  assert len(lines) == 1
  assert lines[0].startswith(f"  split 'eval', feature '{features.IMAGE}': ")
