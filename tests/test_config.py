"""Bad settings fail before any component runs, with one clear line."""
import pytest

from pipeline import cli
from pipeline.config import (ConfigError, PipelineConfig, VertexConfig,
                             trainer_settings)
from testing.helpers import no_network, tiny_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  path = tmp_path_factory.mktemp("data")
  tiny_dataset(path, per_class=2)
  return str(path)


@pytest.mark.parametrize("flags, message", [
    (["--backbone", "vgg99"], "--backbone: unknown backbone 'vgg99'"),
    (["--input-size", "64", "--target-size", "64"], "--target-size: target size 64"),
    (["--batch-size", "0"], "--batch-size: batch size must be at least 1"),
    (["--layout", "nested"], "--layout: choose one of"),
    (["--strategy", "gpu"], "--strategy: choose one of"),
    (["--beam-mode", "multi_process"], "--beam-mode: choose one of"),
    # Above PIL's own (process-wide, left alone) decompression-bomb limit.
    (["--max-pixels", "200000000"], "--max-pixels: must be at most "
     "178956970, PIL's own decompression-bomb limit"),
])
def test_bad_settings_exit_2_with_one_line(data, tmp_path, capsys, flags,
                                           message):
  rc = cli.main(["run", "--data", data, "--output", str(tmp_path / "o")] + flags)
  err = capsys.readouterr().err.strip()
  assert rc == 2
  assert message in err and len(err.splitlines()) == 1
  assert not (tmp_path / "o").exists()  # nothing ran


def test_missing_data_folder(tmp_path, capsys):
  rc = cli.main(["run", "--data", str(tmp_path / "nope"), "--output",
                 str(tmp_path / "o")])
  assert rc == 2 and "--data:" in capsys.readouterr().err


def test_output_that_is_a_file(data, tmp_path, capsys):
  out = tmp_path / "file"
  out.write_text("x")
  rc = cli.main(["run", "--data", data, "--output", str(out)])
  assert rc == 2 and "--output:" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
  with pytest.raises(SystemExit):
    cli.main(["run", "--help"])
  text = capsys.readouterr().out
  for option in cli.options("run"):
    assert option.flag in text
  for flag in ("--data", "--output", "--no-cache"):
    assert flag in text


def test_flags_map_onto_the_typed_config(data, tmp_path):
  args = cli.build_parser().parse_args(
      ["run", "--data", data, "--output", str(tmp_path), "--backbone",
       "tiny_cnn", "--res-blocks", "2", "--min-gain", "0.05", "--weights",
       "none"])
  config = cli.config_from_args(args)
  assert config.model.backbone == "tiny_cnn" and config.model.res_blocks == 2
  assert config.eval.min_gain == 0.05 and config.model.weights is None
  assert config.trainer_config("learned")["resizer"] == "learned"
  # The default pair differs only in the resizer and the candidate's name.
  assert {k: v for k, v in config.trainer_config("learned").items()
          if k not in ("resizer", "candidate")} == {
              k: v for k, v in config.trainer_config("bilinear").items()
              if k not in ("resizer", "candidate")}
  with pytest.raises(ConfigError):
    config.data.eval_percent = 0
    config.validate()


def test_candidates_flag_sets_each_trainers_sizes_and_the_stored_size(
    data, tmp_path):
  args = cli.build_parser().parse_args(
      ["run", "--data", data, "--output", str(tmp_path), "--input-size", "64",
       "--candidates", "bilinear:32", "learned:64-32", "learned:48-24",
       "--cost", "latency", "--max-gflops", "2.5"])
  config = cli.config_from_args(args)
  config.validate()
  assert [c.name for c in config.candidate_list()] == [
      "bilinear", "learned_64_32", "learned_48_24"]
  assert config.transform_config()["input_size"] == 64
  small = config.trainer_config("learned_48_24")
  assert (small["resizer"], small["input_size"], small["target_size"],
          small["stored_size"], small["candidate"]) == (
              "learned", 48, 24, 64, "learned_48_24")
  assert trainer_settings(small).stored_size == 64
  assert (config.eval.cost, config.budgets()) == (
      "latency", {"max_gflops": 2.5, "max_latency_ms": None})
  # compile's --config JSON takes the list as a list.
  compiled = cli.compile_config({"candidates": ["learned:64-32", "bilinear:16"],
                                 "input_size": 64})
  assert [c.spelling for c in compiled.candidate_list()] == [
      "learned:64-32", "bilinear:64-16"]


@pytest.mark.parametrize("flags, words", [
    (["--candidates", "learned:64-32", "nearest:32"], ["--candidates",
                                                       "'nearest:32'"]),
    (["--candidates", "learned:64-32"], ["--candidates", "at least two"]),
    (["--cost", "watts"], ["--cost", "flops, latency"]),
    (["--max-latency-ms", "0"], ["--max-latency-ms", "positive"]),
])
def test_bad_candidates_and_budgets_are_refused_by_name(data, tmp_path, flags,
                                                        words):
  args = cli.build_parser().parse_args(
      ["run", "--data", data, "--output", str(tmp_path)] + flags)
  with pytest.raises(ConfigError) as error:
    cli.config_from_args(args).validate()
  for word in words:
    assert word in str(error.value)


def test_local_beam_args_stop_tfx_building_its_sdist():
  """TFX adds --extra_package=<a fresh tfx_ephemeral sdist> to Beam args with
  no dependency flag: seconds and 52 MB of /tmp per Beam component locally."""
  from tfx.utils import dependency_utils  # pylint: disable=import-outside-toplevel
  args = PipelineConfig(output="/tmp/x").beam_pipeline_args()
  assert args[:2] == ["--direct_running_mode=in_memory",
                      "--direct_num_workers=1"]
  assert any(a.startswith("--setup_file=") and a.endswith("/setup.py")
             for a in args)
  assert dependency_utils.make_beam_dependency_flags(args) == args


def _run_weights(data, tmp_path, capsys, weights, *flags):
  rc = cli.main(["run", "--data", data, "--output", str(tmp_path / "o"),
                 "--weights", weights] + list(flags))
  err = capsys.readouterr().err.strip()
  assert not (tmp_path / "o").exists()  # checked before anything ran
  return rc, err


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing_notop.h5", "does not exist"),
    (lambda p: (p / "w.h5").write_bytes(b"<html>not found</html>") and
     p / "w.h5", "is not an HDF5 (.h5) weights file"),
    (lambda p: (p / "serving").mkdir() or p / "serving",
     "is a folder without saved_model.pb"),
    (lambda p: "ram://nowhere/notop.h5", "does not exist"),
])
def test_unusable_weights_stop_the_run_at_once(data, tmp_path, capsys, make,
                                               message):
  path = str(make(tmp_path))
  rc, err = _run_weights(data, tmp_path, capsys, path)
  assert rc == 2 and len(err.splitlines()) == 1
  assert f"error: --weights: {path} {message}" in err
  assert "give a keras.applications no-top .h5 file" in err  # the fix


def test_usable_weights_paths_pass_validation(data, tmp_path):
  import h5py  # pylint: disable=import-outside-toplevel
  with h5py.File(tmp_path / "notop.h5", "w") as f:  # what save_weights writes
    f.attrs["layer_names"] = []
  pushed = tmp_path / "serving" / "1700000000"
  pushed.mkdir(parents=True)
  (pushed / "saved_model.pb").write_bytes(b"graph")
  (pushed / "keras_metadata.pb").write_bytes(b"")  # a Keras model's layers
  for weights in (tmp_path / "notop.h5", pushed, tmp_path / "serving"):
    config = PipelineConfig(output=str(tmp_path / "o"))
    config.data.path = data
    config.model.weights = str(weights)
    config.validate()


def test_imagenet_needs_an_applications_backbone(data, tmp_path, capsys):
  rc, err = _run_weights(data, tmp_path, capsys, "imagenet", "--backbone",
                         "tiny_cnn")
  assert rc == 2
  assert "--weights: backbone tiny_cnn has no ImageNet weights" in err


def test_vertex_weights_must_be_on_cloud_storage(tmp_path):
  config = PipelineConfig(output="gs://b/out", vertex=VertexConfig(
      project="p", image="i"))
  config.data.path = "gs://b/images"
  config.data.layout = "flat"
  config.model.weights = str(tmp_path / "notop.h5")
  with pytest.raises(ConfigError, match="--weights: Vertex training replicas "
                     "can't read"):
    config.validate()
  config.model.weights = "gs://b/notop.h5"  # not read: compiling is offline
  with no_network() as attempts:
    config.validate()
  assert attempts == []


def test_errors_quoting_a_path_escape_its_control_characters(tmp_path,
                                                              capsys):
  missing = tmp_path / "da\x1b[31mta"
  assert cli.main(["run", "--data", str(missing), "--output",
                   str(tmp_path / "out")]) == 2
  err = capsys.readouterr().err
  assert "\x1b" not in err
  assert f"--data: {tmp_path}/da\\x1b[31mta is not a folder" in err


def test_the_cli_starts_without_tensorflow(tmp_path):
  """--help of every command, and submit, load no TensorFlow, TFX or Beam:
  the typed config, the tasks and the choice lists are plain Python."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  pipeline_file = tmp_path / "p.json"
  pipeline_file.write_text('{"displayName": "x"}')
  script = (
      "import sys\n"
      "from pipeline import cli\n"
      "for argv in (['--help'], ['run', '--help'], ['compile', '--help'],\n"
      "             ['submit', '--help'], ['predict', '--help']):\n"
      "  try:\n"
      "    cli.main(argv)\n"
      "  except SystemExit:\n"
      "    pass\n"
      f"cli.main(['submit', '--pipeline', {str(pipeline_file)!r},\n"
      "          '--project', 'p', '--region', 'r'])\n"
      "print(sorted(m for m in ('tensorflow', 'tfx', 'apache_beam')\n"
      "             if m in sys.modules))\n")
  root = __file__.rsplit("/tests/", 1)[0]
  out = subprocess.run([sys.executable, "-c", script], cwd=root, check=True,
                       capture_output=True, text=True, timeout=300,
                       env={"PATH": "/usr/bin:/bin", "NO_GCE_CHECK": "True"})
  assert out.stdout.strip().splitlines()[-1] == "[]"
