"""tfx_internals: every probe passes on the pinned TFX and Beam, fails with
InternalChanged (naming its entry) when what it relies on changes, and no
code outside the adapter uses an internal directly."""
import io
import os
import re
import tokenize

from apache_beam.io import tfrecordio
from apache_beam.runners import common as beam_runners_common
import pytest
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen import input_processor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_beam_executor, base_executor
from tfx.orchestration.kubeflow.v2 import step_builder
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.orchestration.kubeflow.v2.file_based_example_gen import \
    driver as kubeflow_example_gen_driver
from tfx.orchestration.local import local_dag_runner

from components import tfx_internals
from testing.helpers import REPO_ROOT as ROOT
from testing.helpers import python_in_fresh_process


def test_verified_versions_are_the_pinned_and_installed_ones():
  with open(os.path.join(ROOT, "constraints.txt")) as f:
    pins = dict(re.findall(r"^([\w.-]+)==(\S+)$", f.read(), re.M))
  for library, version in tfx_internals.VERIFIED.items():
    assert pins[library] == version
    assert tfx_internals.installed(library) == version


@pytest.mark.parametrize("name", sorted(tfx_internals.ENTRIES))
def test_each_probe_passes_on_the_pinned_versions(name):
  tfx_internals.check(name)  # raises InternalChanged otherwise


def _break_hash_split(mp):
  mp.setattr(base_example_gen_executor, "_PartitionFn",
             lambda record, num_partitions, buckets, split_config: 0)


def _break_tfrecord_framing(mp):
  mp.delattr(tfrecordio._TFRecordUtil, "_masked_crc32c")  # pylint: disable=protected-access


def _break_windowed_value(mp, tmp_path):
  source = tmp_path / "common.py"
  source.write_text("def handle(result):\n  return result\n")
  mp.setattr(beam_runners_common, "__file__", str(tmp_path / "common.so"))


def _break_example_gen_do(mp):
  mp.setattr(base_example_gen_executor.BaseExampleGenExecutor, "Do",
             lambda self, input_dict, output_dict, exec_properties: None)


def _break_executor_members(mp):
  mp.delattr(base_executor.BaseExecutor, "_log_startup")


def _break_file_based_init(mp):
  mp.setattr(FileBasedExampleGen, "__init__",
             lambda self, input_base=None: None)


def _break_input_processor(mp):
  mp.setattr(input_processor.FileBasedInputProcessor,
             "get_input_fingerprint", lambda self, span, version: None)


def _break_kubeflow_driver(mp):
  mp.delattr(kubeflow_example_gen_driver, "_parse_flags")


def _break_pre_cache_check(mp):
  mp.setattr(step_builder, "_DRIVER_COMMANDS",
             ("python", "-m", "tfx.some.new.driver"))


def _break_evaluator_typed(mp):
  mp.setattr(kubeflow_v2_run_executor, "_run_executor",
             lambda args, beam_args: None)


def _break_entrypoint_flags(mp):
  mp.setattr(kubeflow_v2_run_executor, "_parse_flags",
             lambda argv: (argv, []))


def _break_pusher_marks(mp):
  mp.setattr(pusher_executor.Executor, "_MarkPushed",
             lambda self, model_push, pushed_destination,
             pushed_version=None: None)


def _break_local_launcher(mp):
  mp.setattr(local_dag_runner, "launcher", object())


def _break_beam_executor_argv(mp):
  mp.setattr(base_beam_executor.BaseBeamExecutor, "__init__",
             lambda self, context=None: None)


# A change of what each entry relies on, as a TFX or Beam upgrade could make.
BREAKS = {
    "example_gen_hash_split": _break_hash_split,
    "tfrecord_framing": _break_tfrecord_framing,
    "windowed_value": _break_windowed_value,
    "example_gen_do": _break_example_gen_do,
    "executor_protected_members": _break_executor_members,
    "file_based_example_gen_init": _break_file_based_init,
    "input_processor_fingerprint": _break_input_processor,
    "kubeflow_example_gen_driver": _break_kubeflow_driver,
    "pre_cache_check_command": _break_pre_cache_check,
    "evaluator_typed_executor": _break_evaluator_typed,
    "vertex_entrypoint_flags": _break_entrypoint_flags,
    "pusher_marks": _break_pusher_marks,
    "local_launcher": _break_local_launcher,
    "beam_executor_argv": _break_beam_executor_argv,
}


def test_every_entry_has_a_simulated_change():
  assert set(BREAKS) == set(tfx_internals.ENTRIES)


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_changed_library_fails_the_probe_naming_the_entry(
    name, monkeypatch, tmp_path):
  brk = BREAKS[name]
  if "tmp_path" in brk.__code__.co_varnames:
    brk(monkeypatch, tmp_path)
  else:
    brk(monkeypatch)
  with pytest.raises(tfx_internals.InternalChanged) as raised:
    tfx_internals.check(name)
  message = str(raised.value)
  assert f"entry {name!r}" in message
  assert "Re-check " + tfx_internals.ENTRIES[name].recheck in message


def test_a_changed_library_fails_the_import():
  script = (
      "from tfx.components.example_gen import base_example_gen_executor as m\n"
      "del m._PartitionFn\n"
      "import components.tfx_internals\n")
  run = python_in_fresh_process(script)
  assert run.returncode != 0
  assert ("InternalChanged: components/tfx_internals.py, entry "
          "'example_gen_hash_split'") in run.stderr


def _code_only(source: str) -> str:
  """`source` without its comments and strings."""
  kept = []
  for token in tokenize.generate_tokens(io.StringIO(source).readline):
    if token.type not in (tokenize.COMMENT, tokenize.STRING):
      kept.append(token.string)
  return " ".join(kept)


def uses_of_internals(source: str):
  code = _code_only(source)
  return sorted({name for name, entry in tfx_internals.ENTRIES.items()
                 for pattern in entry.patterns if re.search(pattern, code)})


def test_the_scan_finds_code_not_comments_or_strings():
  assert uses_of_internals(
      "x = base_example_gen_executor._PartitionFn(e, 2, b, c)\n") == [
          "example_gen_hash_split"]
  assert uses_of_internals(
      "with mock.patch.object(sys, 'argv', sys.argv[:1]):\n  pass\n") == [
          "beam_executor_argv"]
  assert uses_of_internals(
      "# _PartitionFn\ns = '_TFRecordUtil.write_record'\n") == []


def _project_files():
  """Every .py file of the project but the adapter and its test."""
  own = {os.path.abspath(tfx_internals.__file__), os.path.abspath(__file__)}
  for folder, dirs, files in os.walk(ROOT):
    dirs[:] = [d for d in dirs
               if not d.startswith(".") and d != "__pycache__"
               and not (folder == ROOT and d in ("build", "dist"))]
    for name in files:
      path = os.path.join(folder, name)
      if name.endswith(".py") and path not in own:
        yield path


def test_no_code_outside_the_adapter_uses_an_internal():
  found = {}
  for path in _project_files():
    with open(path, encoding="utf-8") as f:
      used = uses_of_internals(f.read())
    if used:
      found[os.path.relpath(path, ROOT)] = used
  assert found == {}
