"""The labels CSV: every row used or listed with a reason; whole-file
problems stop at once naming the file, the row and the fix."""
import csv
import io

import pytest

from components.image_example_gen.labels_csv import (LabelsError, infer_task,
                                                     read_labels, split_of)


def _csv(tmp_path, text, name="labels.csv", encoding="utf-8"):
  path = tmp_path / name
  path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
  return str(path)


def test_numbers_are_regression_and_rows_are_keyed_by_path(tmp_path):
  labels = read_labels(_csv(tmp_path, "image,score\na/1.jpg,3.5\n./b/2.png,7\n"
                            "c/3.jpg,1e1\n"))
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


def _rows(*rows):
  """CSV text of `rows`, quoted where the csv module would quote them."""
  out = io.StringIO()
  csv.writer(out).writerows(rows)  # "\r\n": quotes a field with \r or \n
  return out.getvalue()


def _shows_no_control_characters(text):
  return not any(ch < " " or ch == "\x7f" for ch in text)


def test_class_names_that_cant_be_labels_are_rejected_rows(tmp_path):
  # TF Transform's vocabulary drops a class with a line break (its images
  # would train as another class); a NUL makes a second class printed the same.
  path = _csv(tmp_path, _rows(
      ("image", "label"), ("ok.jpg", "cat"), ("nl.jpg", "ca\nt"),
      ("nul.jpg", "ca\0t"), ("esc.jpg", "\x1b[31mcat"), ("cr.jpg", "cat\r"),
      ("del.jpg", "ca\x7ft"), ("sep.jpg", "ca\u2028t"), ("quoted.jpg", ""),
      ("space.jpg", "  "), ("dot.jpg", "."), ("dotdot.jpg", ".."),
      ("dog.jpg", "dog")))
  labels = read_labels(path)
  assert labels.task == "classification"
  assert {k: r.target for k, r in labels.rows.items()} == {"ok.jpg": "cat",
                                                          "dog.jpg": "dog"}
  reasons = dict(labels.rejected)
  assert reasons[f"{path}:3"] == (
      "row 3: nl.jpg: class name 'ca\\x0at' contains control or line-break "
      "characters (\\x0a); rename it without them")
  assert "'ca\\x00t'" in reasons[f"{path}:4"]
  assert "'\\x1b[31mcat'" in reasons[f"{path}:5"]
  assert "'cat\\x0d'" in reasons[f"{path}:6"]  # a trailing \r is not trimmed
  assert "'ca\\x7ft'" in reasons[f"{path}:7"]
  assert "'ca\\u2028t'" in reasons[f"{path}:8"]
  assert reasons[f"{path}:9"] == "row 9: empty target for quoted.jpg"
  assert reasons[f"{path}:10"] == "row 10: empty target for space.jpg"
  assert reasons[f"{path}:11"] == ("row 11: dot.jpg: class name '.' is a path "
                                   "component, not a name")
  assert "class name '..' is a path component" in reasons[f"{path}:12"]
  assert len(labels.rows) + len(labels.rejected) == 12
  # The images of those rows are reported as such, not as "no row".
  assert len(labels.rejected_paths) == 10 and "nl.jpg" in labels.rejected_paths
  assert all(_shows_no_control_characters(r) for r in reasons.values())


def test_image_paths_are_checked_and_normalised_never_rewritten(tmp_path):
  path = _csv(tmp_path, _rows(
      ("image", "label"),
      ("../../etc/passwd", "a"),   # 2
      ("/abs/x.png", "a"),         # 3
      ("gs://b/x.png", "a"),       # 4
      ("http://h/x.png", "a"),     # 5
      ("file:x.png", "a"),         # 6
      ("sub\\i.png", "a"),         # 7
      ("..j.png", "a"),            # 8: a legal name
      ("./a.png", "a"),            # 9: a.png
      ("sub/../i.png", "b"),       # 10: i.png
      ("a.png", "b"),              # 11: a duplicate, once normalised
      (".", "a"),                  # 12
      ("sub/../../x.png", "a"),    # 13
      ("x\n.png", "a"),            # 14
      ("C:x.png", "a")))           # 15
  labels = read_labels(path)
  assert {k: (r.path, r.target) for k, r in labels.rows.items()} == {
      "..j.png": ("..j.png", "a"), "a.png": ("a.png", "a"),
      "i.png": ("i.png", "b")}
  reasons = {where.rsplit(":", 1)[1]: reason
             for where, reason in labels.rejected}
  assert reasons == {
      "2": "row 2: image '../../etc/passwd' leads out of the data folder; "
           "give a path inside it",
      "3": "row 3: image '/abs/x.png' is an absolute path; give its path "
           "relative to the data folder",
      "4": "row 4: image 'gs://b/x.png' starts with 'gs:', a URL scheme or "
           "drive; give its path relative to the data folder",
      "5": "row 5: image 'http://h/x.png' starts with 'http:', a URL scheme "
           "or drive; give its path relative to the data folder",
      "6": "row 6: image 'file:x.png' starts with 'file:', a URL scheme or "
           "drive; give its path relative to the data folder",
      "7": "row 7: image 'sub\\i.png' contains '\\', not a separator here; "
           "use / separators",
      "11": "row 11: duplicate of row 9 for a.png; the first row is used",
      "12": "row 12: image '.' is the data folder itself, not an image",
      "13": "row 13: image 'sub/../../x.png' leads out of the data folder; "
            "give a path inside it",
      "14": "row 14: image 'x\\x0a.png' contains control or line-break "
            "characters (\\x0a); rename it without them",
      "15": "row 15: image 'C:x.png' starts with 'C:', a URL scheme or drive; "
            "give its path relative to the data folder",
  }
  assert len(labels.rows) + len(labels.rejected) == 14


@pytest.mark.parametrize("header, target, shown", [
    ("image,tar\x1bget,other", None, "(tar\\x1bget, other)"),
    ('image,"two\nlines",other', None, "(two\\x0alines, other)"),
    ("image,\x1b[2Jlabel", "label", "(columns: image, \\x1b[2Jlabel)"),
    ("picture\x1b,label", None, "(columns: picture\\x1b, label)"),
])
def test_header_text_is_escaped_in_errors(tmp_path, header, target, shown):
  path = _csv(tmp_path, header + "\na.jpg,cat,dog\n")
  with pytest.raises(LabelsError) as e:
    read_labels(path, target)
  assert shown in str(e.value)
  assert _shows_no_control_characters(str(e.value))


def test_a_row_the_csv_module_cant_read_is_a_labels_error(tmp_path):
  # A bare carriage return in an unquoted field: csv.Error, not a crash.
  path = _csv(tmp_path, "image,label\na.jpg,cat\nb.jpg,do\rg\n")
  with pytest.raises(LabelsError, match=r"row 3 is not readable CSV \(new-"
                     r"line character seen in unquoted field"):
    read_labels(path)
