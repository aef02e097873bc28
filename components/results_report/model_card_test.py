"""The model card: its fields are results.json's numbers, for both tasks; the
HTML is self-contained and hostile text from the data stays text."""
import base64
import html
import io

import pytest
from PIL import Image

from components.model_selector.component import AHEAD, NOT_SIGNIFICANT
from components.results_report import model_card
from components.results_report.component import build_results
from gate import stats, sweep
from gate.tfma_metric import CONSTANT_SE, MAE, MSE, TOP1
from testing.helpers import HtmlPage

HOSTILE = "<script>alert(1)</script>"
CLASSES = ("cat", HOSTILE)
VERSION = {"name": "9.8.7", "commit": "abc123"}
THRESHOLDS = {"min_gain": 0.0, "floor": 0.5, "confidence": 0.95,
              "production_tolerance": 0.0}
SUMMARY = {"splits": {"train": 400, "eval": 100}, "rejected": 2, "seen": 502,
           "classes": {"train/cat": {"ingested": 250, "rejected": 1},
                       f"train/{HOSTILE}": {"ingested": 150, "rejected": 1}}}
REJECTED = [{"path": "train/cat/a.txt", "reason": "not an image"},
            {"path": f"train/{HOSTILE}/b.jpg",
             "reason": '<img src="http://example.com/x.png"> truncated'}]


def _png(color, size=(6, 4)):
  buf = io.BytesIO()
  Image.new("RGB", size, color).save(buf, format="PNG")
  return buf.getvalue()


def _info(task, resizer, params, class_names=()):
  score = "accuracy" if task == "classification" else "rmse"
  return {"task": task, "resizer": resizer, "backbone": "tiny_cnn",
          "input_size": 64, "target_size": 32, "params": params,
          "trainable_params": params - 10,
          "resizer_config": {"filters": 4, "num_res_blocks": 1,
                             "interpolation": "bilinear"},
          "precision": "float32", "strategy": "OneDeviceStrategy",
          "replicas": 1, "class_names": list(class_names),
          "recipe": {**RECIPE, "seed": params},
          "history": {"loss": [1.0, 0.5, 0.25], score: [0.5, 0.6, 0.7]}}


# A Trainer's recipe (TrainConfig's fields), and TFDV's image sides.
RECIPE = {"epochs": 3, "batch_size": 8, "learning_rate": 0.002,
          "schedule": "cosine", "warmup_epochs": 1, "optimizer": "adam",
          "ema": 0.0, "augment": "flip", "bn_recalibration": 64,
          "shuffle_buffer_mb": 256, "strategy": "auto", "precision": "auto",
          "seed": 42}
IMAGE_SIZES = {"train": {"height": {"min": 30.0, "median": 64.0,
                                    "mean": 60.5, "max": 480.0},
                         "width": {"min": 40.0, "median": 64.0,
                                   "mean": 70.25, "max": 640.0}}}


def classification_results():
  metrics = {"learned": {TOP1: 0.75}, "bilinear": {TOP1: 0.5}}
  per_class = {"learned": {"cat": 0.8, HOSTILE: 0.7},
               "bilinear": {"cat": 0.6, HOSTILE: 0.4}}
  return build_results(
      summary=SUMMARY,
      infos={"learned": {**_info("classification", "learned", 1234, CLASSES),
                         "train_sample_top1": 0.9},
             "bilinear": _info("classification", "bilinear", 1000, CLASSES)},
      evaluation=(metrics, per_class),
      production_evaluation=({"candidate": {TOP1: 0.75},
                              "production": {TOP1: 0.7}}, {}),
      selected="learned",
      selection={**stats.paired_accuracy(100, 30, 5).as_dict(),
                 "margin": 0.0, "outcome": AHEAD},
      decision="push",
      production_comparison=stats.paired_accuracy(100, 10, 5).as_dict(),
      pushed_path="serving/1", thresholds=THRESHOLDS, num_classes=2,
      rejected_files=REJECTED, image_sizes=IMAGE_SIZES)


def regression_results():
  metrics = {"learned": {MSE: 4.0, MAE: 1.5, CONSTANT_SE: 25.0},
             "bilinear": {MSE: 6.25, MAE: 2.0, CONSTANT_SE: 25.0}}
  return build_results(
      summary={**SUMMARY, "classes": {}},
      infos={"learned": _info("regression", "learned", 1234),
             "bilinear": _info("regression", "bilinear", 1000)},
      evaluation=(metrics, {}), production_evaluation=({}, {}),
      selected="bilinear",
      selection={**stats.paired_squared_error(100, 20.0, 900.0).as_dict(),
                 "margin": 0.0, "outcome": NOT_SIGNIFICANT},
      decision="push", production_comparison=None, pushed_path=None,
      thresholds={**THRESHOLDS, "floor": 5.0}, num_classes=0,
      rejected_files=REJECTED)


RESULTS = {"classification": classification_results,
           "regression": regression_results}
FIGURES = {"classification": {"resized.png": _png("red"),
                              "training.png": _png("blue", (8, 5))},
           "regression": {"resized.png": _png("red"),
                          "training.png": _png("blue", (8, 5)),
                          "predicted.png": _png("green", (3, 7))}}


def _metrics(card):
  return {(m["type"], m["slice"]): m for m in
          card["quantitative_analysis"]["performance_metrics"]}


def expected_metrics(results):
  """{(type, slice): value} the card must state, from results.json."""
  expected = {}
  for name in ("learned", "bilinear"):
    model = results["models"][name]
    if results["task"] == "classification":
      expected[(f"{name} top-1", "eval")] = model["top1"]
      for label, recall in model["per_class_recall"].items():
        expected[(f"{name} recall", f"eval, image/class={label}")] = recall
    else:
      expected[(f"{name} RMSE", "eval")] = model["rmse"]
      expected[(f"{name} MAE", "eval")] = model["mae"]
  return expected


@pytest.mark.parametrize("task", sorted(RESULTS))
def test_the_card_states_the_results(task):
  results = RESULTS[task]()
  card = model_card.model_card(results, FIGURES[task], VERSION, "2026-01-02")
  details = card["model_details"]
  assert details["overview"] == results["reason"]
  assert details["version"] == {"name": "9.8.7", "date": "2026-01-02",
                                "commit": "abc123"}
  assert details["path"] == results["pushed_path"]
  for name, params in (("learned", 1234), ("bilinear", 1000)):
    model = card["model_parameters"]["models"][name]
    assert (model["params"], model["trainable_params"]) == (params,
                                                            params - 10)
    assert (model["backbone"], model["resizer"], model["input_size"],
            model["target_size"], model["epochs"]) == ("tiny_cnn", name, 64,
                                                       32, 3)
  selected = results["selected"]
  assert (f"{selected}: tiny_cnn backbone behind a {selected} resizer: 64px "
          "images resized to 32px") in card["model_parameters"][
              "model_architecture"]
  data = card["model_parameters"]["data"]
  assert (data["train"]["examples"], data["eval"]["examples"]) == (400, 100)
  assert data["ingest"] == {"seen": 502, "rejected": 2,
                            "class_folders": results["class_folders"],
                            "rejected_files": REJECTED}

  metrics = _metrics(card)
  for key, value in expected_metrics(results).items():
    assert metrics[key]["value"] == value, key
  unit = "top-1" if task == "classification" else "MSE"
  gates = [("learned", "bilinear", results["selection"]),
           ("candidate", "production", results["production"]["comparison"])]
  for a, b, comparison in gates:
    kind = f"{unit} gain of {a} over {b}"
    matching = [m for (t, _), m in metrics.items() if t.startswith(kind)]
    if comparison is None:  # regression here: nothing in production
      assert not matching
      continue
    slice_name = f"eval ({comparison['n']} paired images)"
    gain = metrics[(kind, slice_name)]
    assert gain["value"] == comparison["difference"]
    assert gain["confidence_interval"] == {
        "lower_bound": comparison["lower"], "upper_bound": comparison["upper"]}
    assert metrics[(f"{kind}: p-value ({comparison['test']})",
                    slice_name)]["value"] == comparison["p_value"]

  decision = card["decision"]
  assert (decision["selected"], decision["pushed"], decision["reason"],
          decision["production_decision"]) == (
              selected, results["pushed"], results["reason"], "push")
  assert decision["thresholds"] == results["thresholds"]
  limits = [x["description"] for x in card["considerations"]["limitations"]]
  assert results["power_note"] and results["power_note"] in limits
  graphics = card["quantitative_analysis"]["graphics"]["collection"]
  assert {g["name"]: base64.b64decode(g["image"]) for g in graphics} == \
      FIGURES[task]


@pytest.mark.parametrize("task", sorted(RESULTS))
def test_the_html_is_self_contained_and_states_the_numbers(task):
  results = RESULTS[task]()
  card = model_card.model_card(results, FIGURES[task], VERSION)
  page = HtmlPage(model_card.render_html(card))
  links = [(tag, attrs[k]) for tag, attrs in page.tags
           for k in ("src", "href") if k in attrs]
  assert links and all(v.startswith("data:image/png;base64,")
                       for _, v in links), links
  assert not [tag for tag, _ in page.tags if tag in ("script", "link",
                                                     "iframe", "object")]
  shown = {attrs["alt"]: attrs["src"] for tag, attrs in page.tags
           if tag == "img"}
  assert sorted(shown) == sorted(FIGURES[task])
  for name, src in shown.items():
    data = base64.b64decode(src.split(",", 1)[1])
    expected = Image.open(io.BytesIO(FIGURES[task][name]))
    image = Image.open(io.BytesIO(data))
    assert image.size == expected.size
    assert image.convert("RGB").getpixel((0, 0)) == expected.convert(
        "RGB").getpixel((0, 0))

  rows = {(r[0], r[1]): r[2] for r in page.rows("performance_metrics")}
  for key, value in expected_metrics(results).items():
    assert rows[key] == format(value, model_card.NUMBER), key
  assert page.text("reason") == results["reason"]
  assert page.text("power_note") == results["power_note"]
  assert dict(page.tables["model_details"])["pipeline commit"] == "abc123"
  assert [r[:2] for r in page.rows("splits")] == [["train", "400"],
                                                  ["eval", "100"]]
  assert page.rows("rejected_files") == [[r["path"], r["reason"]]
                                         for r in REJECTED]


def test_hostile_text_is_escaped_in_html_and_markdown():
  results = classification_results()
  card = model_card.model_card(results, FIGURES["classification"], VERSION)
  html = model_card.render_html(card)
  page = HtmlPage(html)
  # The class name and the reason are text on the page, never markup.
  assert "<script" not in html and "<img src=\"http" not in html
  assert [f"train/{HOSTILE}", "150", "1"] in page.rows("class_folders")
  assert ("learned recall", f"eval, image/class={HOSTILE}") in {
      (r[0], r[1]) for r in page.rows("performance_metrics")}
  markdown = model_card.render_markdown(card)
  assert "<script" not in markdown and "<img" not in markdown
  assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown


def test_the_markdown_states_the_numbers_and_figures():
  results = regression_results()
  markdown = model_card.render_markdown(
      model_card.model_card(results, FIGURES["regression"], VERSION))
  for (kind, slice_name), value in expected_metrics(results).items():
    assert f"| {kind} | {slice_name} | {value:.4g} |" in markdown
  for name in FIGURES["regression"]:
    assert f"![{name}]({name})" in markdown
  assert results["reason"] in markdown
  assert "| learned vs bilinear | not_significant: bilinear selected |" in \
      markdown


def test_the_version_names_the_commit_or_says_unknown(monkeypatch):
  monkeypatch.setenv(model_card.COMMIT_ENV, "0123abcd")
  assert model_card.pipeline_version()["commit"] == "0123abcd"
  monkeypatch.delenv(model_card.COMMIT_ENV)
  version = model_card.pipeline_version()
  assert version["commit"] == model_card.UNKNOWN


# The sweep: (name, resizer, input, target, parameters, top-1, FLOPs per
# image, ms per image at batch 1 and 32, SavedModel bytes), cheapest first.
SWEEP = (("bilinear_64_32", "bilinear", 64, 32, 1000, 0.55, 0.5e9, 1.5, 0.4,
          2.0e6),
         ("learned_64_16", "learned", 64, 16, 1100, 0.70, 1.0e9, 2.5, 0.8,
          2.5e6),
         ("learned_64_32", "learned", 64, 32, 1234, 0.75, 2.0e9, 4.0, 1.1,
          3.0e6))
MACHINE = "x86_64, 2 CPUs"
# Each cheaper candidate against the best (learned_64_32): bilinear is
# significantly behind, learned_64_16 not.
PAIRED = {"bilinear_64_32": stats.paired_accuracy(100, 5, 30),
          "learned_64_16": stats.paired_accuracy(100, 8, 10)}


def _cost_record(params, flops, batch1, batch32, saved):
  return {"params": params, "flops_per_image": flops,
          "saved_model_bytes": saved, "latency_ms_batch1": batch1,
          "latency_ms_batch32": batch32, "machine": MACHINE}


def sweep_results():
  """results.json of a 3-candidate classification run, as build_results
  writes it for K candidates, with the sweep's real Decision."""
  base = classification_results()
  template = base["models"]["learned"]
  models, entries = {}, []
  for name, resizer, size, target, params, top1, flops, b1, b32, saved in \
      SWEEP:
    cost = _cost_record(params, flops, b1, b32, saved)
    models[name] = {**template, "resizer": resizer, "input_size": size,
                    "target_size": target, "params": params,
                    "trainable_params": params - 10, "top1": top1,
                    "train_sample_top1": None,
                    "per_class_recall": {"cat": top1 + 0.05,
                                         HOSTILE: top1 - 0.05},
                    "cost": cost}
    entries.append(sweep.Entry(name, top1, cost, True))

  def compare(a, b):
    assert b == "learned_64_32"
    return PAIRED[a]
  decision = sweep.decide(entries, compare, tolerance=0.0, confidence=0.95)
  assert (decision.chosen, decision.outcome) == ("learned_64_16",
                                                 sweep.COSTLIER)
  return {**base, "candidates": [row[0] for row in SWEEP], "models": models,
          "selected": decision.chosen,
          "selection": {"margin": 0.0, "outcome": decision.outcome,
                        "cost": "flops",
                        "budgets": {"max_gflops": 5.0, "max_latency_ms": None},
                        "sweep": decision.as_dict()},
          "front": sweep.front(entries),
          "pushed": decision.chosen,
          "reason": f"{decision.chosen} pushed: {decision.reason}.",
          "power_note": ""}


SWEEP_FIGURES = {**FIGURES["classification"], "pareto.png": _png("red",
                                                                 (9, 3))}


def _expected_costs():
  """{name: the cost cells the card shows}, in the card's units."""
  return {name: [format(flops * 1e-9, model_card.NUMBER),
                 format(b1, model_card.NUMBER), format(b32, model_card.NUMBER),
                 format(saved / 1e6, model_card.NUMBER), MACHINE]
          for name, _, _, _, _, _, flops, b1, b32, saved in SWEEP}


def _sweep_expected_metrics(results):
  """{(type, slice): value}: each candidate's top-1 and recalls, and each
  comparison with the best with its adjusted p-value."""
  decision = results["selection"]["sweep"]
  assert len(decision["comparisons"]) == 2
  expected = {}
  for name in results["candidates"]:
    model = results["models"][name]
    expected[(f"{name} top-1", "eval")] = model["top1"]
    for label, recall in model["per_class_recall"].items():
      expected[(f"{name} recall", f"eval, image/class={label}")] = recall
  for name, c in decision["comparisons"].items():
    kind = f"top-1 gain of {name} over learned_64_32"
    slice_name = f"eval ({c['n']} paired images)"
    expected[(kind, slice_name)] = c["difference"]
    expected[(f"{kind}: adjusted p-value (x2: the best is the highest of 3;"
              " Holm over 2 compared)",
              slice_name)] = decision["adjusted_p"][name]
  return expected


def test_the_card_states_every_candidate_and_the_sweep():
  results = sweep_results()
  card = model_card.model_card(results, SWEEP_FIGURES, VERSION)
  models = card["model_parameters"]["models"]
  assert list(models) == [row[0] for row in SWEEP]
  for name, resizer, size, target, params, _, flops, b1, b32, saved in SWEEP:
    assert (models[name]["resizer"], models[name]["input_size"],
            models[name]["target_size"], models[name]["params"]) == (
                resizer, size, target, params)
    assert models[name]["cost"] == {
        "gflops": pytest.approx(flops / 1e9), "latency_ms_batch1": b1,
        "latency_ms_batch32": b32, "saved_model_mb": pytest.approx(saved / 1e6),
        "machine": MACHINE}
  metrics = _metrics(card)
  for key, value in _sweep_expected_metrics(results).items():
    assert metrics[key]["value"] == value, key
  behind = metrics[("top-1 gain of bilinear_64_32 over learned_64_32",
                    "eval (100 paired images)")]
  assert behind["confidence_interval"] == {
      "lower_bound": PAIRED["bilinear_64_32"].lower,
      "upper_bound": PAIRED["bilinear_64_32"].upper}
  # No learned-vs-bilinear gate of the default pair here.
  assert not [t for t, _ in metrics if t.startswith("top-1 gain of learned "
                                                    "over bilinear")]
  decision = card["decision"]
  assert decision["selection_gate"] == "3 candidates"
  swept = decision["sweep"]
  assert (swept["outcome"], swept["chosen"], swept["best"]) == (
      sweep.COSTLIER, "learned_64_16", "learned_64_32")
  assert swept["dropped"] == [
      {"name": "bilinear_64_32",
       "reason": results["selection"]["sweep"]["dropped"]["bilinear_64_32"]}]
  assert swept["dropped"][0]["reason"].startswith(sweep.BEHIND)
  assert swept["front"] == results["front"]
  assert swept["budgets"] == {"max_gflops": "5", "max_latency_ms": "none"}


def test_the_html_states_every_candidate_and_the_sweep():
  results = sweep_results()
  page = HtmlPage(model_card.render_html(
      model_card.model_card(results, SWEEP_FIGURES, VERSION)))
  assert [r[0] for r in page.rows("models")] == results["candidates"]
  assert {r[0]: r[1:] for r in page.rows("costs")} == _expected_costs()
  rows = {(r[0], r[1]): r[2] for r in page.rows("performance_metrics")}
  for key, value in _sweep_expected_metrics(results).items():
    assert rows[key] == format(value, model_card.NUMBER), key
  swept = dict(page.tables["sweep"])
  assert (swept["outcome"], swept["chosen"], swept["best"]) == (
      "costlier", "learned_64_16", "learned_64_32")
  assert swept["non-dominated front"] == ", ".join(results["front"])
  assert page.text("sweep_reason") == results["selection"]["sweep"]["reason"]
  assert page.rows("dropped") == [
      [n, why] for n, why in results["selection"]["sweep"]["dropped"].items()]
  assert dict(page.tables["decision"])["3 candidates"] == (
      "costlier: learned_64_16 selected")
  shown = {attrs["alt"]: attrs["src"] for tag, attrs in page.tags
           if tag == "img"}
  assert base64.b64decode(shown["pareto.png"].split(",", 1)[1]) == \
      SWEEP_FIGURES["pareto.png"]


def test_the_markdown_states_every_candidate_and_the_sweep():
  results = sweep_results()
  markdown = model_card.render_markdown(
      model_card.model_card(results, SWEEP_FIGURES, VERSION))
  for name, cells in _expected_costs().items():
    assert f"| {name} | {' | '.join(cells)} |" in markdown
  for (kind, slice_name), value in _sweep_expected_metrics(results).items():
    slice_name = html.escape(slice_name, quote=False)  # the hostile class
    assert f"| {kind} | {slice_name} | {value:.4g} |" in markdown
  for name, why in results["selection"]["sweep"]["dropped"].items():
    assert f"| {name} | {html.escape(why, quote=False)} |" in markdown
  assert "| 3 candidates | costlier: learned_64_16 selected |" in markdown
  assert "| best | learned_64_32 |" in markdown
  assert "![pareto.png](pareto.png)" in markdown


def test_the_default_pair_card_states_its_costs():
  results = classification_results()
  records = {"learned": _cost_record(1234, 2.0e9, 4.0, 1.1, 3.0e6),
             "bilinear": _cost_record(1000, 0.5e9, 1.5, 0.4, 2.0e6)}
  for name, record in records.items():
    results["models"][name]["cost"] = record
  card = model_card.model_card(results, FIGURES["classification"], VERSION)
  page = HtmlPage(model_card.render_html(card))
  assert page.rows("costs") == [
      ["learned", "2", "4", "1.1", "3", MACHINE],
      ["bilinear", "0.5", "1.5", "0.4", "2", MACHINE]]
  assert dict(page.tables["decision"])["learned vs bilinear"] == (
      "ahead: learned selected")
  markdown = model_card.render_markdown(card)
  assert f"| bilinear | 0.5 | 1.5 | 0.4 | 2 | {MACHINE} |" in markdown


def test_the_card_states_each_recipe_and_the_image_sizes():
  results = classification_results()
  card = model_card.model_card(results, FIGURES["classification"], VERSION)
  for name, seed in (("learned", 1234), ("bilinear", 1000)):
    assert card["model_parameters"]["models"][name]["recipe"] == {
        **{k: RECIPE[k] for k in model_card.RECIPE}, "seed": seed}
  assert card["model_parameters"]["data"]["image_sizes"] == IMAGE_SIZES
  page = HtmlPage(model_card.render_html(card))
  assert page.tables["recipe"][0] == ["model", *model_card.RECIPE]
  assert page.rows("recipe")[0] == ["learned"] + [str(RECIPE[k]) if k != "seed" else "1234"
                                     for k in model_card.RECIPE]
  assert page.rows("image_sizes") == [
      ["train", "height", "30", "64", "60.5", "480"],
      ["train", "width", "40", "64", "70.25", "640"]]
  markdown = model_card.render_markdown(card)
  assert "| train | width | 40 | 64 | 70.25 | 640 |" in markdown
  assert "| learned | 3 | 8 | 0.002 | cosine |" in markdown
