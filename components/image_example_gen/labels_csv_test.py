"""The labels CSV: every row used or listed with a reason; whole-file
problems stop at once naming the file, the row and the fix."""
import pytest

from components.image_example_gen.labels_csv import (LabelsError, infer_task,
                                                     read_labels, split_of)


def _csv(tmp_path, text, name="labels.csv", encoding="utf-8"):
  path = tmp_path / name
  path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
  return str(path)


def test_numbers_are_regression_and_rows_are_keyed_by_path(tmp_path):
  labels = read_labels(_csv(tmp_path, "image,score\na/1.jpg,3.5\n./b/2.png,7\n"
                            "c\\3.jpg,1e1\n"))
  assert labels.task == "regression" and labels.target_column == "score"
  assert sorted(labels.rows) == ["a/1.jpg", "b/2.png", "c/3.jpg"]
  assert labels.value(labels.rows["c/3.jpg"]) == 10.0
  assert labels.rejected == [] and not labels.has_split


def test_strings_are_classification_unless_told(tmp_path):
  path = _csv(tmp_path, "filename,label,split\nx.jpg,cat,train\n"
              "y.jpg,dog,validation\nz.jpg,dog,eval\n")
  labels = read_labels(path)
  assert labels.task == "classification" and labels.path_column == "filename"
  assert [split_of(labels.rows[k]) for k in ("x.jpg", "y.jpg", "z.jpg")] == \
      ["train", "eval", "eval"]
  numeric = _csv(tmp_path, "image,label\nx.jpg,1\ny.jpg,2\n", "n.csv")
  assert read_labels(numeric, task="classification").task == "classification"
  assert infer_task([], "auto") == "classification"
  # One bad value in 20 numbers is a bad row of a regression target.
  mostly = _csv(tmp_path, "image,t\n" + "".join(
      f"{i}.jpg,{i}\n" for i in range(19)) + "x.jpg,n/a\n", "m.csv")
  labels = read_labels(mostly)
  assert labels.task == "regression" and len(labels.rows) == 19
  assert labels.rejected == [(f"{mostly}:21", "row 21: target 'n/a' for "
                              "x.jpg is not a number")]


def test_bad_rows_are_rejected_with_their_reason(tmp_path):
  path = _csv(tmp_path, "image,target,split\n"
              "a.jpg,1,train\n"
              "b.jpg,,train\n"          # empty target
              "c.jpg,n/a,train\n"       # not a number (regression)
              "a.jpg,2,train\n"         # duplicate
              "d.jpg,4,test\n"          # unused split
              ",5,train\n"              # no image
              "e.jpg,6,\n")  # empty split: hash split
  labels = read_labels(path, task="regression")
  assert sorted(labels.rows) == ["a.jpg", "e.jpg"]
  assert split_of(labels.rows["e.jpg"]) is None
  assert labels.rows["a.jpg"].target == "1"  # the first row wins
  reasons = dict(labels.rejected)
  assert reasons[f"{path}:3"] == "row 3: empty target for b.jpg"
  assert reasons[f"{path}:4"] == "row 4: target 'n/a' for c.jpg is not a number"
  assert reasons[f"{path}:5"] == ("row 5: duplicate of row 2 for a.jpg; the "
                                  "first row is used")
  assert "split 'test' for d.jpg is not used" in reasons[f"{path}:6"]
  assert reasons[f"{path}:7"] == "row 7: empty image"
  assert len(labels.rows) + len(labels.rejected) == 7  # every row accounted


@pytest.mark.parametrize("content, encoding, message", [
    ("image;target\na.jpg;1\n", "utf-8", "row 1 has one column 'image;target': "
     "the file is not comma-separated; save it as CSV with commas"),
    ("image,target\nä.jpg,1\n", "latin-1", "row 2 is not UTF-8 text; save the "
     "file as UTF-8 CSV"),
    ("picture,target\na.jpg,1\n", "utf-8", "row 1 has no image column; name "
     "the column of image paths one of image, path, file, filename"),
    ("image,a,b\nx.jpg,1,2\n", "utf-8", "has 2 candidate target columns (a, "
     "b); name one with --target"),
    ("image,target\nx.jpg,1,2\n", "utf-8", "row 2 has 3 fields, the header 2; "
     "quote fields that contain commas"),
    ("", "utf-8", "is empty"),
])
def test_malformed_files_fail_at_once_naming_file_row_and_fix(
    tmp_path, content, encoding, message):
  path = _csv(tmp_path, content.encode(encoding))
  with pytest.raises(LabelsError) as e:
    read_labels(path)
  assert message in str(e.value) and path in str(e.value)


def test_missing_file_and_unknown_target_column(tmp_path):
  with pytest.raises(LabelsError, match="does not exist"):
    read_labels(str(tmp_path / "nope.csv"))
  path = _csv(tmp_path, "image,target\na.jpg,1\n")
  with pytest.raises(LabelsError, match=r"--target: .* has no column 'score'"):
    read_labels(path, target="score")
