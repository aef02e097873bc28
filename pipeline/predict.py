"""`resizer-pipeline predict --model DIR IMAGE...`: a pushed model's answers.

Only the model's `serving_images` signature is used (raw image bytes in;
`probabilities`, `class_names`, `top_class` out, or `prediction` from a
model of a numeric target, and per image an `error`), so this runs any model the
Pusher wrote, with no project code inside it. DIR is a pushed model folder
(it holds saved_model.pb) or the serving root, whose newest version is used.
Paths may be local or gs://.

A SavedModel is a program: before loading one, its graph is checked for ops
that the models this pipeline exports don't use (pipeline/model_check.py);
--trust-model skips that. Each file's header is checked with PIL before it is
decoded: one declaring more pixels than the model decodes (its recorded
max_pixels, or the pipeline's default for a model that records none) is not
sent. A file is then sent as ingest stores it (ingest.inspect_image, the same
code), so the model sees the pixels it was trained on: JPEG and PNG as they
are; WebP, BMP, GIF, TIFF and EXIF-rotated photos as ingest's lossless PNG
of the upright RGB image. A file ingest rejects gets ingest's reason. What
the model or a file name says is printed escaped (trainer/text.py).
"""
import contextlib
import io
import json
import sys
import warnings

import tensorflow as tf
from PIL import Image

from components.image_example_gen import ingest
from pipeline import model_check
from pipeline.config import DataConfig
from trainer import image_header, model_dirs
from trainer.text import escape

SIGNATURE = "serving_images"
# The served model's own header reader, for sizes past PIL's bomb limit;
# traced, as a served model runs it (its loops run in Python eagerly).
_read_header = tf.function(image_header.read, autograph=False, input_signature=[
    tf.TensorSpec([None], tf.string)])


class ModelError(ValueError):
  """--model can't be used; the message names it and the fix."""


def load(path, trust=False):
  """(model folder, loaded model) for --model PATH; unless `trust`, only a
  model whose graph passes pipeline/model_check is loaded."""
  model_dir = model_dirs.resolve_model_dir(path)
  if model_dir is None:
    raise ModelError(
        f"--model: {path} has no {model_dirs.SAVED_MODEL} and no numbered "
        "version folder holding one; give a pushed model folder "
        "(<output>/serving/<version>) or the serving root <output>/serving")
  if not trust:
    try:
      model_check.check(model_dir)
    except model_check.ModelCheckError as e:
      raise ModelError(f"--model: {e}. Give a model this pipeline pushed, or "
                       "pass --trust-model if you trust whoever made it") \
          from None
  try:
    model = tf.saved_model.load(model_dir)
  except (OSError, ValueError, tf.errors.OpError) as e:
    raise ModelError(f"--model: can't load {model_dir} ({e}); give a model "
                     "this pipeline pushed") from None
  if SIGNATURE not in model.signatures:
    raise ModelError(
        f"--model: {model_dir} has no {SIGNATURE} signature (it has "
        f"{', '.join(sorted(model.signatures)) or 'none'}); give a model this "
        "pipeline pushed")
  outputs = model.signatures[SIGNATURE].structured_outputs
  if "probabilities" not in outputs and "prediction" not in outputs:
    raise ModelError(f"--model: {SIGNATURE} returns "
                     f"{', '.join(sorted(outputs))}, neither probabilities "
                     "nor prediction")
  return model_dir, model


def max_pixels(model):
  """The pixel limit `model` records (pushed models since they record one),
  else the pipeline's default."""
  recorded = getattr(model, "max_pixels", None)
  if recorded is None:
    return DataConfig.max_pixels
  try:
    value = recorded() if callable(recorded) else recorded
    value = int(value.numpy() if hasattr(value, "numpy") else value)
  except (TypeError, ValueError, tf.errors.OpError):
    value = 0
  if value <= 0:
    raise ModelError("--model: its max_pixels is not a positive pixel count; "
                     "give a model this pipeline pushed")
  return value


@contextlib.contextmanager
def _no_bomb_warning():
  """Silences PIL's own bomb warning: the model's limit is the one that
  applies (refusal)."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    yield


def refusal(data, limit):
  """Why `data` is not sent to a model that decodes at most `limit` pixels
  ("" when it is sent), from the header alone: Image.open never decodes."""
  try:
    with _no_bomb_warning():
      with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        frames = image.n_frames if image.format == "GIF" else 1
  except Image.DecompressionBombError:
    # Above PIL's own limit, which hides the size: the model's reader gives it.
    header = _read_header(tf.constant([data]))
    width, height, frames = (int(header.width[0]), int(header.height[0]),
                             int(header.frames[0]))
  except Exception:  # pylint: disable=broad-except
    return ""  # not an image PIL reads: ingest's check says why
  pixels = width * height * frames
  if pixels <= limit:
    return ""
  return image_header.TOO_BIG.format(
      image_header.size_text(width, height, frames), pixels, limit)


def _read(path):
  """The file's bytes, or raises ValueError saying what is wrong with it."""
  if not tf.io.gfile.exists(path):
    raise ValueError("no such file")
  if tf.io.gfile.isdir(path):
    raise ValueError("is a folder, not an image file")
  with tf.io.gfile.GFile(path, "rb") as f:
    data = f.read()
  if not data:
    raise ValueError("is empty")
  return data


def _answers(model, images, top):
  """One result dict per image (all decodable) from one signature call: an
  answer, or {"error"} for an image the model refused."""
  outputs = model.signatures[SIGNATURE](image_bytes=tf.constant(images))
  # Older models have no `error` output: they refuse nothing.
  errors = [e.decode(errors="replace") for e in outputs["error"].numpy()] \
      if "error" in outputs else [""] * len(images)
  if "probabilities" not in outputs:  # load() checked there is one or other
    values = outputs["prediction"].numpy().tolist()  # a numeric target
    return [{"error": e} if e else
            {"prediction": v[0] if isinstance(v, list) and len(v) == 1 else v}
            for v, e in zip(values, errors)]
  probs = outputs["probabilities"].numpy()
  names = outputs["class_names"].numpy()
  results = []
  for p, row, error in zip(probs, names, errors):
    if error:
      results.append({"error": error})
      continue
    order = sorted(range(len(p)), key=lambda i: -p[i])[:top]
    results.append({
        "top_class": _decode(row[order[0]]),
        "top": [{"class": _decode(row[i]), "probability": float(p[i])}
                for i in order]})
  return results


def _decode(name):
  """A class name from the model: bytes that need not be UTF-8."""
  return name.decode("utf-8", errors="backslashreplace") \
      if isinstance(name, bytes) else str(name)


def prepare(path, limit):
  """(what the model is sent for the file at `path`, "") or (None, why it is
  not sent): the rules of both forms, the small one and the batch job."""
  try:
    data = _read(path)
  except (ValueError, tf.errors.OpError) as e:
    return None, getattr(e, "message", None) or str(e)
  error = refusal(data, limit)  # before any decode
  if error:
    return None, error
  try:
    with _no_bomb_warning():
      return ingest.inspect_image(data, limit), ""
  except ValueError as e:  # ingest's own reason for rejecting the file
    return None, str(e)


def answer(model, images, top):
  """One result dict per prepared image (ingest.Ingested), in order: its
  answer, or {"error"}."""
  if not images:
    return []
  try:  # one batch when every image decodes
    return _answers(model, [image.encoded for image in images], top)
  except tf.errors.InvalidArgumentError:
    pass
  results = []
  for image in images:
    try:  # one by one, to tell which file the model can't decode
      results.append(_answers(model, [image.encoded], top)[0])
    except tf.errors.InvalidArgumentError:
      # PIL decoded it; a model this pipeline pushed decodes what ingest stores.
      results.append({"error": (
          f"the model can't decode it (sent as {image.fmt.upper()}, as ingest "
          "stores it); give a model this pipeline pushed")})
  return results


def predict(model, paths, top=3):
  """One dict per path, in order: its answer, or {"file", "error"}."""
  results = [{"file": p} for p in paths]
  limit = max_pixels(model)
  sent = []
  for result in results:
    image, error = prepare(result["file"], limit)
    if error:
      result["error"] = error
    else:
      sent.append((result, image))
  for (result, _), found in zip(sent, answer(model, [i for _, i in sent],
                                             top)):
    result.update(found)
  return results


def _text(result):
  """One line; names from the model and file paths escaped."""
  file = escape(result["file"])
  if "error" in result:  # the model's own words, maybe
    return f"{file}: error: {escape(result['error'])}"
  if "prediction" in result:
    return f"{file}: prediction {escape(result['prediction'])}"
  return f"{file}: " + ", ".join(
      f"{escape(c['class'])} {c['probability']:.4f}" for c in result["top"])


def main(args):
  """Prints one line per image (or one JSON document); 1 if any file failed,
  2 if the model can't be used. The CLI checked the flags."""
  try:
    model_dir, model = load(args.model, args.trust_model)
    results = predict(model, args.images, args.top)
  except ModelError as e:
    print(f"resizer-pipeline: error: {escape(e)}", file=sys.stderr)
    return 2
  if args.json:  # json.dumps escapes control and non-ASCII characters
    print(json.dumps({"model": model_dir, "results": results}, indent=2))
  else:
    print(f"model: {escape(model_dir)}")
    for result in results:
      print(_text(result), file=sys.stderr if "error" in result else sys.stdout)
  return 1 if any("error" in r for r in results) else 0
