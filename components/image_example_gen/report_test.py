"""The report's accounting alone (report.summarize)."""
from components.image_example_gen.report import summarize, summary_line


def _ingested(path, cls, split, sha, normalized=""):
  return {"path": path, "class": cls, "split_root": "", "status": "ingested",
          "split": split, "sha256": sha, "normalized": normalized}


def test_summarize_counts_every_outcome_once():
  unread = [{"path": "test/x.jpg", "class": None, "split_root": None,
             "status": "rejected", "reason": "not read", "unread": "test"}]
  outcomes = [
      _ingested("cat/a.jpg", "cat", "train", "s1"),
      _ingested("dog/a.jpg", "dog", "eval", "s1", "exif_orientation=6"),
      _ingested("dog/b.jpg", "dog", "train", "s2"),
      {"path": "dog/c.jpg", "class": "dog", "split_root": "",
       "status": "rejected", "reason": "empty file (0 bytes)"},
  ] + unread
  summary, rejected = summarize(outcomes, ["cat", "dog", "empty"],
                                ["train", "eval", "test"], unread)
  assert [r["path"] for r in rejected] == ["dog/c.jpg", "test/x.jpg"]
  assert summary == {
      "seen": 5, "ingested": 3, "rejected": 2,
      "splits": {"train": 2, "eval": 1, "test": 0},
      "classes": {"cat": {"ingested": 1, "rejected": 0},
                  "dog": {"ingested": 2, "rejected": 1},
                  "empty": {"ingested": 0, "rejected": 0}},
      "normalized": {"exif_orientation=6": 1},
      "duplicates": [{"paths": ["cat/a.jpg", "dog/a.jpg"],
                      "classes": ["cat", "dog"]}],
      "not_read": {"test": 1},
  }


def test_the_summary_line_counts_with_thousands_separators():
  assert summary_line({"ingested": 12_345, "rejected": 2,
                       "splits": {"eval": 2_345, "train": 10_000}}) == (
      "12,345 ingested, 2 rejected (10,000 train, 2,345 eval)")
  assert summary_line({"ingested": 0, "rejected": 7, "splits": {}}) == \
      "0 ingested, 7 rejected"
