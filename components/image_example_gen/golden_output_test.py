"""ImageExampleGen's output bytes stay as they were: every file it writes
(the split .gz files, rejected.jsonl, summary.json) on small generated
datasets (a flat folder, the split layout, a labels CSV, each with rejects).

Paths are relative (the test runs in its tmp folder) so that no reason names
the tmp folder; each input split fits one chunk (FILES_PER_ELEMENT) and the
decode pool has a fixed size, so the gzip members of a split come in one
order whatever the machine.
"""
import hashlib
import os
import shutil

import pytest

from components.image_example_gen import decode_transform
from testing.bad_inputs import encode, exif, picture
from testing.helpers import jpeg_bytes, run_example_gen, tiny_dataset

# sha256 of each output file, relative to the run's output folder, as the
# code at commit 5bef9da (before ImageExampleGen was split into layers)
# writes them.
GOLDEN = {
    "flat": {
        "examples/Split-eval/data_tfrecord-00000-of-00001.gz":
            "7a58c6cdc419a1fa008908238c0acaca0dac9458b8fcdb9169d598fae02d9ed2",
        "examples/Split-train/data_tfrecord-00000-of-00001.gz":
            "6324744011abcf1ae2323b396b11e29abef047cb276faefec26d9b86010030e0",
        "report/rejected.jsonl":
            "00c2dc07b366925b26f2c69876bc0e24b80c79874378be7ef95a5713dfa77bbe",
        "report/summary.json":
            "31ae980ec34c32d8633bde36e4b85542a356e332e97f145002c18ce1d2c5b5d9",
    },
    "splits": {
        "examples/Split-eval/data_tfrecord-00000-of-00001.gz":
            "89ec2940fffe0af0aef9cdbf23c0c45ceb0dfc54767922d15b49a0a2161e5832",
        "examples/Split-train/data_tfrecord-00000-of-00001.gz":
            "5e626d0b0637a7057c17be37fe4bf17c476bfe66ef00ca1ab33786e3e6e8e123",
        "report/rejected.jsonl":
            "a66cdf6cf7caa487ed070a741604db7cc50cb15e9fb4f1577c04ba48744d753d",
        "report/summary.json":
            "59cdfe3b18efabf04a3a737c4f7b8516af4d08181636d6b4f8b3a4ebf0c5312a",
    },
    "csv_labels": {
        "examples/Split-eval/data_tfrecord-00000-of-00001.gz":
            "659f64f3a9493890c600cc394a242bf3558603bd24067848e27f441df0ad7bac",
        "examples/Split-train/data_tfrecord-00000-of-00001.gz":
            "c8590c244bd6ce02745898934a3a6075c2e2a9baea7f7f867e840fa6e3f52859",
        "report/rejected.jsonl":
            "117aca1c15e333b63cc0dfe2cd4fc114aaf73f74b6869eb1e527faed78f44f61",
        "report/summary.json":
            "04b99d81a0644e60e738bbf4147edbbbbe2be97b8b2272e7728219682cccc38c",
    },
}


def _rejects(folder, good):
  """A truncated, an empty and a non-image file in class folders."""
  (folder / "horizontal" / "truncated.jpg").write_bytes(good[:300])
  (folder / "checker" / "empty.jpg").write_bytes(b"")
  (folder / "vertical" / "notes.jpg").write_text("not an image")


def flat(root):
  data = root / "flat"
  tiny_dataset(data, per_class=5, size=32, seed=5)
  good = (data / "horizontal" / "0000.jpg").read_bytes()
  _rejects(data, good)
  (data / "checker" / "dup.jpg").write_bytes(good)  # a duplicate
  (data / "stray.jpg").write_bytes(good)             # not in a class folder
  (data / "vertical" / ".hidden.jpg").write_bytes(good)
  (data / "checker" / "rotated.jpg").write_bytes(
      encode(picture(), "JPEG", exif=exif(6)))       # normalised
  (data / "vertical" / "photo.webp").write_bytes(
      encode(picture(), "WEBP", lossless=True))      # converted
  return data, None


def splits(root):
  data = root / "splits"
  tiny_dataset(data / "train", per_class=4, size=32, seed=6)
  tiny_dataset(data / "validation", per_class=2, size=32, seed=7)
  tiny_dataset(data / "eval", per_class=1, size=32, seed=8)  # not read
  good = (data / "train" / "checker" / "0000.jpg").read_bytes()
  _rejects(data / "train", good)
  (data / "test").mkdir()
  (data / "test" / "x.jpg").write_bytes(good)
  (data / "README.txt").write_text("about these photos")
  return data, None


def csv_labels(root):
  data = root / "csv"
  data.mkdir()
  for i in range(13):
    (data / f"img{i:02d}.jpg").write_bytes(
        jpeg_bytes(color=(20 * i, 255 - 20 * i, 90)))
  (data / "sub").mkdir()
  (data / "sub" / "norow.jpg").write_bytes(jpeg_bytes())
  (data / "bad.jpg").write_text("not an image")
  labels = root / "labels.csv"
  rows = [f"img{i:02d}.jpg,{('cat', 'dog')[i % 2]},"
          f"{('train', 'eval', '')[i % 3]}" for i in range(12)]
  rows += ["bad.jpg,cat,train",          # not an image
           "img00.jpg,dog,eval",         # a duplicate row
           "missing.jpg,cat,train",      # no such file
           "img12.jpg,cat,test"]         # an unknown split
  labels.write_text("image,label,split\n" + "\n".join(rows) + "\n")
  return data, labels


def run(data, labels, out):
  """Runs the executor from the tmp folder on relative paths; returns
  {output file: sha256}."""
  run_example_gen(data, out, layout="flat" if labels else "auto",
                  labels=labels)
  digests = {}
  for folder, _, names in os.walk(out):
    for name in names:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        digests[os.path.relpath(path, out)] = hashlib.sha256(
            f.read()).hexdigest()
  return digests


@pytest.mark.parametrize("dataset", [flat, splits, csv_labels])
def test_output_bytes_are_unchanged(dataset, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(decode_transform, "decode_threads", lambda: 2)
  data, labels = dataset(tmp_path)
  data = data.relative_to(tmp_path)
  labels = labels and labels.relative_to(tmp_path)
  digests = run(data, labels, tmp_path / "out")
  assert digests == GOLDEN[dataset.__name__]
  # Run to run too: a second run writes the same bytes.
  shutil.rmtree(tmp_path / "out")
  assert run(data, labels, tmp_path / "out") == digests
