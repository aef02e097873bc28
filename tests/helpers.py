"""Test helpers shared by tests/ and components/*/ tests."""
import contextlib
import glob
import io
import os
import socket
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pipeline.demo_data import write_demo_data


def tiny_dataset(path, per_class=8, classes=3, size=64, seed=0):
  """A few dozen 64 px demo images; returns the number written."""
  return write_demo_data(str(path), per_class=per_class, size=size,
                         classes=classes, seed=seed)


def jpeg_bytes(size=(40, 30), color=(200, 30, 30)):
  buf = io.BytesIO()
  Image.fromarray(np.full((size[1], size[0], 3), color, np.uint8)).save(
      buf, format="JPEG")
  return buf.getvalue()


def png_bomb(width=100_000, height=100_000):
  """A tiny PNG whose header declares a huge image (a decompression bomb)."""
  buf = io.BytesIO()
  Image.new("RGB", (1, 1)).save(buf, format="PNG")
  data = bytearray(buf.getvalue())
  ihdr = data.index(b"IHDR")
  data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
  crc = zlib.crc32(bytes(data[ihdr:ihdr + 17]))
  data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
  return bytes(data)


def read_examples(split_dir):
  """All tf.Examples in an ExampleGen split folder (gzipped TFRecords)."""
  files = sorted(glob.glob(os.path.join(split_dir, "*.gz")))
  examples = []
  for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
    examples.append(tf.train.Example.FromString(record.numpy()))
  return examples


def feature(example, name):
  f = example.features.feature[name]
  return f.bytes_list.value[0] if f.HasField("bytes_list") else \
      f.int64_list.value[0]


@contextlib.contextmanager
def no_network():
  """Refuses every connection or name lookup inside; yields the hosts tried."""
  attempts = []

  def refuse(host):
    attempts.append(host)
    raise OSError("network access in an offline test")

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(socket.socket, "connect", lambda self, address: refuse(
        address[0] if isinstance(address, tuple) else address))
    mp.setattr(socket, "create_connection",
               lambda address, *a, **kw: refuse(address[0]))
    mp.setattr(socket, "getaddrinfo", lambda host, *a, **kw: refuse(host))
    yield attempts
