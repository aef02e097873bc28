"""The ingest library alone: no Beam, no TFX, one file at a time."""
import tensorflow as tf

from components.image_example_gen import input_folder
from components.image_example_gen.ingest import FileIngester
from testing.helpers import jpeg_bytes, python_in_fresh_process
from trainer import features

def test_the_library_imports_neither_beam_nor_tfx():
  code = (
      "import sys\n"
      "for name in ('apache_beam', 'tfx', 'tfx_bsl'):\n"
      "  sys.modules[name] = None  # importing it raises ImportError\n"
      "from components.image_example_gen import ingest, report\n"
      "print(ingest.FileIngester.__name__, report.summarize.__name__)\n")
  run = python_in_fresh_process(code)
  assert run.returncode == 0, run.stderr[-2000:]
  assert run.stdout.split()[-2:] == ["FileIngester", "summarize"]


def test_file_ingester_labels_rejects_and_splits_each_file(tmp_path):
  data = tmp_path / "data"
  (data / "cat").mkdir(parents=True)
  (data / "cat" / "a.jpg").write_bytes(jpeg_bytes())
  (data / "cat" / "b.jpg").write_bytes(b"not an image")
  (data / "loose.jpg").write_bytes(jpeg_bytes())
  hashed = []

  def hash_split(example):
    hashed.append(example.features.feature[features.FILENAME]
                  .bytes_list.value[0])
    return "eval"

  ingester = FileIngester(str(data), [("", None)], 10_000, None, hash_split)
  ingester.open()
  got = {listed.path: ingester.ingest(0, listed)
         for listed in input_folder.list_files(str(data), "")}
  outcome, split, record = got["cat/a.jpg"]
  assert (outcome["status"], outcome["class"], split) == (
      "ingested", "cat", "eval")
  assert outcome["split"] == "eval" and outcome["normalized"] == ""
  example = tf.train.Example.FromString(record)
  assert example.features.feature[features.IMAGE].bytes_list.value[0] == \
      jpeg_bytes()
  assert hashed == [b"cat/a.jpg"]  # only ingested files are hash split
  outcome, split, record = got["cat/b.jpg"]
  assert (outcome["status"], split, record) == ("rejected", "", None)
  assert outcome["reason"].startswith("cannot decode image")
  outcome, _, record = got["loose.jpg"]
  assert record is None and outcome["class"] is None
  assert "not inside a class folder" in outcome["reason"]


def test_an_input_split_keeps_its_files_in_its_output_split(tmp_path):
  data = tmp_path / "data"
  (data / "validation" / "dog").mkdir(parents=True)
  (data / "validation" / "dog" / "x.jpg").write_bytes(jpeg_bytes())
  ingester = FileIngester(str(data), [("train", "train"),
                                      ("validation", "eval")], 10_000)
  ingester.open()
  (listed,) = input_folder.list_files(str(data), "validation")
  outcome, split, _ = ingester.ingest(1, listed)
  assert (outcome["split_root"], outcome["class"], split) == (
      "validation", "dog", "eval")
