"""Labels from a CSV, end to end through the CLI: a regression target (the
Pawpularity-style task), and classes named in the CSV trained as a sweep of
three candidates."""
import csv
import glob
import json
import os

import numpy as np
import pytest
from PIL import Image

from gate import costs
from pipeline import cli
from pipeline.demo_data import REGRESSION_LABELS, write_regression_demo_data
from testing.helpers import serve_in_fresh_process, tiny_dataset

TINY = ["--backbone", "tiny_cnn", "--input-size", "32", "--target-size", "16",
        "--epochs", "2", "--batch-size", "8", "--bn-recalibration", "64"]

def _results(out):
  with open(out / "report" / "results.json") as f:
    return json.load(f)


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
  root = tmp_path_factory.mktemp("regression")
  data, out = root / "data", root / "out"
  write_regression_demo_data(str(data), count=30, size=48)
  labels = data / REGRESSION_LABELS
  with open(labels, newline="") as f:
    rows = list(csv.reader(f))
  # Accounting cases: a row with no image, a non-numeric target, a duplicate,
  # an image with no row, an unused split value.
  rows.append(["images/missing.jpg", "10"])
  rows[3][1] = "n/a"
  rows.append(rows[4][:])
  with open(labels, "w", newline="") as f:
    csv.writer(f).writerows(rows)
  os.rename(data / "images" / "0005.jpg", data / "images" / "extra.jpg")
  # --floor: an RMSE ceiling any model clears, so two epochs on 30 images
  # still push; the default (predicting the training mean) is unit-tested.
  rc = cli.main(["run", "--data", str(data), "--labels", str(labels),
                 "--output", str(out), "--floor", "1000", "--min-gain=-1e9"]
                + TINY)
  return {"rc": rc, "data": data, "out": out, "labels": labels,
          "results": _results(out)}


def test_regression_run_pushes_a_model_answering_in_target_units(regression,
                                                                 tmp_path):
  results = regression["results"]
  assert regression["rc"] == 0 and results["task"] == "regression"
  # --min-gain=-1e9: no cheaper candidate is kept against the best.
  assert results["pushed"] == results["selection"]["sweep"]["best"]
  for name in ("learned", "bilinear"):
    m = results["models"][name]
    assert m["rmse"] == pytest.approx(m["metrics"]["mean_squared_error"] ** 0.5)
    assert 0 < m["mae"] <= m["rmse"]
  selection = results["selection"]
  assert selection["metric"] == "MSE" and selection["test"].startswith("paired t")
  assert selection["n"] == results["examples"]["eval"]
  # The difference is the MSE reduction TFMA's own MSEs give.
  assert selection["difference"] == pytest.approx(
      results["models"]["bilinear"]["rmse"] ** 2
      - results["models"]["learned"]["rmse"] ** 2, rel=1e-3)
  assert os.path.exists(regression["out"] / "report" / "predicted.png")
  md = (regression["out"] / "report" / "results.md").read_text()
  assert "| model | parameters (M) | RMSE (eval) | MAE (eval) |" in md

  images = sorted(glob.glob(str(regression["data"] / "images" / "*.jpg")))[:3]
  served = serve_in_fresh_process(results["pushed_path"], images, tmp_path)
  by_bytes = served["images"]
  assert sorted(by_bytes) == ["error", "prediction", "training_mean"]
  assert by_bytes["error"] == served["examples"]["error"] == [""] * 3
  assert by_bytes["prediction"] == pytest.approx(
      served["examples"]["prediction"], abs=1e-4)
  # Target units: the training mean of targets drawn from 0-100, not ~0.
  with open(regression["labels"], newline="") as f:
    targets = [float(r["target"]) for r in csv.DictReader(f)
               if r["target"].replace(".", "").isdigit()]
  mean = by_bytes["training_mean"][0]
  assert 20 < mean < 80
  assert min(targets) <= mean <= max(targets)


def test_every_image_and_row_is_accounted_for(regression):
  out = regression["out"]
  (report,) = glob.glob(str(out / "pipeline_root" / "ImageExampleGen" /
                            "rejected" / "*"))
  with open(os.path.join(report, "summary.json")) as f:
    summary = json.load(f)
  with open(os.path.join(report, "rejected.jsonl")) as f:
    rejected = {r["path"]: r["reason"] for r in map(json.loads, f)}
  labels = str(regression["labels"])
  assert rejected[f"{labels}:32"] == ("row 32: no image at images/missing.jpg "
                                      "under the data folder")
  assert rejected[f"{labels}:4"].endswith("is not a number")
  assert "duplicate of row 5" in rejected[f"{labels}:33"]
  assert rejected["images/extra.jpg"].startswith("no row in")
  assert rejected["images/0002.jpg"] == (
      f"its row in {labels} is not used: row 4: target 'n/a' for "
      "images/0002.jpg is not a number")
  assert rejected["labels.csv"] == "the labels CSV (--labels), not an image"
  # The renamed image's row has no image either.
  assert rejected[f"{labels}:7"].startswith("row 7: no image at images/0005")
  # 30 images (one renamed), labels.csv, and 33 - 1 rows: each once.
  assert summary["ingested"] == 28  # 30 - the renamed one - the n/a row's
  assert summary["seen"] == summary["ingested"] + summary["rejected"]
  assert summary["splits"]["train"] + summary["splits"]["eval"] == 28
  assert regression["results"]["examples"] == summary["splits"]


# Classes named in a CSV, trained as a sweep of three candidates: one Trainer
# each, one evaluation of all, the cheapest not behind the best pushed.
CANDIDATES = ["bilinear:16", "learned:32-16", "learned:32-8"]
NAMES = ["bilinear", "learned_32_16", "learned_32_8"]


@pytest.fixture(scope="module")
def csv_sweep(tmp_path_factory):
  root = tmp_path_factory.mktemp("csv-sweep")
  data, out = root / "data", root / "out"
  tiny_dataset(data, per_class=6, classes=2, size=32)
  rows = [["path", "kind", "split"]]
  for i, image in enumerate(sorted(glob.glob(str(data / "*" / "*")))):
    rel = os.path.relpath(image, data)
    rows.append([rel, rel.split("/")[0],
                 ["train", "train", "validation", "test"][i % 4]])
  labels = root / "labels.csv"  # outside the data folder
  with open(labels, "w", newline="") as f:
    csv.writer(f).writerows(rows)
  rc = cli.main(["run", "--data", str(data), "--labels", str(labels),
                 "--output", str(out), "--floor", "0", "--epochs", "1",
                 "--backbone", "tiny_cnn", "--input-size", "32",
                 "--batch-size", "4", "--bn-recalibration", "0",
                 "--candidates", *CANDIDATES])
  return {"rc": rc, "out": out, "rows": rows, "results": _results(out)}


def test_classes_from_a_csv_with_its_split_column(csv_sweep):
  results, rows = csv_sweep["results"], csv_sweep["rows"]
  assert csv_sweep["rc"] == 0 and results["task"] == "classification"
  assert sorted(results["class_names"]) == sorted({r[1] for r in rows[1:]})
  assert results["examples"] == {"train": 6, "eval": 3}
  # The three rows of split 'test', and their three images.
  assert results["rejected"] == 6 and results["seen"] == 15


def test_every_candidate_is_trained_measured_and_compared(csv_sweep):
  results = csv_sweep["results"]
  assert results["candidates"] == NAMES
  for name, spelling in zip(NAMES, CANDIDATES):
    model = results["models"][name]
    resizer, sizes = spelling.split(":")
    size_in, size_out = (sizes.split("-") if "-" in sizes else ("32", sizes))
    assert (model["resizer"], model["input_size"], model["target_size"]) == (
        resizer, int(size_in), int(size_out))
    assert os.path.isdir(csv_sweep["out"] / "pipeline_root" /
                         f"Trainer_{name}")
  flops = {n: results["models"][n]["cost"]["flops_per_image"] for n in NAMES}
  # The resizer's convolutions cost more than bilinear's none; a smaller
  # target feeds the backbone fewer pixels.
  assert flops["learned_32_16"] > flops["learned_32_8"]
  assert flops["learned_32_16"] > flops["bilinear"] > 0


def test_the_cheapest_candidate_not_behind_the_best_is_pushed(csv_sweep):
  results = csv_sweep["results"]
  decision = results["selection"]["sweep"]
  chosen, best = decision["chosen"], decision["best"]
  assert results["selected"] == chosen and results["pushed"] == chosen
  price = {n: costs.value(results["models"][n]["cost"], "flops")
           for n in NAMES}
  assert price[chosen] <= price[best] and chosen not in decision["dropped"]
  for name in NAMES:  # every cheaper candidate was dropped, with its reason
    if price[name] < price[chosen]:
      assert decision["dropped"][name], name
  for name, comparison in decision["comparisons"].items():
    assert price[name] <= price[best] and name != best
    assert comparison["n"] == results["examples"]["eval"]
    assert 0 <= decision["adjusted_p"][name] <= 1
  assert results["reason"].startswith(f"{chosen} pushed: chose {chosen}")
  assert results["front"][0] == min(NAMES, key=price.get)


def test_the_sweep_report_draws_the_front_and_tables_every_candidate(
    csv_sweep):
  report = csv_sweep["out"] / "report"
  pareto = np.asarray(Image.open(report / "pareto.png").convert("RGB"))
  assert pareto.shape[0] > 100 and pareto.shape[1] > 100
  md = (report / "results.md").read_text()
  assert md.startswith("# 3 candidates")
  for name in NAMES:
    assert f"| {name} |" in md
  assert "adjusted p vs best" in md and "Latency measured on: " in md
  # original, then per learned candidate: bilinear at its target, its output
  assert Image.open(report / "resized.png").size[0] == 5 * 32
  assert 'alt="pareto.png"' in (report / "model_card.html").read_text()
  logs = csv_sweep["out"] / "tensorboard"
  [run] = os.listdir(logs)
  assert sorted(os.listdir(logs / run)) == sorted(NAMES + ["comparison"])
