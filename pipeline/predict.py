"""`resizer-pipeline predict --model DIR IMAGE...`: a pushed model's answers.

Only the model's `serving_images` signature is used (raw JPEG/PNG bytes in;
`probabilities`, `class_names`, `top_class` out, or `prediction` from a
regression model), so this runs any model the Pusher wrote, with no project
code inside it. DIR is a pushed model folder (it holds saved_model.pb) or the
serving root, whose newest version is used. Paths may be local or gs://.

A SavedModel is a program: before loading one, its graph is checked for ops
that the models this pipeline exports don't use (pipeline/model_check.py);
--trust-model skips that. What the model or a file name says is printed
escaped (trainer/text.py).
"""
import json
import sys

import tensorflow as tf

from pipeline import model_check
from trainer import model_dirs
from trainer.text import escape

SIGNATURE = "serving_images"


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
  return model_dir, model


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
  """One result dict per image (all decodable) from one signature call."""
  outputs = model.signatures[SIGNATURE](image_bytes=tf.constant(images))
  if "probabilities" not in outputs:
    if "prediction" not in outputs:
      raise ModelError(f"--model: {SIGNATURE} returns "
                       f"{', '.join(sorted(outputs))}, neither probabilities "
                       "nor prediction")
    values = outputs["prediction"].numpy().tolist()  # a regression model
    return [{"prediction": v[0] if isinstance(v, list) and len(v) == 1 else v}
            for v in values]
  probs = outputs["probabilities"].numpy()
  names = outputs["class_names"].numpy()
  results = []
  for p, row in zip(probs, names):
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


def predict(model, paths, top=3):
  """One dict per path, in order: its answer, or {"file", "error"}."""
  results = [{"file": p} for p in paths]
  readable = []
  for result in results:
    try:
      readable.append((result, _read(result["file"])))
    except (ValueError, tf.errors.OpError) as e:
      result["error"] = getattr(e, "message", None) or str(e)
  try:  # one batch when every image decodes
    answers = _answers(model, [data for _, data in readable], top) \
        if readable else []
  except tf.errors.InvalidArgumentError:
    answers = None
  for i, (result, data) in enumerate(readable):
    if answers is not None:
      result.update(answers[i])
      continue
    try:  # one by one, to tell which file the model can't decode
      result.update(_answers(model, [data], top)[0])
    except tf.errors.InvalidArgumentError:
      result["error"] = ("not a JPEG or PNG image the model can decode; "
                         "send JPEG or PNG files")
  return results


def _text(result):
  """One line; names from the model and file paths escaped."""
  file = escape(result["file"])
  if "error" in result:
    return f"{file}: error: {escape(result['error'])}"
  if "prediction" in result:
    return f"{file}: prediction {escape(result['prediction'])}"
  return f"{file}: " + ", ".join(
      f"{escape(c['class'])} {c['probability']:.4f}" for c in result["top"])


def main(args):
  """Prints one line per image (or one JSON document); 1 if any file failed,
  2 if the model can't be used."""
  if args.top < 1:
    print("resizer-pipeline: error: --top: must be at least 1", file=sys.stderr)
    return 2
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


def add_parser(sub):
  parser = sub.add_parser(
      "predict", help="classify images with a pushed model",
      description="Runs a pushed model's serving_images signature on image "
      "files and prints the top classes with their probabilities (or the "
      "prediction of a regression model). Exit status 1 if any file failed.")
  parser.add_argument("--model", required=True,
                      help="a pushed model folder (holding saved_model.pb), "
                      "or the serving root <output>/serving for its newest "
                      "version; local or gs://")
  parser.add_argument("--top", type=int, default=3,
                      help="classes shown per image (default: 3)")
  parser.add_argument("--json", action="store_true",
                      help="print one JSON document instead of text lines")
  parser.add_argument("--trust-model", action="store_true",
                      help="load the model even if its graph uses ops that "
                      "the models this pipeline exports don't (file reads "
                      "and writes, Python calls, unknown ops): a SavedModel "
                      "is a program, so only for a model from someone you "
                      "trust")
  parser.add_argument("images", nargs="+", metavar="IMAGE",
                      help="JPEG or PNG files, local or gs://")
  return parser
