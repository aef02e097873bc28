"""A model exported by the real Trainer (tiny Transform output, run_fn, its
signatures) refuses a decompression bomb before decoding it: the bomb's row
gets an error and NaN answers, the other images of the batch are answered
as they are alone, memory stays bounded, and `predict` refuses the file
before sending it."""
import io
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.image_example_gen import ingest
from pipeline import cli, predict
from pipeline.config import PipelineConfig
from testing import bad_inputs
from testing.helpers import jpeg_bytes, png_bomb
from trainer import features

LIMIT = PipelineConfig().data.max_pixels
BOMB_ERROR = ("image is 20000x20000 = 400000000 pixels, above this model's "
              f"limit of {LIMIT} (max_pixels); send a smaller image")
CLASSES = {"red": (220, 30, 30), "blue": (30, 30, 220)}


def _png(color, size=(20, 20)):
  buf = io.BytesIO()
  Image.new("RGB", size, color).save(buf, format="PNG")
  return buf.getvalue()


def _transform(root, rows, spec, cfg):
  """TF Transform as the pipeline's Transform runs it: the transform graph
  and the transformed examples (the same ones for train and eval)."""
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  import tensorflow_transform as tft  # pylint: disable=import-outside-toplevel
  import tensorflow_transform.beam as tft_beam  # pylint: disable=import-outside-toplevel
  from tensorflow_transform.tf_metadata import (  # pylint: disable=import-outside-toplevel
      dataset_metadata, metadata_io, schema_utils)

  from pipeline.transform_module import preprocessing_fn  # pylint: disable=import-outside-toplevel
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(spec))
  # The raw schema, which TFX's Transform writes beside the graph.
  metadata_io.write_metadata(metadata, str(root / "transform" / "metadata"))
  with beam.Pipeline() as p, tft_beam.Context(temp_dir=str(root / "tmp")):
    (data, transformed_metadata), transform_fn = (
        (p | beam.Create(rows), metadata)
        | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, cfg)))
    _ = transform_fn | tft_beam.WriteTransformFn(str(root / "transform"))
    coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
    encoded = data | beam.Map(coder.encode)
    for split in ("train", "eval"):
      _ = encoded | f"Write {split}" >> beam.io.WriteToTFRecord(
          str(root / "examples" / f"Split-{split}" / "data"),
          file_name_suffix=".gz")


def _train(root, task):
  """The serving model folder run_fn exports for a tiny `task` dataset."""
  from tfx.components.trainer.fn_args_utils import DataAccessor  # pylint: disable=import-outside-toplevel
  from tfx.components.util import tfxio_utils  # pylint: disable=import-outside-toplevel
  from tfx.types import standard_artifacts  # pylint: disable=import-outside-toplevel

  from pipeline.trainer_module import run_fn  # pylint: disable=import-outside-toplevel
  config = PipelineConfig(output=str(root / "out"))  # its TensorBoard logs
  config.data.task = task
  config.model.backbone, config.model.input_size = "tiny_cnn", 32
  config.model.target_size = 16
  config.train.epochs, config.train.batch_size = 1, 4
  config.train.bn_recalibration = 0
  label = features.TARGET if task == "regression" else features.LABEL
  rows = [{features.IMAGE: [jpeg_bytes((24, 24), color)],
           label: [float(color[0])] if task == "regression" else [name.encode()]}
          for name, color in CLASSES.items() for _ in range(4)]
  spec = {features.IMAGE: tf.io.FixedLenFeature([1], tf.string),
          label: tf.io.FixedLenFeature(
              [1], tf.float32 if task == "regression" else tf.string)}
  _transform(root, rows, spec, config.transform_config())
  examples = standard_artifacts.Examples()
  examples.uri = str(root / "examples")
  examples.split_names = '["train", "eval"]'
  fn_args = types.SimpleNamespace(
      custom_config=config.trainer_config("bilinear"),
      transform_output=str(root / "transform"),
      train_files=[str(root / "examples" / "Split-train" / "*")],
      eval_files=[str(root / "examples" / "Split-eval" / "*")],
      data_accessor=DataAccessor(
          tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact(
              [examples], []),
          record_batch_factory=None, data_view_decode_fn=None),
      model_run_dir=str(root / "trainer" / "model_run" / "1"),
      serving_model_dir=str(root / "serving"))
  run_fn(fn_args)
  return str(root / "serving")


@pytest.fixture(scope="module", params=["classification", "regression"])
def exported(request, tmp_path_factory):
  root = tmp_path_factory.mktemp(request.param)
  return request.param, _train(root, request.param)


def _example(image):
  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[image]))})).SerializeToString()


def _call(model, signature, images):
  if signature == "serving_images":
    outputs = model.signatures[signature](image_bytes=tf.constant(images))
  else:
    outputs = model.signatures[signature](
        examples=tf.constant([_example(i) for i in images]))
  return {k: v.numpy() for k, v in outputs.items()}


@pytest.mark.parametrize("signature", ["serving_images", "serving_default"])
def test_a_bomb_in_a_batch_is_refused_and_the_rest_answered(exported,
                                                            signature):
  task, serving_dir = exported
  model = tf.saved_model.load(serving_dir)
  good = [jpeg_bytes((40, 30), CLASSES["red"]), _png(CLASSES["blue"])]
  batch = _call(model, signature, [good[0], png_bomb(20_000, 20_000), good[1]])
  assert [e.decode() for e in batch["error"]] == ["", BOMB_ERROR, ""]
  alone = [_call(model, signature, [image]) for image in good]
  if task == "regression":
    assert sorted(batch) == ["error", "prediction", "training_mean"]
    assert np.isnan(batch["prediction"][1])
    # Kernels may sum in another order for another batch size: the same
    # answer to float32 rounding, not bit for bit.
    np.testing.assert_allclose(batch["prediction"][[0, 2]],
                               [a["prediction"][0] for a in alone],
                               rtol=1e-6, atol=1e-6)
    assert len(set(batch["training_mean"].tolist())) == 1  # all rows
  else:
    assert sorted(batch) == ["class_names", "error", "probabilities",
                             "top_class"]
    assert np.isnan(batch["probabilities"][1]).all()
    assert batch["top_class"][1] == b""
    names = alone[0]["class_names"][0].tolist()
    assert sorted(names) == [b"blue", b"red"]
    assert batch["class_names"].tolist() == [names] * 3
    np.testing.assert_allclose(batch["probabilities"][[0, 2]],
                               [a["probabilities"][0] for a in alone],
                               rtol=1e-6, atol=1e-6)
    assert batch["top_class"][[0, 2]].tolist() == [
        a["top_class"][0] for a in alone]
  # The limit, recorded for clients.
  assert int(model.max_pixels()) == LIMIT


def test_tfma_transform_features_refuses_a_bomb_too(exported):
  task, serving_dir = exported
  model = tf.saved_model.load(serving_dir)
  label = features.TARGET if task == "regression" else features.LABEL

  def labeled(image):
    value = tf.train.Feature(float_list=tf.train.FloatList(value=[1.0])) \
        if task == "regression" else tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[b"red"]))
    return tf.train.Example(features=tf.train.Features(feature={
        features.IMAGE: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[image])),
        label: value})).SerializeToString()

  good = jpeg_bytes((40, 30), CLASSES["red"])
  outputs = model.signatures["transform_features"](examples=tf.constant(
      [labeled(good), labeled(png_bomb(20_000, 20_000))]))
  assert [e.decode() for e in outputs["error"].numpy()] == ["", BOMB_ERROR]
  pixels = outputs[features.PIXELS].numpy()
  assert len(pixels[0]) == len(pixels[1]) == 32 * 32 * 3


_SERVE_BOMB = r"""
import json, resource, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
good, bomb = [open(p, "rb").read() for p in sys.argv[2:4]]

def example(image):
  return tf.train.Example(features=tf.train.Features(feature={
      "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[image]))})).SerializeToString()

def serve(images):
  return [model.signatures["serving_images"](image_bytes=tf.constant(images)),
          model.signatures["serving_default"](
              examples=tf.constant([example(i) for i in images]))]

serve([good, good, good])  # traced and warmed up on images it answers
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
with open("/proc/self/status") as f:
  size = [int(l.split()[1]) for l in f if l.startswith("VmSize:")][0]
# A regression that decodes the bomb fails here, not the machine.
resource.setrlimit(resource.RLIMIT_AS, (size * 1024 + 3 * 2 ** 30,
                                        resource.RLIM_INFINITY))
outputs = serve([good, bomb, good])
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"growth_mb": growth / 1024, "errors": [
    [e.decode() for e in o["error"].numpy()] if "error" in o else None
    for o in outputs]}))
"""


def test_serving_a_bomb_keeps_memory_bounded(exported, tmp_path):
  """Decoding the bomb (a real one: its data holds every row) would take
  1.2 GB for its pixels alone; a fresh process, as serving runs the model,
  grows by far less."""
  _, serving_dir = exported
  good, bomb = tmp_path / "good.jpg", tmp_path / "bomb.png"
  good.write_bytes(jpeg_bytes((40, 30), CLASSES["red"]))
  bomb.write_bytes(png_bomb(20_000, 20_000, filled=True))
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  proc = subprocess.run([sys.executable, "-c", _SERVE_BOMB, serving_dir,
                         str(good), str(bomb)], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  assert result["growth_mb"] < 200
  assert result["errors"] == [["", BOMB_ERROR, ""]] * 2


def test_predict_refuses_bombs_before_sending_and_answers_the_rest(
    exported, tmp_path, capsys):
  _, serving_dir = exported
  files = {"good.jpg": jpeg_bytes((40, 30), CLASSES["red"]),
           "bomb.png": png_bomb(20_000, 20_000),
           # Under PIL's own bomb limit, over the model's.
           "big.png": png_bomb(8_000, 8_000),
           "good.png": _png(CLASSES["blue"]),
           "notes.jpg": b"not an image"}
  paths = []
  for name, data in files.items():
    paths.append(str(tmp_path / name))
    (tmp_path / name).write_bytes(data)
  sent = []
  model = tf.saved_model.load(serving_dir)
  serve = model.signatures["serving_images"]

  def spy(image_bytes):
    sent.append(len(image_bytes.numpy()))
    return serve(image_bytes=image_bytes)

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr("pipeline.predict.load",
               lambda path, trust=False: (path, types.SimpleNamespace(
                   signatures={"serving_images": spy},
                   max_pixels=model.max_pixels)))
    rc = cli.main(["predict", "--model", serving_dir, *paths])
  out, err = capsys.readouterr()
  assert rc == 1
  assert sent == [2]  # the bombs and the non-image never left
  answered = [line.split(":")[0] for line in out.splitlines()[1:]]
  assert answered == [paths[0], paths[3]]
  assert err.splitlines() == [
      f"{paths[1]}: error: {BOMB_ERROR}",
      f"{paths[2]}: error: image is 8000x8000 = 64000000 pixels, above this "
      f"model's limit of {LIMIT} (max_pixels); send a smaller image",
      # Ingest's reason for it.
      f"{paths[4]}: error: {ingest.UNRECOGNISED}"]


def _answer(outputs, i):
  """Row i's answer: a regression's prediction or the class probabilities."""
  return outputs["prediction"][i] if "prediction" in outputs \
      else outputs["probabilities"][i]


@pytest.mark.parametrize("signature", ["serving_images", "serving_default"])
def test_the_served_signatures_decode_bmp_and_gif_in_graph(exported,
                                                           signature):
  """Each answered as a PNG of the pixels PIL reads from it."""
  _, serving_dir = exported
  model = tf.saved_model.load(serving_dir)
  picture = bad_inputs.picture()
  bmp = bad_inputs.encode(picture, "BMP")
  gif = bad_inputs.encode(picture, "GIF")
  images = [bmp, gif] + [bad_inputs.encode(Image.fromarray(
      bad_inputs.pil_view(data)), "PNG") for data in (bmp, gif)]
  outputs = _call(model, signature, images)
  assert [e.decode() for e in outputs["error"]] == [""] * 4
  for i in (0, 1):
    assert not np.isnan(_answer(outputs, i)).any()
    np.testing.assert_allclose(_answer(outputs, i), _answer(outputs, i + 2),
                               rtol=1e-6, atol=1e-6)


def test_predict_answers_each_format_as_the_model_answers_ingests_image(
    exported, tmp_path):
  """What predict prints is the served model's answer for what ingest stores
  for the file."""
  task, serving_dir = exported
  model = tf.saved_model.load(serving_dir)
  corpus = bad_inputs.file_corpus()
  names = ["small_40x30.jpg", "with space.png", "exif6.jpg", "photo.bmp",
           "anim.gif", "photo.webp", "rotated.webp", "photo.tiff"]
  paths = []
  for name in names:
    paths.append(str(tmp_path / name))
    (tmp_path / name).write_bytes(corpus[name])
  results = predict.predict(model, paths, top=2)
  stored = [ingest.inspect_image(corpus[name], LIMIT).encoded
            for name in names]
  expected = _call(model, "serving_images", stored)
  for i, (name, result) in enumerate(zip(names, results)):
    assert "error" not in result, (name, result)
    if task == "regression":
      np.testing.assert_allclose(np.ravel(result["prediction"]),
                                 np.ravel(expected["prediction"][i]),
                                 rtol=1e-6, atol=1e-6, err_msg=name)
    else:
      probs = expected["probabilities"][i]
      assert result["top_class"] == expected["top_class"][i].decode(), name
      assert [c["probability"] for c in result["top"]] == pytest.approx(
          sorted(probs, reverse=True), abs=1e-6), name
