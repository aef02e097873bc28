"""ImageExampleGen on messy folders: every file is ingested (as is or
normalised) or rejected with a reason, never a crash; dataset-level problems
stop the run naming the folder and the fix."""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from components.image_example_gen.component import (ImageExampleGen,
                                                    ImageInputProcessor)
from components.image_example_gen.report import (REJECTED_FILE, SUMMARY_FILE,
                                                 DatasetError)
from pipeline.data_layout import example_gen_configs
from testing.bad_inputs import (BAD_CLASS_NAMES, pil_view,
                                write_bad_class_folders, write_bad_inputs)
from testing.helpers import feature, run_example_gen, tiny_dataset
from trainer import features
from trainer.preprocessing import decode_and_resize
from trainer.text import label_problem

# Corpus file (under mixed/) -> the format stored, when the file's own bytes
# are kept: TF decodes them to the same RGB image as PIL.
AS_IS = {
    "png_named.jpg": b"png", "cmyk.jpg": b"jpeg", "grey.jpg": b"jpeg",
    "rgba.png": b"png", "grey16.png": b"png", "rgb16.png": b"png",
    "palette.png": b"png", "small_40x30.jpg": b"jpeg", "phone.jpg": b"jpeg",
    "café ñ 猫.jpg": b"jpeg", "with space.png": b"png",
    "link_inside.jpg": b"jpeg",
}
# -> image/normalized, when a PNG of the upright image is stored instead:
# TF ignores EXIF orientation.
NORMALIZED = {
    "exif6.jpg": b"exif_orientation=6", "exif8.jpg": b"exif_orientation=8",
    "grey16_exif6.png": b"exif_orientation=6",
}
# -> image/normalized, for formats TF can't decode (or not as PIL does):
# stored as a PNG of PIL's RGB image, upright.
CONVERTED = {
    "anim.gif": b"converted_from=gif", "photo.webp": b"converted_from=webp",
    "alpha.webp": b"converted_from=webp", "photo.bmp": b"converted_from=bmp",
    "photo.tiff": b"converted_from=tiff", "grey16.tiff": b"converted_from=tiff",
    "rotated.webp": b"converted_from=webp,exif_orientation=6",
}
# -> a part of the rejection reason.
REJECTED = {
    "truncated.jpg": "cannot decode image: OSError: image file is truncated",
    "empty.jpg": "empty file (0 bytes)",
    "notes.jpg": "cannot decode image: unrecognised content",
    "favicon.ico": "unsupported format ICO (accepted: JPEG, PNG, WebP, BMP, "
                   "GIF (first frame), TIFF)",
    "bomb.png": "above the max_pixels limit 40000000",
    ".DS_Store": "hidden file",
    ".thumbs/0001.jpg": "hidden file",
    "link_outside.jpg": "outside the data folder",
    "dangling.jpg": "dangling symlink",
    "pipe.jpg": "not a regular file",
    "latin1-caf\\xe9.jpg": "file name is not valid UTF-8",
    # One entry, however many files are in it.
    "linked_folder": "symlinked folder to ",
}
DUPLICATE = ["horizontal/0000.jpg", "mixed/link_inside.jpg", "vertical/dup.jpg"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  """One run over 2 demo classes plus `mixed/`, the whole bad-input corpus,
  and class folders whose names can't be labels."""
  root = tmp_path_factory.mktemp("corpus")
  data = root / "data"
  n = tiny_dataset(data, per_class=3, classes=2)
  write_bad_inputs(str(data / "mixed"), str(root / "outside"),
                   "../horizontal/0000.jpg")
  bad_class_files = write_bad_class_folders(str(data))
  shutil.copy(data / "horizontal" / "0000.jpg", data / "vertical" / "dup.jpg")
  splits, summary, rejected, *_ = run_example_gen(data, root / "out")
  examples = {feature(e, features.FILENAME).decode(): (split, e)
              for split, split_examples in splits.items()
              for e in split_examples}
  return {"data": data, "demo": n + 1, "examples": examples,
          "summary": summary, "bad_class_files": bad_class_files,
          "outside": root / "outside",
          "reasons": {r["path"]: r["reason"] for r in rejected}}


def mixed(names):
  return {f"mixed/{name}" for name in names}


def test_every_file_is_ingested_or_rejected(corpus):
  examples, reasons = corpus["examples"], corpus["reasons"]
  bad_class_files = corpus["bad_class_files"]
  assert set(reasons) == mixed(REJECTED) | set(bad_class_files)
  assert {p for p in examples if p.startswith("mixed/")} == (
      mixed(AS_IS) | mixed(NORMALIZED) | mixed(CONVERTED))
  summary = corpus["summary"]
  ingested = corpus["demo"] + len(AS_IS) + len(NORMALIZED) + len(CONVERTED)
  rejected = len(REJECTED) + len(bad_class_files)
  assert summary["ingested"] == len(examples) == ingested
  assert summary["rejected"] == len(reasons) == rejected
  assert summary["seen"] == ingested + rejected
  # The `loop` symlink (back to the data folder) is not walked round again.
  assert not any("loop" in p for p in list(examples) + list(reasons))
  # Hidden files have no class; every other file counts for mixed/.
  assert summary["classes"]["mixed"] == {
      "ingested": len(AS_IS) + len(NORMALIZED) + len(CONVERTED),
      "rejected": len(REJECTED) - 2}


def test_rejections_say_why(corpus):
  for name, reason in REJECTED.items():
    assert reason in corpus["reasons"][f"mixed/{name}"], name


def test_a_symlinked_folder_leading_out_is_one_entry_not_walked(corpus):
  assert corpus["reasons"]["mixed/linked_folder"] == (
      f"symlinked folder to {corpus['outside']}/many, outside the data "
      "folder, not read; copy its files in")
  assert not any("linked_folder/" in p for p in corpus["reasons"])


def test_class_folders_whose_names_cant_be_labels_are_rejected(corpus):
  """Their images are rejected with the reason, the folders are no class,
  and the other classes train: the run did not fail."""
  reasons = corpus["reasons"]
  for path in corpus["bad_class_files"]:
    folder = path.split("/")[0]
    assert reasons[path] == label_problem(folder, "class folder name"), path
    assert "rename it without them" in reasons[path]
  assert reasons["new\nline/0.png"] == (
      "class folder name 'new\\x0aline' contains control or line-break "
      "characters (\\x0a); rename it without them")
  labels = {feature(e, features.LABEL).decode()
            for _, e in corpus["examples"].values()}
  assert labels == {"horizontal", "vertical", "mixed"}
  assert sorted(corpus["summary"]["classes"]) == ["horizontal", "mixed",
                                                  "vertical"]
  assert not any(p.startswith(BAD_CLASS_NAMES) for p in corpus["examples"])


def test_files_are_kept_unless_tf_would_decode_them_differently(corpus):
  examples, data = corpus["examples"], corpus["data"]
  for name, fmt in AS_IS.items():
    _, example = examples[f"mixed/{name}"]
    original = (data / "mixed" / name).read_bytes()
    assert feature(example, features.IMAGE) == original, name
    assert feature(example, features.FORMAT) == fmt, name
    assert feature(example, features.NORMALIZED) == b"", name
    height, width = pil_view(original).shape[:2]
    assert (feature(example, features.HEIGHT),
            feature(example, features.WIDTH)) == (height, width), name
  for name, why in NORMALIZED.items():
    _, example = examples[f"mixed/{name}"]
    assert feature(example, features.NORMALIZED) == why, name
    assert feature(example, features.FORMAT) == b"png", name
    assert feature(example, features.IMAGE).startswith(b"\x89PNG"), name
    # 48 wide x 32 high, turned a quarter: stored upright, 32 x 48.
    assert (feature(example, features.HEIGHT),
            feature(example, features.WIDTH)) == (48, 32), name
  for name, why in CONVERTED.items():
    _, example = examples[f"mixed/{name}"]
    assert feature(example, features.NORMALIZED) == why, name
    assert feature(example, features.FORMAT) == b"png", name
    assert feature(example, features.IMAGE).startswith(b"\x89PNG"), name
    upright = (48, 32) if b"exif_orientation=6" in why else (32, 48)
    assert (feature(example, features.HEIGHT),
            feature(example, features.WIDTH)) == upright, name
  assert corpus["summary"]["normalized"] == {
      "exif_orientation=6": 2, "exif_orientation=8": 1,
      "converted_from=gif": 1, "converted_from=webp": 2,
      "converted_from=bmp": 1, "converted_from=tiff": 2,
      "converted_from=webp,exif_orientation=6": 1}


def test_transform_decodes_every_image_as_pil_sees_it_upright(corpus):
  examples, data = corpus["examples"], corpus["data"]
  for name in list(AS_IS) + list(NORMALIZED) + list(CONVERTED):
    _, example = examples[f"mixed/{name}"]
    stored = feature(example, features.IMAGE)
    # For a GIF: the first frame (PIL opens an animation there).
    expected = pil_view((data / "mixed" / name).read_bytes())
    # The decode Transform and the served model use.
    decoded = tf.io.decode_image(stored, channels=3,
                                 expand_animations=False).numpy()
    assert decoded.shape == expected.shape, name
    if feature(example, features.FORMAT) == b"png":
      np.testing.assert_array_equal(decoded, expected, err_msg=name)
    else:
      # TF's default IDCT is the fast integer one, PIL's the accurate one:
      # the same colour handling (grey, CMYK) shows as exact equality...
      accurate = tf.io.decode_jpeg(stored, channels=3,
                                   dct_method="INTEGER_ACCURATE").numpy()
      np.testing.assert_array_equal(accurate, expected, err_msg=name)
      # ...and the default differs by rounding, larger at sharp edges.
      assert np.abs(decoded.astype(int) - expected).mean() < 2, name
    assert decode_and_resize(stored, 32).shape == (32, 32, 3), name


def test_duplicates_across_classes_are_reported_and_share_a_split(corpus):
  assert corpus["summary"]["duplicates"] == [{
      "paths": DUPLICATE, "classes": ["horizontal", "mixed", "vertical"]}]
  assert len({corpus["examples"][p][0] for p in DUPLICATE}) == 1


def test_fingerprint_survives_bad_links_and_names_and_sees_moves(tmp_path):
  data = tmp_path / "data"
  tiny_dataset(data, per_class=2, classes=2)
  write_bad_inputs(str(data / "mixed"), str(tmp_path / "outside"),
                   "../horizontal/0000.jpg")
  input_config, _ = example_gen_configs(str(data))

  def fingerprint():
    processor = ImageInputProcessor(str(data), input_config.splits)
    assert processor.resolve_span_and_version() == (0, None)
    return processor.get_input_fingerprint(0, None)

  before = fingerprint()
  assert before == fingerprint()
  # A move keeps size and mtime, which is all TFX's own fingerprint sees.
  os.rename(data / "horizontal" / "0001.jpg", data / "vertical" / "moved.jpg")
  assert fingerprint() != before


def test_local_run_survives_the_corpus_and_caches(corpus, tmp_path):
  # Through LocalDagRunner, so the driver (TFX's crashes on a dangling
  # symlink) runs too; the second run is a cache hit.
  input_config, output_config = example_gen_configs(str(corpus["data"]))
  for _ in range(2):
    LocalDagRunner().run(tfx_pipeline.Pipeline(
        "corpus", str(tmp_path / "root"), components=[ImageExampleGen(
            input_base=str(corpus["data"]), input_config=input_config,
            output_config=output_config, max_pixels=40_000_000)],
        enable_cache=True,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(
            str(tmp_path / "metadata.sqlite"))))
  runs = tmp_path / "root" / "ImageExampleGen" / "rejected"
  assert len(list(runs.iterdir())) == 1
  with open(next(runs.iterdir()) / SUMMARY_FILE) as f:
    assert json.load(f)["seen"] == corpus["summary"]["seen"]


def _write(path, data):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(data)


def test_no_files_stops_naming_the_folder(tmp_path):
  (tmp_path / "data" / "cats").mkdir(parents=True)
  (tmp_path / "data" / "dogs").mkdir()
  with pytest.raises(DatasetError, match=r"no usable image under \S*data "
                     r"\(no files found\)\. Put JPEG or PNG files in"):
    run_example_gen(tmp_path / "data", tmp_path / "o")


def test_all_rejected_stops_and_the_report_says_why(tmp_path):
  _write(tmp_path / "data" / "cats" / "notes.jpg", b"text")
  _write(tmp_path / "data" / "dogs" / "empty.jpg", b"")
  with pytest.raises(DatasetError, match=r"2 files seen, all rejected"):
    run_example_gen(tmp_path / "data", tmp_path / "o")
  with open(tmp_path / "o" / "report" / REJECTED_FILE) as f:
    assert [json.loads(line)["path"] for line in f] == ["cats/notes.jpg",
                                                        "dogs/empty.jpg"]


def test_class_with_only_rejected_files_stops_naming_it(tmp_path):
  tiny_dataset(tmp_path / "data", per_class=3, classes=2)
  _write(tmp_path / "data" / "broken" / "notes.jpg", b"text")
  with pytest.raises(DatasetError, match=r"no usable image under \S+: broken\."
                     r" Add images or remove the folder"):
    run_example_gen(tmp_path / "data", tmp_path / "o")


def test_class_only_in_eval_stops_naming_it(tmp_path):
  tiny_dataset(tmp_path / "data" / "train", per_class=2, classes=2, seed=1)
  tiny_dataset(tmp_path / "data" / "validation", per_class=2, classes=3,
               seed=2)
  with pytest.raises(DatasetError, match=r"no train/ counterpart: "
                     r"validation/checker\. Add train/<class>/ images"):
    run_example_gen(tmp_path / "data", tmp_path / "o")
