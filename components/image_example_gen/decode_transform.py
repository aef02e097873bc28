"""ImageExampleGen's Beam transform: the listed files of every input split,
in chunks, decoded on a thread pool (ingest.FileIngester) into gzip members
of each output split's TFRecords (beam_io.py) and JSON outcome lines.
"""
import collections
import concurrent.futures
import itertools
import json
import os
import posixpath
from typing import Any, Deque, Dict, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
import tensorflow as tf
from tfx.proto import example_gen_pb2

from components import tfx_internals
from components.image_example_gen import beam_io, input_folder, report
from components.image_example_gen.ingest import (CsvLabels, FileIngester,
                                                 InputSplit)

# Beam's per-element cost is paid per chunk; small enough that a chunk of
# large photos in flight (two per worker) stays well under a GB.
FILES_PER_ELEMENT = 32


def decode_threads() -> int:
  """Cores this process may use: one decode thread each."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


class HashSplit:
  """An example's output split under a hash SplitConfig: TFX's own hash split
  function (on features.IMAGE), as its GenerateExamplesByBeam applies it, so
  each file gets the split TFX would give it."""

  def __init__(self, split_config: example_gen_pb2.SplitConfig):
    self._config = split_config
    self._names = [s.name for s in split_config.splits]
    self._buckets = list(itertools.accumulate(
        s.hash_buckets for s in split_config.splits))

  def __call__(self, example: tf.train.Example) -> str:
    return self._names[tfx_internals.partition_fn(
        example, len(self._buckets), self._buckets, self._config)]


def _split_tag(name: str) -> str:
  return f"split:{name}"  # apart from OUTCOMES, whatever the split is called


class _DecodeFn(beam.DoFn):
  """(input split, chunk of its listed files) -> per output split, a list of
  gzip members of their TFRecords, and a list of JSON outcome lines.

  Files are decoded on a thread pool: PIL, zlib, hashlib and file reads
  release the GIL, so one Beam worker (the in_memory default: one process)
  uses every core. The pool threads also frame each split's records and
  wrap them in a stored gzip member, so Beam's own thread only appends
  finished bytes to the split's file (readers take a file of concatenated
  members as one stream). One chunk decodes while the previous chunk's
  results go downstream, and Beam handles a chunk, not each file, so its
  per-element cost is paid once per FILES_PER_ELEMENT files. Each chunk's
  outputs carry its own timestamp and window, and chunking changes no
  record: the same examples, splits and outcomes as one file at a time.
  Every input split goes through the same pool, so a run fills and drains
  it once.
  """

  OUTCOMES = "outcomes"

  def __init__(self, ingester: FileIngester):
    self._ingester = ingester
    self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
    self._threads = 1
    self._pending: Deque[Tuple[List[concurrent.futures.Future], Any, Any]] = (
        collections.deque())

  def setup(self):
    self._ingester.open()
    self._threads = decode_threads()
    self._pool = concurrent.futures.ThreadPoolExecutor(
        self._threads, thread_name_prefix="decode")

  def start_bundle(self):
    self._pending = collections.deque()

  def process(self, element: Tuple[int, List[input_folder.Listed]],
              timestamp=beam.DoFn.TimestampParam,
              window=beam.DoFn.WindowParam) -> Iterator[Any]:
    assert self._pool is not None
    index, chunk = element  # index into the ingester's inputs
    # One task per thread, not per file: each hand-off to the pool and
    # back costs more CPU than the GIL-held part of a small photo's decode.
    share = -(-len(chunk) // self._threads)
    self._pending.append(([self._pool.submit(self.decode_all, index,
                                             chunk[i:i + share])
                           for i in range(0, len(chunk), share)],
                          timestamp, window))
    # Keep the newest chunk decoding while this thread hands on the older.
    while len(self._pending) > 1:
      yield from self._emit(*self._pending.popleft())

  def finish_bundle(self) -> Iterator[Any]:
    while self._pending:  # a bundle ends only when all its files are out
      yield from self._emit(*self._pending.popleft())

  def teardown(self):
    if self._pool is not None:
      self._pool.shutdown(wait=True, cancel_futures=True)
      self._pool = None

  def _emit(self, futures, timestamp, window) -> Iterator[Any]:
    outcomes, members = [], collections.defaultdict(list)
    for future in futures:  # in chunk order
      lines, task_members = future.result()  # re-raises a bug
      outcomes.append(lines)
      for split, member in task_members.items():
        members[split].append(member)
    yield beam.pvalue.TaggedOutput(self.OUTCOMES, tfx_internals.WindowedValue(
        outcomes, timestamp, (window,)))
    for split, batch in members.items():
      yield beam.pvalue.TaggedOutput(_split_tag(split),
                                     tfx_internals.WindowedValue(
                                         batch, timestamp, (window,)))

  def decode_all(self, index: int, listed: Sequence[input_folder.Listed]
                 ) -> Tuple[str, Dict[str, bytes]]:
    """One pool task: (JSON outcome lines, split -> gzip member of its
    TFRecords)."""
    lines, framed = [], collections.defaultdict(list)
    for one in listed:
      outcome, split, record = self._ingester.ingest(index, one)
      lines.append(json.dumps(outcome, sort_keys=True))
      if record is not None:
        framed[split].append(beam_io.tfrecord(record))
    return "\n".join(lines), {
        split: beam_io.stored_gzip_member(records)
        for split, records in framed.items()}


def _listed_chunks(_, input_base: str, roots: Sequence[str], size: int
                   ) -> Iterator[Tuple[int, List[input_folder.Listed]]]:
  # Listed when the pipeline runs, not when it is built: a list in the
  # graph would be pickled and bz2-compressed with it.
  for index, root in enumerate(roots):
    files = input_folder.list_files(input_base, root)
    for i in range(0, len(files), size):
      yield index, files[i:i + size]


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
def DecodeSplits(pipeline: beam.Pipeline, input_base: str,
                 inputs: Sequence[InputSplit], output_names: Sequence[str],
                 max_pixels: int, report_dir: str,
                 split_config: Optional[example_gen_pb2.SplitConfig] = None,
                 labels: Optional[CsvLabels] = None
                 ) -> Dict[str, beam.pvalue.PCollection]:
  """Output split name -> lists of gzip members, for the files of every
  input (its split root and output split, or one root hash split by
  split_config); their outcome lines go to report_dir's OUTCOMES_DIR."""
  ingester = FileIngester(input_base, inputs, max_pixels, labels,
                          HashSplit(split_config) if split_config else None)
  results = (
      pipeline
      | "Start" >> beam.Impulse()
      | "ListFiles" >> beam.FlatMap(_listed_chunks, input_base,
                                    [root for root, _ in inputs],
                                    FILES_PER_ELEMENT)
      | "Distribute" >> beam.Reshuffle()
      | "Decode" >> beam.ParDo(_DecodeFn(ingester)).with_outputs(
          _DecodeFn.OUTCOMES, *map(_split_tag, output_names)))
  _ = (results[_DecodeFn.OUTCOMES]
       # One text element per chunk: a JSON line per file.
       | "OutcomeToJson" >> beam.Map("\n".join)
       | "WriteOutcomes" >> beam.io.WriteToText(
           posixpath.join(report_dir, report.OUTCOMES_DIR, "outcomes")))
  return {name: results[_split_tag(name)] for name in output_names}
