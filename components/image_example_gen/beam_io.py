"""ImageExampleGen's output on Beam: TFRecords framed in the decode threads,
wrapped in stored (level 0) gzip members, and a sink that only appends them.
"""
import gzip
import io
import posixpath
import struct
from typing import List, Sequence

import apache_beam as beam
from apache_beam.io import filebasedsink, filesystem, iobase

from components import tfx_internals

# Without python-snappy, Beam's TFRecord framing computes crc32c with crcmod,
# which is slow for photos; google-crc32c (C, SSE4.2; in the pinned set
# through google-cloud-storage) is much faster, and its pure-Python fallback
# would be slower than crcmod.
try:
  import google_crc32c  # pylint: disable=g-import-not-at-top
  _CRC32C = google_crc32c.value if google_crc32c.implementation == "c" else None
except ImportError:
  _CRC32C = None


def tfrecord(value: bytes) -> bytes:
  """`value` framed as one TFRecord (length, crc, data, crc), as Beam and TF
  write it (Beam's only switch to a faster crc32c is a process-wide global)."""
  if _CRC32C is None:
    buf = io.BytesIO()
    tfx_internals.write_tfrecord(buf, value)
    return buf.getvalue()
  masked = tfx_internals.masked_crc32c
  length = struct.pack("<Q", len(value))
  return b"".join([
      length, struct.pack("<I", masked(length, crc32c_fn=_CRC32C)),
      value, struct.pack("<I", masked(value, crc32c_fn=_CRC32C))])


def stored_gzip_member(framed: Sequence[bytes]) -> bytes:
  """One gzip member at level 0 ("stored") holding `framed` (TFRecords)."""
  return gzip.compress(b"".join(framed), compresslevel=0, mtime=0)


# What a split's file holds when no record reaches it, so that it is still
# gzip. Only then: tf.data stops reading a file at an empty member.
_EMPTY_MEMBER = stored_gzip_member([])


class _Appended:
  """A sink's open file, and whether anything was appended (not every
  filesystem's files can tell())."""

  def __init__(self, file_handle):
    self.file_handle = file_handle
    self.written = False


class StoredGzipTFRecordSink(filebasedsink.FileBasedSink):
  """TFRecords in gzip at level 0 ("stored"), as files named *.gz.

  TFX's WriteSplit deflates at zlib's default level 6: JPEG and PNG bytes
  barely shrink, and deflating them was a large share of the executor's
  per-image CPU. Level 0 is still the gzip that every TFX reader expects of
  `tfrecords_gzip` (they pick the codec from the .gz suffix), at a fraction
  of the cost. The decode threads hand over finished gzip members
  (decode_transform.py), so this sink only appends them; sharding, temp
  files and the final rename stay Beam's.
  """

  def __init__(self, file_path_prefix: str):
    super().__init__(file_path_prefix, coder=beam.coders.BytesCoder(),
                     file_name_suffix=".gz", num_shards=0,
                     shard_name_template=None,
                     compression_type=filesystem.CompressionTypes.UNCOMPRESSED)

  def open(self, temp_path):
    return _Appended(super().open(temp_path))

  def write_record(self, file_handle: _Appended, value: List[bytes]):
    for member in value:  # a chunk's gzip members, not empty
      file_handle.file_handle.write(member)
    file_handle.written = file_handle.written or bool(value)

  def close(self, file_handle: _Appended):
    if not file_handle.written:
      file_handle.file_handle.write(_EMPTY_MEMBER)
    super().close(file_handle.file_handle)


@beam.ptransform_fn
def WriteStoredSplit(batches: beam.pvalue.PCollection,
                     split_uri: str) -> beam.pvalue.PDone:
  """Lists of gzip members -> the split's data_tfrecord-*.gz files."""
  # No Reshuffle before writing (TFX's WriteSplit has one): files were already
  # spread over workers before decoding, and the Trainer shuffles examples.
  return batches | "Write" >> iobase.Write(StoredGzipTFRecordSink(
      posixpath.join(split_uri, "data_tfrecord")))
