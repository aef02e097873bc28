"""A sweep end to end through the CLI: three candidates, one Trainer each,
one evaluation of all, the cheapest not behind the best pushed, the Pareto
figure and the reason."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from gate import costs
from pipeline import cli
from testing.helpers import tiny_dataset

CANDIDATES = ["bilinear:16", "learned:32-16", "learned:32-8"]
NAMES = ["bilinear", "learned_32_16", "learned_32_8"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
  root = tmp_path_factory.mktemp("sweep")
  data, out = root / "data", root / "out"
  tiny_dataset(data, per_class=8, classes=2, size=40)
  rc = cli.main(["run", "--data", str(data), "--output", str(out),
                 "--backbone", "tiny_cnn", "--input-size", "32",
                 "--epochs", "1", "--batch-size", "8",
                 "--bn-recalibration", "0", "--candidates", *CANDIDATES,
                 # One epoch on 16 images need not beat chance: push anyway.
                 "--floor", "0"])
  with open(out / "report" / "results.json") as f:
    return {"rc": rc, "out": out, "results": json.load(f)}


def test_every_candidate_is_trained_measured_and_compared(sweep):
  assert sweep["rc"] == 0
  results = sweep["results"]
  assert results["candidates"] == NAMES
  for name, spelling in zip(NAMES, CANDIDATES):
    model = results["models"][name]
    resizer, sizes = spelling.split(":")
    size_in, size_out = (sizes.split("-") if "-" in sizes else ("32", sizes))
    assert (model["resizer"], model["input_size"], model["target_size"]) == (
        resizer, int(size_in), int(size_out))
    assert model["cost"]["flops_per_image"] > 0
    assert os.path.isdir(sweep["out"] / "pipeline_root" / f"Trainer_{name}")
  flops = {n: results["models"][n]["cost"]["flops_per_image"] for n in NAMES}
  # The resizer's convolutions at 32 px cost more than bilinear's none; a
  # smaller target feeds the backbone fewer pixels.
  assert flops["learned_32_16"] > flops["learned_32_8"]
  assert flops["learned_32_16"] > flops["bilinear"]


def test_the_cheapest_candidate_not_behind_the_best_is_pushed(sweep):
  results = sweep["results"]
  decision = results["selection"]["sweep"]
  chosen, best = decision["chosen"], decision["best"]
  assert results["selected"] == chosen and results["pushed"] == chosen
  price = {n: costs.value(results["models"][n]["cost"], "flops")
           for n in NAMES}
  assert price[chosen] <= price[best]
  # Every cheaper candidate was dropped, each with its reason.
  for name in NAMES:
    if price[name] < price[chosen]:
      assert decision["dropped"][name], name
  assert chosen not in decision["dropped"]
  for name, comparison in decision["comparisons"].items():
    assert price[name] <= price[best] and name != best
    assert comparison["n"] == results["examples"]["eval"]
    assert 0 <= decision["adjusted_p"][name] <= 1
  assert results["reason"].startswith(f"{chosen} pushed: chose {chosen}")
  assert results["front"][0] == min(NAMES, key=price.get)


def test_the_report_draws_the_front_and_tables_every_candidate(sweep):
  report = sweep["out"] / "report"
  pareto = np.asarray(Image.open(report / "pareto.png").convert("RGB"))
  assert pareto.shape[0] > 100 and pareto.shape[1] > 100
  md = (report / "results.md").read_text()
  assert md.startswith("# 3 candidates")
  for name in NAMES:
    assert f"| {name} |" in md
  assert "Holm p vs best" in md and "Latency measured on: " in md
  # original, then per learned candidate: bilinear at its target, its output
  grid = Image.open(report / "resized.png")
  assert grid.size[0] == 5 * 32
  card = (report / "model_card.html").read_text()
  assert 'alt="pareto.png"' in card
  logs = sweep["out"] / "tensorboard"
  [run] = os.listdir(logs)
  assert sorted(os.listdir(logs / run)) == sorted(NAMES + ["comparison"])
