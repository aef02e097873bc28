"""`resizer-pipeline predict` on small hand-made SavedModels with the pushed
models' serving_images interface (the whole DAG's model: test_pipeline_e2e)."""
import json
import re
import types

import numpy as np
import pytest
import tensorflow as tf

from components.image_example_gen import ingest
from pipeline import cli, predict
from pipeline.config import DataConfig
from testing import bad_inputs
from testing.helpers import (ColorModel, hostile_model, jpeg_bytes, png_bomb,
                             save_color_model)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
  folder = tmp_path_factory.mktemp("images")
  paths = {}
  for name, color in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
    paths[name] = folder / f"{name}.jpg"
    paths[name].write_bytes(jpeg_bytes(color=color))
  paths["text"] = folder / "notes.jpg"
  paths["text"].write_text("not an image")
  return {k: str(v) for k, v in paths.items()}


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
  """A serving root: an older classifier, a newer regression model, and a
  newer half-copied version without saved_model.pb."""
  root = tmp_path_factory.mktemp("serving")
  save_color_model(root / "100")
  save_color_model(root / "200", regression=True)
  (root / "300" / "variables").mkdir(parents=True)
  return root


def _expected_probs(color):
  return tf.nn.softmax(np.array(color, np.float32) / 10.0).numpy()


def test_text_output_lists_top_classes_and_bad_files(serving, images, capsys):
  rc = cli.main(["predict", "--model", str(serving / "100"), "--top", "2",
                 images["red"], images["text"], images["blue"],
                 images["red"] + ".missing"])
  out, err = capsys.readouterr()
  assert rc == 1  # two files failed
  lines = out.strip().splitlines()
  assert lines[0] == f"model: {serving / '100'}"
  red, blue = lines[1:]
  assert red.startswith(f"{images['red']}: red ")
  assert blue.startswith(f"{images['blue']}: blue ")
  assert len(red.split(", ")) == 2  # --top 2
  assert err.strip().splitlines() == [
      f"{images['text']}: error: {ingest.UNRECOGNISED}",
      f"{images['red']}.missing: error: no such file"]


def test_json_output_has_probabilities(serving, images, capsys):
  rc = cli.main(["predict", "--model", str(serving / "100"), "--json",
                 images["blue"], images["red"]])
  doc = json.loads(capsys.readouterr().out)
  assert rc == 0 and doc["model"] == str(serving / "100")
  blue, red = doc["results"]
  assert blue["file"] == images["blue"] and blue["top_class"] == "blue"
  assert red["top_class"] == "red"
  # Every class, most probable first, with the model's own numbers.
  assert [c["class"] for c in red["top"]] == ["red", "green", "blue"]
  decoded = tf.io.decode_image(open(images["red"], "rb").read(),
                               channels=3).numpy()
  expected = _expected_probs(decoded.reshape(-1, 3).mean(0))
  assert [c["probability"] for c in red["top"]] == pytest.approx(
      sorted(expected, reverse=True), abs=1e-5)


def test_serving_root_uses_the_newest_complete_version(serving, images,
                                                       capsys):
  rc = cli.main(["predict", "--model", str(serving), "--json", images["red"]])
  doc = json.loads(capsys.readouterr().out)
  assert rc == 0 and doc["model"] == str(serving / "200")  # not 300: no .pb
  [result] = doc["results"]
  decoded = tf.io.decode_image(open(images["red"], "rb").read(),
                               channels=3).numpy()
  assert result["prediction"] == pytest.approx(decoded[..., 0].mean(),
                                               abs=1e-3)
  rc = cli.main(["predict", "--model", str(serving), images["red"]])
  out = capsys.readouterr().out.strip().splitlines()
  assert rc == 0
  assert out[1] == f"{images['red']}: prediction {result['prediction']}"


@pytest.mark.parametrize("make, message", [
    (lambda p: str(p / "nothing"), "has no saved_model.pb and no numbered"),
    (lambda p: save_color_model(p / "m", signature="other"),
     "has no serving_images signature (it has other)"),
])
def test_unusable_model_exits_2_naming_it(tmp_path, images, capsys, make,
                                          message):
  path = make(tmp_path)
  rc = cli.main(["predict", "--model", path, images["red"]])
  err = capsys.readouterr().err.strip()
  assert rc == 2 and err == err.splitlines()[0]
  assert err.startswith(f"resizer-pipeline: error: --model: {path} {message}")


@pytest.mark.parametrize("where, ops, function", [
    ("initializer", ["ReadFile", "WriteFile"], "__inference__initializer_"),
    ("serving_images", ["ReadFile", "WriteFile"], "__inference_serve_"),
    ("py_function", ["EagerPyFunc"], "__inference_serve_"),
])
def test_a_model_running_more_than_a_pushed_model_is_refused_unloaded(
    tmp_path, images, capsys, where, ops, function):
  path, marker = hostile_model(tmp_path, where)
  rc = cli.main(["predict", "--model", path, images["red"]])
  out, err = capsys.readouterr()
  assert rc == 2 and not out and err.count("\n") == 1
  assert err.startswith(f"resizer-pipeline: error: --model: {path} runs what "
                        "the models of this pipeline don't: ")
  for op in ops:  # each refused op and the function it is in
    assert re.search(rf"[:;] {op} \(in {function}\d+\)", err), err
  assert "pass --trust-model if you trust whoever made it" in err
  assert not marker.exists()


def test_trust_model_loads_a_refused_model(tmp_path, images, capsys):
  path, marker = hostile_model(tmp_path, "initializer")
  rc = cli.main(["predict", "--model", path, "--trust-model", "--json",
                 images["red"]])
  doc = json.loads(capsys.readouterr().out)
  assert rc == 0 and doc["results"][0]["top_class"] == "red"
  assert marker.read_text() == "secret"  # what the check kept from running


def test_names_from_the_model_and_paths_are_printed_escaped(tmp_path, images,
                                                            capsys):
  # An ANSI colour, a newline and a byte that is not UTF-8.
  path = save_color_model(tmp_path / "m", classes=[b"\x1b[31mred", b"gre\nen",
                                        b"bl\xffue"])
  missing = str(tmp_path / "\x1b[2Jgone.jpg")
  rc = cli.main(["predict", "--model", path, images["red"], missing])
  out, err = capsys.readouterr()
  assert rc == 1
  assert out.splitlines()[1] == (f"{images['red']}: \\x1b[31mred 1.0000, "
                                 "gre\\x0aen 0.0000, bl\\xffue 0.0000")
  assert err == f"{tmp_path}/\\x1b[2Jgone.jpg: error: no such file\n"
  assert "\x1b" not in out + err
  rc = cli.main(["predict", "--model", path, "--json", images["red"], missing])
  printed = capsys.readouterr().out
  assert "\x1b" not in printed and "\\u001b[31mred" in printed
  doc = json.loads(printed)
  assert [c["class"] for c in doc["results"][0]["top"]] == [
      "\x1b[31mred", "gre\nen", "bl\\xffue"]
  assert doc["results"][1]["file"] == missing


def test_files_over_the_models_recorded_limit_are_not_sent(tmp_path, images,
                                                           capsys):
  """The limit a model records applies (1000 pixels here: a 40x30 image is
  over it), the pipeline's default for a model that records none; the other
  files are still answered."""
  small = tmp_path / "small.jpg"
  small.write_bytes(jpeg_bytes(size=(30, 20)))
  bomb = tmp_path / "bomb.png"
  bomb.write_bytes(png_bomb(8_000, 8_000))
  rc = cli.main(["predict", "--model", save_color_model(tmp_path / "m", max_pixels=1000),
                 images["red"], str(small)])
  out, err = capsys.readouterr()
  assert rc == 1 and out.splitlines()[1].startswith(f"{small}: red ")
  assert err.splitlines() == [
      f"{images['red']}: error: image is 40x30 = 1200 pixels, above this "
      "model's limit of 1000 (max_pixels); send a smaller image"]
  rc = cli.main(["predict", "--model", save_color_model(tmp_path / "old"), str(bomb),
                 images["red"]])
  out, err = capsys.readouterr()
  assert rc == 1 and out.splitlines()[1].startswith(f"{images['red']}: red ")
  assert err.splitlines() == [
      f"{bomb}: error: image is 8000x8000 = 64000000 pixels, above this "
      "model's limit of 40000000 (max_pixels); send a smaller image"]


def test_an_animated_gif_counts_every_frame(tmp_path, capsys):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  frames = [Image.new("RGB", (20, 10), (i * 40, 0, 0)) for i in range(6)]
  gif = tmp_path / "anim.gif"
  frames[0].save(gif, save_all=True, append_images=frames[1:])
  rc = cli.main(["predict", "--model", save_color_model(tmp_path / "m", max_pixels=1000),
                 str(gif)])
  assert rc == 1 and capsys.readouterr().err.splitlines() == [
      f"{gif}: error: image is 20x10 x 6 frames = 1200 pixels, above this "
      "model's limit of 1000 (max_pixels); send a smaller image"]


def test_a_recorded_limit_that_is_not_a_pixel_count_exits_2(tmp_path, images,
                                                            capsys):
  path = save_color_model(tmp_path / "m", max_pixels=-1)
  rc = cli.main(["predict", "--model", path, images["red"]])
  assert rc == 2 and capsys.readouterr().err.strip() == (
      "resizer-pipeline: error: --model: its max_pixels is not a positive "
      "pixel count; give a model this pipeline pushed")


# Files of bad_inputs.file_corpus() in every format ingest accepts: whether
# ingest keeps the file's bytes (else it stores a PNG of PIL's upright RGB).
KEPT_BY_INGEST = {
    "small_40x30.jpg": True, "cmyk.jpg": True, "phone.jpg": True,
    "palette.png": True, "grey16.png": True, "exif6.jpg": False,
    "photo.bmp": False, "anim.gif": False, "photo.webp": False,
    "alpha.webp": False, "rotated.webp": False, "photo.tiff": False,
    "grey16.tiff": False}


def _write(folder, corpus, names):
  for name in names:
    (folder / name).write_bytes(corpus[name])
  return [str(folder / name) for name in names]


def test_every_format_ingest_accepts_is_sent_as_ingest_stores_it(tmp_path):
  corpus = bad_inputs.file_corpus()
  paths = _write(tmp_path, corpus, KEPT_BY_INGEST)
  module, sent = ColorModel(), []

  def spy(image_bytes):
    sent.append(image_bytes.numpy().tolist())
    return module.serve(image_bytes)

  results = predict.predict(types.SimpleNamespace(
      signatures={"serving_images": spy}), paths)
  assert [r.get("error") for r in results] == [None] * len(paths)
  [batch] = sent  # every file in one call
  for (name, kept), data, result in zip(KEPT_BY_INGEST.items(), batch,
                                        results):
    original = corpus[name]
    # Byte for byte what ingest stores for the file.
    assert data == ingest.inspect_image(original, DataConfig.max_pixels
                                        ).encoded, name
    if kept:
      assert data == original, name
    else:  # a PNG of exactly PIL's upright RGB view
      assert data.startswith(b"\x89PNG\r\n\x1a\n"), name
      np.testing.assert_array_equal(
          tf.io.decode_png(data, channels=3).numpy(),
          bad_inputs.pil_view(original), err_msg=name)
    mean = tf.io.decode_image(data, channels=3).numpy().reshape(-1, 3).mean(0)
    assert [c["probability"] for c in result["top"]] == pytest.approx(
        sorted(_expected_probs(mean), reverse=True), abs=1e-5), name


def test_a_file_ingest_rejects_gets_its_reason_and_the_rest_answer(tmp_path,
                                                                   capsys):
  corpus = bad_inputs.file_corpus()
  names = ["photo.webp", "favicon.ico", "truncated.jpg", "photo.tiff",
           "notes.jpg", "photo.bmp"]
  paths = _write(tmp_path, corpus, names)
  with pytest.raises(ValueError) as truncated:
    ingest.inspect_image(corpus["truncated.jpg"], DataConfig.max_pixels)
  rc = cli.main(["predict", "--model", save_color_model(tmp_path / "m"), *paths])
  out, err = capsys.readouterr()
  assert rc == 1
  assert [line.split(": ")[0] for line in out.splitlines()[1:]] == [
      paths[0], paths[3], paths[5]]
  assert str(truncated.value).startswith("cannot decode image: ")
  assert err.splitlines() == [
      f"{paths[1]}: error: unsupported format ICO (accepted: "
      f"{ingest.ACCEPTED})",
      f"{paths[2]}: error: {truncated.value}",
      f"{paths[4]}: error: {ingest.UNRECOGNISED}"]


def test_a_file_the_model_cant_decode_is_named_and_the_rest_answer(
    tmp_path, images, capsys):
  webp = tmp_path / "photo.webp"  # sent as PNG, which this model can't read
  webp.write_bytes(bad_inputs.encode(bad_inputs.picture(), "WEBP"))
  # --trust-model: its JPEG-only ops are not ops pushed models use.
  rc = cli.main(["predict", "--trust-model", "--model",
                 save_color_model(tmp_path / "m", jpeg_only=True), images["red"],
                 str(webp)])
  out, err = capsys.readouterr()
  assert rc == 1 and out.splitlines()[1].startswith(f"{images['red']}: red ")
  assert err.splitlines() == [
      f"{webp}: error: the model can't decode it (sent as PNG, as ingest "
      "stores it); give a model this pipeline pushed"]
