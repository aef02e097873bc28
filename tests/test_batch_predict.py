"""`resizer-pipeline predict --input DIR --output FILE.jsonl`: the batch job
gives every file under DIR the small form's answer or reason, on one Beam
worker in this process and on two worker processes; Dataflow's options are
compile's."""
import json
import os

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import cli
from testing import bad_inputs
from testing.helpers import (PORTRAIT_REFUSED, hostile_model,
                             python_in_fresh_process, save_color_model)

GOOD = ["small_40x30.jpg", "palette.png", "photo.webp", "photo.bmp",
        "anim.gif", "photo.tiff"]
BAD = ["truncated.jpg", "notes.jpg", "bomb.png", "empty.jpg"]
NESTED = "sub/deeper/exif6.jpg"  # portrait once upright: the model refuses it
NOT_UTF8 = b"caf\xe9.jpg"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  """Good images in six formats, bad files, a nested and a hidden image, a
  FIFO, a dangling symlink and a name that isn't UTF-8; (folder, model,
  the regular files' paths)."""
  root = tmp_path_factory.mktemp("batch")
  data = root / "images"
  corpus = bad_inputs.file_corpus()
  (data / "sub" / "deeper").mkdir(parents=True)
  regular = []
  for name in GOOD + BAD:
    (data / name).write_bytes(corpus[name])
    regular.append(str(data / name))
  (data / NESTED).write_bytes(corpus["exif6.jpg"])
  (data / ".hidden.png").write_bytes(corpus["rgba.png"])
  regular += [str(data / NESTED), str(data / ".hidden.png")]
  os.mkfifo(data / "pipe.jpg")  # reading it would block: never read
  (data / "gone.jpg").symlink_to(root / "missing.jpg")
  with open(os.path.join(os.fsencode(data), NOT_UTF8), "wb") as f:
    f.write(corpus["small_40x30.jpg"])
  model = save_color_model(root / "model", refuse_portrait=True)
  return data, model, regular


def _small_form(model, paths, capsys):
  """The small form's JSON results by file."""
  rc = cli.main(["predict", "--model", model, "--json", *paths])
  assert rc == 1
  return {r["file"]: r for r in json.loads(capsys.readouterr().out)["results"]}


def _assert_same(got, want):
  """The same result; probabilities to 1e-6: a batch of other images may
  change the last bits of the model's float sums."""
  def probabilities(result):
    return [c.pop("probability") for c in result.get("top", [])]
  got, want = json.loads(json.dumps(got)), json.loads(json.dumps(want))
  assert probabilities(got) == pytest.approx(probabilities(want), abs=1e-6)
  assert got == want


@pytest.mark.parametrize("workers", [1, 2])
def test_every_file_gets_one_line_with_the_small_forms_answer(
    folder, tmp_path, capsys, workers):
  data, model, regular = folder
  expected = _small_form(model, regular, capsys)
  out = tmp_path / "preds" / "predictions.jsonl"
  rc = cli.main(["predict", "--model", model, "--input", str(data),
                 "--output", str(out), "--workers", str(workers),
                 "--batch-size", "3"])
  err = capsys.readouterr().err
  assert rc == 1
  lines = [json.loads(line) for line in out.read_text().splitlines()]
  assert os.listdir(out.parent) == ["predictions.jsonl"]  # no shards left
  special = {str(data / "pipe.jpg"): "not a regular file (a FIFO, socket or "
             "device)",
             str(data / "gone.jpg"): f"dangling symlink (to "
             f"{data.parent / 'missing.jpg'}, which does not exist)",
             f"{data}/caf\\xe9.jpg": "file name is not valid UTF-8; rename it"}
  files = [line["file"] for line in lines]
  assert sorted(files) == sorted(regular + list(special))  # each once
  by_file = {line["file"]: line for line in lines}
  for path in regular:  # the same answers, probabilities and reasons
    _assert_same(by_file[path], expected[path])
  for path, reason in special.items():
    assert by_file[path] == {"file": path, "error": reason}
  # The small form's answers are real ones: six formats and the hidden file
  # answered, the model's own refusal and each bad file's reason kept.
  answered = sorted(os.path.basename(p) for p in regular
                    if "top" in expected[p])
  assert answered == sorted(GOOD + [".hidden.png"])
  assert expected[str(data / NESTED)]["error"] == PORTRAIT_REFUSED
  assert expected[str(data / "bomb.png")]["error"].startswith(
      "image is 100000x100000 = 10000000000 pixels, above this model's limit")
  assert expected[str(data / "empty.jpg")]["error"] == "is empty"
  assert err.splitlines()[-1] == (f"{out}: 15 files, 7 answered, 8 with an "
                                  "error")


def test_a_folder_of_good_images_exits_0(tmp_path, capsys):
  data = tmp_path / "images"
  data.mkdir()
  corpus = bad_inputs.file_corpus()
  for name in GOOD[:2]:
    (data / name).write_bytes(corpus[name])
  out = tmp_path / "p.jsonl"
  rc = cli.main(["predict", "--model", save_color_model(tmp_path / "m"),
                 "--input", str(data), "--output", str(out), "--workers",
                 "1", "--top", "1"])
  lines = [json.loads(line) for line in out.read_text().splitlines()]
  assert rc == 0 and len(lines) == 2
  assert all(len(line["top"]) == 1 for line in lines)  # --top


def test_a_hostile_model_is_refused_before_the_job_starts(tmp_path, capsys):
  path, marker = hostile_model(tmp_path, "initializer")
  (tmp_path / "in").mkdir()
  (tmp_path / "in" / "a.jpg").write_bytes(
      bad_inputs.file_corpus()["small_40x30.jpg"])
  out = tmp_path / "p.jsonl"
  rc = cli.main(["predict", "--model", path, "--input", str(tmp_path / "in"),
                 "--output", str(out), "--workers", "2"])
  err = capsys.readouterr().err
  assert rc == 2 and err.count("\n") == 1
  assert err.startswith(f"resizer-pipeline: error: --model: {path} runs what "
                        "the models of this pipeline don't: ")
  assert not marker.exists() and not out.exists()


def _one_image(folder):
  folder.mkdir()
  (folder / "a.jpg").write_bytes(bad_inputs.file_corpus()["small_40x30.jpg"])
  return str(folder)


@pytest.mark.parametrize("make, message", [
    (lambda p: (str(p / "nope"), str(p / "p.jsonl")),
     "--input: {0} does not exist; give an image folder or file, local or "
     "gs://"),
    (lambda p: ((p / "empty").mkdir() or str(p / "empty"), str(p / "p.jsonl")),
     "--input: {0} holds no files; give a folder of images"),
    (lambda p: (_one_image(p / "in"), str(p / "in")),
     "--output: {1} is a folder; give a file name, e.g. {1}/predictions.jsonl"),
    (lambda p: (_one_image(p / "in"), str(p / "in" / "a.jpg")),
     "--output: {1} is one of the --input files; give another file name"),
    (lambda p: (_one_image(p / "in") + "/a.jpg", str(p / "in" / "a.jpg")),
     "--output: {1} is one of the --input files; give another file name"),
])
def test_an_unusable_input_or_output_exits_2_touching_nothing(
    tmp_path, capsys, make, message):
  model = save_color_model(tmp_path / "m")
  data, out = make(tmp_path)
  before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
  rc = cli.main(["predict", "--model", model, "--input", data, "--output",
                 out])
  assert rc == 2 and capsys.readouterr().err == (
      f"resizer-pipeline: error: {message.format(data, out)}\n")
  assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
  if os.path.isfile(out):  # the input file is as it was
    assert open(out, "rb").read() == bad_inputs.file_corpus()[
        "small_40x30.jpg"]


DATAFLOW = {"project": "proj", "region": "europe-west4", "image": "img:1",
            "service_account": "sa@proj.iam.gserviceaccount.com",
            "dataflow_temp_location": "gs://b/scratch",
            "dataflow_machine_type": "n2-standard-8",
            "dataflow_max_workers": "3"}


def _flags(settings):
  return [x for key, value in settings.items()
          for x in ("--" + key.replace("_", "-"), value)]


def _dataflow_args(settings, output="gs://b/out/p.jsonl"):
  args = cli.build_parser().parse_args(
      ["predict", "--model", "gs://b/serving", "--input", "gs://b/in",
       "--output", output, "--runner", "DataflowRunner", *_flags(settings)])
  return cli.predict_beam_args(args)


@pytest.mark.parametrize("extra", [{}, {"dataflow_setup_file": "/s/setup.py"}])
def test_dataflow_options_are_compiles(extra):
  settings = {**DATAFLOW, **extra}
  options = PipelineOptions(_dataflow_args(settings)).get_all_options(
      drop_default=True)
  compile_options = PipelineOptions(
      cli.compile_config(settings).beam_pipeline_args()).get_all_options(
          drop_default=True)
  assert options == compile_options
  assert options == {
      "runner": "DataflowRunner", "project": "proj", "region": "europe-west4",
      "temp_location": "gs://b/scratch", "machine_type": "n2-standard-8",
      "max_num_workers": 3,
      "service_account_email": "sa@proj.iam.gserviceaccount.com",
      **({"setup_file": "/s/setup.py"} if extra else
         {"sdk_container_image": "img:1"})}


def test_dataflow_scratch_defaults_beside_the_output():
  settings = {k: v for k, v in DATAFLOW.items()
              if k != "dataflow_temp_location"}
  assert "--temp_location=gs://b/out/tmp" in _dataflow_args(settings)


# Each refused before TensorFlow or Beam is imported (checked below).
REFUSED = [
    (["--input", "in", "a.jpg", "--output", "p.jsonl"],
     "--input: give IMAGE files or --input, not both (got a.jpg and --input "
     "in)"),
    (["--output", "p.jsonl", "a.jpg"],
     "--output: only for a batch job: add --input FOLDER, or leave it out to "
     "answer IMAGE files"),
    (["--workers", "2", "a.jpg"], "--workers: only for a batch job"),
    ([], "give IMAGE files, or --input FOLDER --output FILE.jsonl"),
    (["--input", "in"], "--output: give the JSON lines file"),
    (["--input", "in", "--output", "p.jsonl", "--json"], "--json: the batch "
     "job writes JSON lines to --output; leave --json out"),
    (["--input", "in", "--output", "p.jsonl", "--batch-size", "0"],
     "--batch-size: must be at least 1"),
    (["--input", "in", "--output", "p.jsonl", "--workers", "0"],
     "--workers: must be at least 1"),
    (["--input", "in", "--output", "p.jsonl", "--project", "p"],
     "--project: only for --runner DataflowRunner"),
    (["--input", "gs://b/in", "--output", "gs://b/p.jsonl", "--runner",
      "DataflowRunner", "--project", "p", "--image", "i"],
     "--model: Dataflow workers read and write Cloud Storage, not m: give "
     "gs://BUCKET/PATH"),
    (["--model", "gs://b/m", "--input", "in", "--output", "gs://b/p.jsonl",
      "--runner", "DataflowRunner", "--project", "p", "--image", "i"],
     "--input: Dataflow workers read and write Cloud Storage, not in: give "
     "gs://BUCKET/PATH"),
    (["--model", "gs://b/m", "--input", "gs://b/in", "--output", "p.jsonl",
      "--runner", "DataflowRunner", "--project", "p", "--image", "i"],
     "--output: Dataflow workers read and write Cloud Storage, not p.jsonl: "
     "give gs://BUCKET/PATH"),
    (["--model", "gs://b/m", "--input", "gs://b/in", "--output",
      "gs://b/p.jsonl", "--runner", "DataflowRunner", "--project", "p"],
     "--image: give the pipeline image built from ./Dockerfile and pushed to "
     "Artifact Registry, or --dataflow-setup-file"),
    (["--model", "gs://b/m", "--input", "gs://b/in", "--output",
      "gs://b/p.jsonl", "--runner", "DataflowRunner", "--image", "i",
      "--project", "p", "--workers", "2"],
     "--workers: DirectRunner's; Dataflow's is --dataflow-max-workers"),
]


def test_flags_that_dont_go_together_exit_2_without_tensorflow():
  script = (
      "import json, sys\n"
      "from pipeline import cli\n"
      "codes = [cli.main(['predict', '--model', 'm'] + json.loads(a))\n"
      "         for a in sys.argv[1:]]\n"
      "print(json.dumps([codes, sorted(m for m in ('tensorflow', "
      "'apache_beam') if m in sys.modules)]))\n")
  run = python_in_fresh_process(script, *(json.dumps(a) for a, _ in REFUSED))
  codes, imported = json.loads(run.stdout.splitlines()[-1])
  assert codes == [2] * len(REFUSED) and imported == []
  errors = run.stderr.splitlines()
  assert len(errors) == len(REFUSED), run.stderr
  for error, (_, message) in zip(errors, REFUSED):
    assert error.startswith(f"resizer-pipeline: error: {message}"), error
