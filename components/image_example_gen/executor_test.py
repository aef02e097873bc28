"""ImageExampleGen executor: splits, determinism, rejections, accounting."""
import glob
import gzip
import io
import os
import subprocess
import sys
import threading
import time

import apache_beam as beam
from apache_beam.testing import util as beam_testing
import pytest
from PIL import Image
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.components.util import examples_utils, tfxio_utils
from tfx.proto import example_gen_pb2
from tfx_bsl.tfxio import dataset_options

from components import tfx_internals
from components.image_example_gen import input_folder
from components.image_example_gen import beam_io, decode_transform, ingest
from components.image_example_gen.component import (ImageExampleGen,
                                                    ImageInputProcessor)
from components.image_example_gen.ingest import inspect_image
from components.image_example_gen.report import DatasetError, check_dataset
from components.result import recorded
from pipeline.data_layout import example_gen_configs
from testing.bad_inputs import write_bad_inputs
from testing.helpers import (feature, jpeg_bytes, png_bomb, run_example_gen,
                             tiny_dataset)
from trainer import features


def filenames(examples):
  return sorted(feature(e, features.FILENAME).decode() for e in examples)


def test_flat_folder_is_hash_split_deterministically(tmp_path):
  n = tiny_dataset(tmp_path / "data", per_class=10)
  first, summary, rejected, report, _ = run_example_gen(tmp_path / "data",
                                                        tmp_path / "a")
  second, *_ = run_example_gen(tmp_path / "data", tmp_path / "b")
  assert len(first["train"]) + len(first["eval"]) == n == 30
  assert first["train"] and first["eval"]
  for split in ("train", "eval"):
    assert filenames(first[split]) == filenames(second[split])
  assert summary["seen"] == summary["ingested"] == n and rejected == []
  assert summary["splits"] == {"train": len(first["train"]),
                               "eval": len(first["eval"])}
  assert report.get_int_custom_property("ingested") == n


def test_examples_hold_original_bytes_and_image_facts(tmp_path):
  tiny_dataset(tmp_path / "data", per_class=3, size=64)
  splits, *_ = run_example_gen(tmp_path / "data", tmp_path / "o")
  example = (splits["train"] + splits["eval"])[0]
  path = feature(example, features.FILENAME).decode()
  with open(tmp_path / "data" / path, "rb") as f:
    assert feature(example, features.IMAGE) == f.read()
  assert feature(example, features.LABEL).decode() == path.split("/")[0]
  assert feature(example, features.HEIGHT) == feature(example,
                                                      features.WIDTH) == 64
  assert feature(example, features.FORMAT) in (b"jpeg", b"png")


def test_existing_train_validation_split_is_kept(tmp_path):
  tiny_dataset(tmp_path / "data" / "train", per_class=4, seed=1)
  tiny_dataset(tmp_path / "data" / "validation", per_class=2, seed=2)
  splits, summary, *_ = run_example_gen(tmp_path / "data", tmp_path / "o")
  assert len(splits["train"]) == 12 and len(splits["eval"]) == 6
  assert all(f.startswith("train/") for f in filenames(splits["train"]))
  assert all(f.startswith("validation/") for f in filenames(splits["eval"]))
  assert summary["splits"] == {"train": 12, "eval": 6}


def test_split_layout_lists_every_file_outside_the_splits(tmp_path):
  data = tmp_path / "data"
  tiny_dataset(data / "train", per_class=4, seed=1)        # 12, read
  tiny_dataset(data / "validation", per_class=2, seed=2)   # 6, read
  tiny_dataset(data / "eval", per_class=1, seed=3)         # 3, not read
  tiny_dataset(data / "test", per_class=2, seed=4)         # 6, not read
  (data / "extras" / "deep").mkdir(parents=True)
  (data / "extras" / "deep" / "x.jpg").write_bytes(
      (data / "train" / "checker" / "0000.jpg").read_bytes())
  (data / "README.txt").write_text("about these photos")
  (data / ".DS_Store").write_bytes(b"\0")
  on_disk = sorted(os.path.relpath(os.path.join(d, f), data)
                   for d, _, names in os.walk(data) for f in names)
  # Listed as itself, not walked (os.walk above does not follow it either).
  tiny_dataset(tmp_path / "elsewhere", per_class=2)
  os.symlink(tmp_path / "elsewhere", data / "more")
  on_disk = sorted(on_disk + ["more"])
  splits, summary, rejected, report, _ = run_example_gen(data, tmp_path / "o")
  assert len(splits["train"]) == 12 and len(splits["eval"]) == 6
  assert all(f.startswith("validation/") for f in filenames(splits["eval"]))
  reasons = {r["path"]: r["reason"] for r in rejected}
  assert sorted(reasons) == [p for p in on_disk
                             if not p.startswith(("train/", "validation/"))]
  assert len(reasons) == 3 + 6 + 3 + 1
  assert reasons["eval/checker/0000.jpg"] == (
      "eval/ is not read: validation/ is the eval split (validation/ is "
      "preferred to eval/ when both exist); merge eval/ into validation/ to "
      "use it")
  assert reasons["test/vertical/0001.jpg"] == (
      "test/ is not a split folder this run reads (train/ (train), "
      "validation/ (eval)); move its images into one of them to use them")
  assert reasons["extras/deep/x.jpg"].startswith("extras/ is not a split")
  assert reasons["README.txt"].startswith("loose file at the top")
  assert reasons[".DS_Store"].startswith("hidden file")
  assert reasons["more"] == (f"symlinked folder to {tmp_path}/elsewhere, "
                             "outside the data folder, not read; copy its "
                             "files in")
  assert summary["seen"] == len(on_disk) == 18 + len(reasons)
  assert summary["seen"] == summary["ingested"] + summary["rejected"]
  assert report.get_int_custom_property("rejected") == 13
  # The step's result, as the progress line prints it.
  assert recorded(report) == "18 ingested, 13 rejected (12 train, 6 eval)"
  assert summary["not_read"] == {"": 3, "eval": 3, "extras": 1, "test": 6}
  # Only the read splits' class folders count as classes.
  assert sorted(summary["classes"]) == [
      f"{s}/{c}" for s in ("train", "validation")
      for c in ("checker", "horizontal", "vertical")]


def input_fingerprint(data, input_config) -> str:
  """What ImageInputProcessor gives the driver as `data`'s fingerprint."""
  processor = ImageInputProcessor(str(data), input_config.splits)
  processor.resolve_span_and_version()
  return processor.get_input_fingerprint(0, None)


def test_fingerprint_sees_files_outside_the_splits(tmp_path):
  data = tmp_path / "data"
  tiny_dataset(data / "train", per_class=2, seed=1)
  tiny_dataset(data / "validation", per_class=1, seed=2)
  input_config, _ = example_gen_configs(str(data))

  before = input_fingerprint(data, input_config)
  # Listed as rejected, so the cached report would be stale without a rerun.
  (data / "test").mkdir()
  (data / "test" / "new.jpg").write_bytes(b"x")
  assert input_fingerprint(data, input_config) != before


def test_corrupt_and_non_image_files_are_rejected_with_reasons(tmp_path):
  n = tiny_dataset(tmp_path / "data", per_class=4)
  good = tmp_path / "data" / "horizontal" / "0000.jpg"
  (tmp_path / "data" / "horizontal" / "truncated.jpg").write_bytes(
      good.read_bytes()[:300])
  (tmp_path / "data" / "vertical" / "notes.jpg").write_text("not an image")
  (tmp_path / "data" / "stray.jpg").write_bytes(good.read_bytes())
  splits, summary, rejected, *_ = run_example_gen(tmp_path / "data",
                                                  tmp_path / "o")
  reasons = {r["path"]: r["reason"] for r in rejected}
  assert set(reasons) == {"horizontal/truncated.jpg", "vertical/notes.jpg",
                          "stray.jpg"}
  assert "cannot decode" in reasons["horizontal/truncated.jpg"]
  assert "cannot decode" in reasons["vertical/notes.jpg"]
  assert "not inside a class folder" in reasons["stray.jpg"]
  ingested = len(splits["train"]) + len(splits["eval"])
  assert ingested == n and summary["rejected"] == 3
  assert summary["seen"] == ingested + len(rejected) == n + 3


def test_pixel_limit_refuses_a_decompression_bomb_before_decoding(tmp_path):
  n = tiny_dataset(tmp_path / "data", per_class=2, size=64)
  # Decoding 100000 x 100000 RGB would need 30 GB: refusing it proves the
  # limit is checked on the header, before any decode.
  (tmp_path / "data" / "checker" / "bomb.png").write_bytes(png_bomb())
  splits, summary, rejected, *_ = run_example_gen(tmp_path / "data",
                                                  tmp_path / "o",
                                                  max_pixels=10_000_000)
  assert [r["path"] for r in rejected] == ["checker/bomb.png"]
  assert "max_pixels limit 10000000" in rejected[0]["reason"]
  assert len(splits["train"]) + len(splits["eval"]) == n


@pytest.mark.parametrize("side, declared", [
    # Under PIL's own limit (89.5M pixels): max_pixels refuses it.
    (8000, "8000x8000 = 64000000 pixels"),
    # Over 2x PIL's limit: PIL refuses it first; the reason still names ours.
    (100_000, "Image size (10000000000 pixels)"),
])
def test_pixel_limit_is_checked_per_call_not_process_wide(side, declared):
  pil_limit = Image.MAX_IMAGE_PIXELS
  with pytest.raises(ValueError) as refused:
    inspect_image(png_bomb(side, side), 40_000_000)
  assert str(refused.value).startswith(
      f"{declared} is above the max_pixels limit 40000000")
  if side == 8000:
    # A higher limit in the next call passes the header; the bomb has no
    # pixel data, so decoding fails instead.
    with pytest.raises(ValueError, match="cannot decode image"):
      inspect_image(png_bomb(side, side), 80_000_000)
  assert Image.MAX_IMAGE_PIXELS == pil_limit


def test_importing_the_package_leaves_pil_bomb_limit_alone():
  # A fresh interpreter: this one imported `components` long ago.
  code = ("from PIL import Image; before = Image.MAX_IMAGE_PIXELS; "
          "import components, components.image_example_gen.executor; "
          "print(before, Image.MAX_IMAGE_PIXELS)")
  repo = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  run = subprocess.run([sys.executable, "-c", code], cwd=repo, check=True,
                       capture_output=True, text=True)
  before, after = run.stdout.split()[-2:]
  assert before == after == str(89_478_485)  # PIL's default


def test_max_pixels_above_pil_limit_is_refused_naming_it():
  data_config, _ = example_gen_configs("unused", "flat")
  with pytest.raises(ValueError, match=r"max_pixels 200000000 must be "
                     r"positive and at most 178956970, PIL's own"):
    ImageExampleGen(input_base="unused", input_config=data_config,
                    max_pixels=200_000_000)


def test_single_class_stops_with_the_folder_named(tmp_path):
  tiny_dataset(tmp_path / "data", per_class=3, classes=2)
  for f in (tmp_path / "data" / "vertical").iterdir():
    f.unlink()
  (tmp_path / "data" / "vertical").rmdir()
  with pytest.raises(DatasetError, match="only one class folder"):
    run_example_gen(tmp_path / "data", tmp_path / "o")


def test_class_folder_without_usable_image_stops_the_run(tmp_path):
  tiny_dataset(tmp_path / "data", per_class=3)
  (tmp_path / "data" / "empty_class").mkdir()
  with pytest.raises(DatasetError, match="empty_class"):
    run_example_gen(tmp_path / "data", tmp_path / "o")


def test_splits_are_stored_gzip_that_tfx_readers_take(tmp_path):
  """Level-0 gzip: a valid `tfrecords_gzip` artifact, JPEG bytes not deflated."""
  n = tiny_dataset(tmp_path / "data", per_class=6, size=64)
  splits, _, _, _, examples = run_example_gen(tmp_path / "data",
                                              tmp_path / "o")
  assert examples_utils.get_file_format(examples) == "tfrecords_gzip"
  assert examples_utils.get_payload_format(examples) == (
      example_gen_pb2.FORMAT_TF_EXAMPLE)
  files = glob.glob(os.path.join(examples.uri, "Split-*", "*"))
  assert files and all(f.endswith(".gz") for f in files)
  stored = sum(os.path.getsize(f) for f in files)
  records = 0
  for f in files:
    with open(f, "rb") as fh:
      assert fh.read(2) == b"\x1f\x8b"  # a gzip member
    with gzip.open(f, "rb") as fh:
      records += len(fh.read())
  # Stored blocks: the file is the records plus 5 bytes per 64 KiB and the
  # gzip header/trailer; deflating would have made it smaller.
  assert records <= stored <= records * 1.01 + 64 * len(files)
  # TFX's own reader (what StatisticsGen, Transform and the Trainer use).
  schema = schema_pb2.Schema()
  label = schema.feature.add(name=features.LABEL, type=schema_pb2.BYTES)
  label.shape.dim.add(size=1)
  label.presence.min_fraction = 1.0
  tfxio = tfxio_utils.get_tfxio_factory_from_artifact(
      [examples], ["test"], schema=schema)(
          os.path.join(examples.uri, "Split-train", "*"))
  batches = list(tfxio.TensorFlowDataset(
      dataset_options.TensorFlowDatasetOptions(batch_size=100, num_epochs=1)))
  assert sum(len(b[features.LABEL]) for b in batches) == len(splits["train"])
  assert len(splits["train"]) + len(splits["eval"]) == n


def _messy_data(root):
  data = root / "data"
  tiny_dataset(data / "train", per_class=12, seed=1)
  tiny_dataset(data / "validation", per_class=4, seed=2)
  write_bad_inputs(str(data / "train" / "mixed"), str(root / "outside"),
                   "../checker/0000.jpg")
  (data / "validation" / "mixed").mkdir()
  (data / "validation" / "mixed" / "x.jpg").write_bytes(
      (data / "train" / "mixed" / "photo.webp").read_bytes())
  (data / "test").mkdir()
  (data / "test" / "x.jpg").write_bytes(b"")
  return data


def test_threaded_decode_gives_the_same_output_as_one_thread(tmp_path,
                                                             monkeypatch):
  data = _messy_data(tmp_path)
  runs = {}
  for threads in (1, 4):
    monkeypatch.setattr(decode_transform, "decode_threads", lambda t=threads: t)
    splits, summary, rejected, *_ = run_example_gen(data,
                                                    tmp_path / f"o{threads}")
    runs[threads] = (
        {s: sorted(e.SerializeToString() for e in examples)
         for s, examples in splits.items()}, summary, rejected)
  one, four = runs[1], runs[4]
  # 36 demo + 22 usable corpus files; 12 demo + the WebP
  assert len(one[0]["train"]) == 58 and len(one[0]["eval"]) == 13
  assert four[0] == one[0]  # the same serialized examples in each split
  assert four[1] == one[1]  # the same counts, duplicates and not_read
  # The same rejections: 12 in the corpus, test/x.jpg
  assert four[2] == one[2] and len(one[2]) == 13


def test_decode_runs_files_concurrently_on_the_pool(tmp_path, monkeypatch):
  tiny_dataset(tmp_path / "data", per_class=8, size=32)
  inspect = ingest.inspect_image
  lock = threading.Lock()
  state = {"now": 0, "most": 0, "threads": set()}

  def slow_inspect(data, max_pixels):
    with lock:
      state["now"] += 1
      state["most"] = max(state["most"], state["now"])
      state["threads"].add(threading.current_thread().name)
    time.sleep(0.02)  # a decode long enough for the next to start
    try:
      return inspect(data, max_pixels)
    finally:
      with lock:
        state["now"] -= 1

  monkeypatch.setattr(decode_transform, "decode_threads", lambda: 3)
  monkeypatch.setattr(ingest, "inspect_image", slow_inspect)
  splits, summary, *_ = run_example_gen(tmp_path / "data", tmp_path / "o")
  assert summary["ingested"] == len(splits["train"]) + len(splits["eval"]) == 24
  assert state["most"] == 3
  assert len(state["threads"]) == 3
  assert all(name.startswith("decode") for name in state["threads"])


def test_records_are_framed_as_beam_frames_them():
  """The faster crc32c frames byte for byte what Beam's TFRecord sink does."""
  assert beam_io._CRC32C is not None  # the fast path is what runs
  records = [b"", b"a", os.urandom(23_000), bytes(range(256)) * 300]
  beams = io.BytesIO()
  for record in records:
    tfx_internals.write_tfrecord(beams, record)
  ours = b"".join(beam_io.tfrecord(r) for r in records)
  assert ours == beams.getvalue()
  assert len(ours) == sum(len(r) + 16 for r in records)


def test_chunks_are_gzip_members_every_reader_joins(tmp_path, monkeypatch):
  """Each chunk's records reach the split file as their own gzip member(s):
  tf.data, Beam (TFX's Beam readers) and Python's gzip read the file of
  concatenated members as one stream, in chunk order."""
  monkeypatch.setattr(decode_transform, "FILES_PER_ELEMENT", 3)
  monkeypatch.setattr(decode_transform, "decode_threads", lambda: 2)
  tiny_dataset(tmp_path / "data", per_class=10, size=32)
  splits, summary, _, _, examples = run_example_gen(tmp_path / "data",
                                                    tmp_path / "o")
  (path,) = glob.glob(os.path.join(examples.uri, "Split-train", "*.gz"))
  with open(path, "rb") as f:
    members = f.read().count(b"\x1f\x8b\x08")  # gzip member headers
  assert members >= len(splits["train"]) // 3  # many members, not one
  # tf.data reads every record of every member; Python's gzip joins the
  # members into exactly those records, framed as Beam frames them.
  records = [r.numpy() for r in tf.data.TFRecordDataset(
      path, compression_type="GZIP")]
  assert len(records) == len(splits["train"]) == summary["splits"]["train"]
  with gzip.open(path, "rb") as f:
    assert f.read() == b"".join(map(beam_io.tfrecord, records))
  with beam.Pipeline() as pipeline:
    counted = (pipeline | beam.io.ReadFromTFRecord(path)
               | beam.combiners.Count.Globally())
    beam_testing.assert_that(counted, beam_testing.equal_to(
        [summary["splits"]["train"]]))


def test_split_files_are_gzip_with_no_empty_member(tmp_path):
  """An empty split's file is still gzip; a file with records has no empty
  member, where tf.data would stop reading."""
  sink = beam_io.StoredGzipTFRecordSink(str(tmp_path / "x"))
  empty, full = str(tmp_path / "empty.gz"), str(tmp_path / "full.gz")
  sink.close(sink.open(empty))
  with gzip.open(empty, "rb") as f:
    assert f.read() == b"" and os.path.getsize(empty) > 0
  records = [b"a" * 100, b"b" * 200]
  handle = sink.open(full)
  for record in records:
    sink.write_record(handle, [gzip.compress(
        beam_io.tfrecord(record), compresslevel=0, mtime=0)])
  sink.close(handle)
  assert [r.numpy() for r in tf.data.TFRecordDataset(
      full, compression_type="GZIP")] == records


def test_symlinked_folders_leading_out_are_one_entry_not_walked(tmp_path):
  """A folder symlink that leads out of the data folder is one rejection,
  whatever it holds, and no class; one that stays inside is walked."""
  data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
  tiny_dataset(data, per_class=4, size=32)
  tiny_dataset(elsewhere, per_class=6, size=32, seed=3)
  os.symlink(elsewhere / "checker", data / "checker" / "out")
  os.symlink(data / "horizontal", data / "vertical" / "in")
  os.symlink(elsewhere / "horizontal", data / "linked_class")
  input_config, _ = example_gen_configs(str(data))

  before = input_fingerprint(data, input_config)
  _, summary, rejected, *_ = run_example_gen(data, tmp_path / "o")
  assert rejected == [
      {"path": "checker/out", "reason": f"symlinked folder to {elsewhere}/"
       "checker, outside the data folder, not read; copy its files in"},
      {"path": "linked_class", "reason": f"symlinked folder to {elsewhere}/"
       "horizontal, outside the data folder, not read; copy its files in"}]
  # linked_class is no class: the run trains on the other three.
  assert summary["classes"] == {
      "checker": {"ingested": 4, "rejected": 1},
      "horizontal": {"ingested": 4, "rejected": 0},
      "vertical": {"ingested": 8, "rejected": 0}}
  assert summary["seen"] == 16 + 2 == summary["ingested"] + summary["rejected"]
  # The fingerprint follows the walk: what is not read doesn't count...
  (elsewhere / "checker" / "new.jpg").write_bytes(b"x")
  assert input_fingerprint(data, input_config) == before
  # ...where the link leads does.
  os.remove(data / "checker" / "out")
  os.symlink(elsewhere / "vertical", data / "checker" / "out")
  assert input_fingerprint(data, input_config) != before


def test_a_split_root_symlinked_out_is_one_entry(tmp_path):
  elsewhere = tmp_path / "elsewhere"
  tiny_dataset(elsewhere, per_class=2, size=32)
  (tmp_path / "data").mkdir()
  os.symlink(elsewhere, tmp_path / "data" / "validation")
  assert input_folder.list_files(str(tmp_path / "data"), "validation") == [
      input_folder.Listed(
          "validation", f"symlinked folder to {elsewhere}, outside the data "
          "folder, not read; copy its files in", True)]
  assert input_folder.class_folders(str(tmp_path / "data"), "validation") == []
  assert list(input_folder.walk(str(tmp_path / "data"), "")) == ["validation"]


def test_dataset_errors_print_folder_names_escaped():
  summary = {"ingested": 3, "seen": 4, "splits": {"train": 2, "eval": 1},
             "classes": {"cats": {"ingested": 3, "rejected": 0},
                         "\u202egnp.exe": {"ingested": 0, "rejected": 1}}}
  with pytest.raises(DatasetError) as e:
    check_dataset(summary, "/data\x1b[2J")
  assert str(e.value) == (
      "class folder(s) with no usable image under /data\\x1b[2J: "
      "\\u202egnp.exe. Add images or remove the folder; the rejected output "
      "says why each file was refused.")


def test_csv_rows_label_the_file_their_normalised_path_names(tmp_path):
  data = tmp_path / "data"
  for name in ("a.png", "i.png", "..j.png", "c.png", "d.png", "e.png",
               "sub/x.png"):
    (data / name).parent.mkdir(parents=True, exist_ok=True)
    (data / name).write_bytes(jpeg_bytes(color=(len(name) * 20, 0, 0)))
  labels = tmp_path / "labels.csv"
  labels.write_text(
      "image,label,split\n"
      "./a.png,cat,train\n"           # 2: a.png
      "sub/../i.png,dog,train\n"      # 3: i.png
      "..j.png,cat,eval\n"            # 4: a legal name, kept
      "c.png,dog,eval\n"              # 5
      "a.png,dog,eval\n"              # 6: a duplicate of row 2
      "../../etc/passwd,cat,train\n"  # 7
      "/abs/x.png,cat,train\n"        # 8
      "gs://b/x.png,cat,train\n"      # 9
      "sub\\x.png,cat,train\n"        # 10
      "d.png,\"do\ng\",train\n"       # 11
      "e.png,.,train\n")              # 12
  splits, summary, rejected, *_ = run_example_gen(data, tmp_path / "o",
                                                  layout="flat", labels=labels)
  assert {s: {feature(e, features.FILENAME).decode():
              feature(e, features.LABEL).decode() for e in examples}
          for s, examples in splits.items()} == {
              "train": {"a.png": "cat", "i.png": "dog"},
              "eval": {"..j.png": "cat", "c.png": "dog"}}
  reasons = {r["path"]: r["reason"] for r in rejected}
  rows = {f"{labels}:{n}" for n in (6, 7, 8, 9, 10, 11, 12)}
  assert set(reasons) == rows | {"d.png", "e.png", "sub/x.png"}
  assert reasons[f"{labels}:10"].endswith("use / separators")
  assert reasons["sub/x.png"].startswith("no row in")
  assert reasons["d.png"] == (
      f"its row in {labels} is not used: row 11: d.png: class name "
      "'do\\x0ag' contains control or line-break characters (\\x0a); rename "
      "it without them")
  assert summary["ingested"] == 4
  assert summary["seen"] == 7 + len(rows) == 4 + summary["rejected"]
