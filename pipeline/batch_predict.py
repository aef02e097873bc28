"""`resizer-pipeline predict --model DIR --input PATH --output FILE.jsonl`:
the small form's answers for every file under PATH, as a Beam job.

Each file is read, checked and converted by predict.prepare (the small form's
own rules), the good ones go in batches through Beam's RunInference to the
model's `serving_images` signature (predict.answer, the small form's call),
and every file gets one JSON line: {"file", answer fields as `predict --json`}
or {"file", "error"}. Lines come in no particular order.

Beam's RunInference with a handler of our own, not tfx-bsl's: tfx-bsl's
Classify/Regress handlers take tf.Examples only, and its Predict handler feeds
a TF1 session and returns PredictionLogs that copy each input into the
request; neither runs the model check before loading, nor converts images as
ingest does.
"""
import json
import logging
import os
import posixpath
import sys
from typing import List, NamedTuple

import apache_beam as beam
import tensorflow as tf
from apache_beam.ml.inference import base
from apache_beam.options.pipeline_options import PipelineOptions

from components.image_example_gen import input_folder
from pipeline import predict
from trainer.text import escape


class InputError(ValueError):
  """--input can't be listed; the message names it and the fix."""


class Entry(NamedTuple):
  """A file to answer, as listed by the launcher."""
  file: str      # the path written on its line
  problem: str   # why it is not read ("" if it is)
  check: bool    # a local symlink or special file: checked before reading


def list_inputs(path: str) -> List[Entry]:
  """Every file under `path` (recursive, hidden ones too: each gets a line),
  or `path` itself when it is a file."""
  if not tf.io.gfile.exists(path):
    raise InputError(f"--input: {path} does not exist; give an image folder "
                     "or file, local or gs://")
  if not tf.io.gfile.isdir(path):
    return [Entry(path, "", input_folder.is_local(path))]
  # input_folder's walk: no symlink loops, names that aren't UTF-8 named.
  entries = [Entry(posixpath.join(path, listed.path), listed.problem,
                   listed.check)
             for listed in input_folder.list_files(path, "")]
  if not entries:
    raise InputError(f"--input: {path} holds no files; give a folder of "
                     "images")
  return entries


def check_output(output: str, entries: List[Entry]) -> None:
  """Raises InputError for an --output the job would destroy: Beam's final
  rename replaces a folder, or an input file, of that name."""
  if tf.io.gfile.isdir(output):
    raise InputError(f"--output: {output} is a folder; give a file name, e.g. "
                     f"{posixpath.join(output, 'predictions.jsonl')}")
  def same(path):
    return os.path.abspath(path) if input_folder.is_local(path) else path
  if same(output) in {same(e.file) for e in entries}:
    raise InputError(f"--output: {output} is one of the --input files; give "
                     "another file name")


def _prepare(entry: Entry, limit: int):
  """(file, what the model is sent or None, error)."""
  problem = entry.problem
  if not problem and entry.check:
    # "/" as the base: a link may lead anywhere (the user's own files); only
    # dangling links and special files (a FIFO would block the read) fail.
    try:
      input_folder.check_local_file(entry.file, "/")
    except ValueError as e:
      problem = str(e)
  if problem:
    return entry.file, None, problem
  image, error = predict.prepare(entry.file, limit)
  return entry.file, image, error


class ServingImages(base.ModelHandler):
  """RunInference's handler for the `serving_images` signature: a batch of
  prepared images (ingest.Ingested) in, one result dict each out."""

  def __init__(self, model_dir: str, trust: bool, top: int, batch_size: int):
    super().__init__()
    self._model_dir, self._trust = model_dir, trust
    self._top, self._batch_size = top, batch_size

  def load_model(self):
    # predict.load checks the graph before loading, on every worker too: the
    # folder may have changed since the launcher checked it.
    return predict.load(self._model_dir, self._trust)[1]

  def run_inference(self, batch, model, inference_args=None):
    return predict.answer(model, list(batch), self._top)

  def get_num_bytes(self, batch) -> int:
    return sum(len(image.encoded) for image in batch)

  def batch_elements_kwargs(self):
    return {"max_batch_size": self._batch_size}


def _line(keyed) -> str:
  file, result = keyed
  # json.dumps escapes control and non-ASCII characters.
  return json.dumps({"file": file, **result})


def build(p, entries: List[Entry], handler: ServingImages, limit: int,
          output: str) -> None:
  """The job on pipeline `p`: one line per entry into the file `output`."""
  prepared = (p | "List" >> beam.Create(entries)
              | "Spread" >> beam.Reshuffle()
              | "Prepare" >> beam.Map(_prepare, limit))
  sendable, refused = prepared | "Sendable" >> beam.Partition(
      lambda item, _: 0 if item[1] is not None else 1, 2)
  answered = (sendable | "Keyed" >> beam.MapTuple(lambda f, image, _: (f, image))
              | "Answer" >> base.RunInference(base.KeyedModelHandler(handler)))
  errors = refused | "Errors" >> beam.MapTuple(
      lambda f, _, error: (f, {"error": error}))
  _ = ((answered, errors) | beam.Flatten() | "Line" >> beam.Map(_line)
       | "Write" >> beam.io.WriteToText(output, shard_name_template="",
                                        num_shards=1))


def count(output: str):
  """(lines, lines with an error) of a written predictions file."""
  lines = errors = 0
  with tf.io.gfile.GFile(output) as f:
    for line in f:
      lines += 1
      errors += "error" in json.loads(line)
  return lines, errors


def main(args, beam_args: List[str]) -> int:
  """Runs the job; 1 if any file got an error line, 2 if the model,
  --input or --output can't be used (checked before the job starts)."""
  try:
    model_dir, model = predict.load(args.model, args.trust_model)
    limit = predict.max_pixels(model)
    del model  # each worker loads its own
    entries = list_inputs(args.input)
    check_output(args.output, entries)
  except (predict.ModelError, InputError) as e:
    print(f"resizer-pipeline: error: {escape(e)}", file=sys.stderr)
    return 2
  handler = ServingImages(model_dir, args.trust_model, args.top,
                          args.batch_size)
  # Beam relays its workers' start-up warnings; a failed job still raises.
  logging.getLogger("apache_beam").setLevel(logging.ERROR)
  with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
    build(p, entries, handler, limit, args.output)
  lines, errors = count(args.output)
  print(f"model: {escape(model_dir)}\n{escape(args.output)}: {lines} files, "
        f"{lines - errors} answered, {errors} with an error", file=sys.stderr)
  return 1 if errors else 0
