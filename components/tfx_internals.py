"""Every use of a TFX or Apache Beam internal in the project, one entry each.

An internal is a private name (`_x`), behaviour outside the libraries' public
API, a monkey-patch, an edit of compiled output or an executor-typing trick.
Each entry (ENTRIES) says what it relies on and why no public API does it,
and has a probe that runs when this module is imported: when the installed
TFX or Beam no longer does what the entry relies on, the import fails with
InternalChanged (a RuntimeError) naming the entry and what to re-check. The
probes were written against VERIFIED, the versions constraints.txt pins.

Code elsewhere uses these through the names below, never the internals
themselves (tfx_internals_test.py greps the code base for them; tests/ alone
calls TFX's Vertex entry points as Vertex's containers do). Upgrading
TFX or Beam: import this module, fix each entry that fails (or drop it where
a public API now does the job), then update VERIFIED and constraints.txt.
"""
import contextlib
import dataclasses
import hashlib
import inspect
import os
from importlib import metadata
from typing import Callable, Dict, Optional, Sequence, Tuple

from apache_beam.io import tfrecordio
from apache_beam.runners import common as beam_runners_common
from apache_beam.transforms import window
from apache_beam.utils import timestamp as beam_timestamp
from apache_beam.utils import windowed_value
import tensorflow as tf
from tfx.components.evaluator import executor as evaluator_executor
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen import driver as example_gen_driver
from tfx.components.example_gen import input_processor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import base_beam_executor, base_executor
from tfx.orchestration.kubeflow.v2 import step_builder
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.orchestration.kubeflow.v2.file_based_example_gen import \
    driver as kubeflow_example_gen_driver
from tfx.orchestration.local import local_dag_runner
from tfx.orchestration.portable import launcher
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts

# The versions every probe was written and checked against: constraints.txt's
# pins (tfx_internals_test.py keeps the two equal).
VERIFIED = {"tfx": "1.16.0", "apache-beam": "2.59.0"}


class InternalChanged(RuntimeError):
  """An installed TFX or Beam no longer does what an entry relies on."""


@dataclasses.dataclass(frozen=True)
class Internal:
  name: str
  library: str              # a key of VERIFIED
  relies_on: str
  why: str                  # why no public API does it
  recheck: str              # what to look at when the probe fails
  probe: Callable[[], None]  # raises when the reliance no longer holds
  # Regular expressions for code that uses the internal directly; outside
  # this module none may match (comments and strings aside).
  patterns: Tuple[str, ...] = ()


ENTRIES: Dict[str, Internal] = {}


def _entry(name, library, relies_on, why, recheck, patterns=()):
  def register(probe):
    ENTRIES[name] = Internal(name, library, relies_on, why, recheck, probe,
                             tuple(patterns))
    return probe
  return register


def installed(library: str) -> str:
  try:
    return metadata.version(library)
  except metadata.PackageNotFoundError:
    return "not installed"


def check(name: str) -> None:
  """Runs entry `name`'s probe; raises InternalChanged when it fails."""
  entry = ENTRIES[name]
  try:
    entry.probe()
  except Exception as e:  # pylint: disable=broad-except
    raise InternalChanged(
        f"components/tfx_internals.py, entry {name!r}: {type(e).__name__}: "
        f"{e}. The project relies on {entry.relies_on} (written for "
        f"{entry.library} {VERIFIED[entry.library]}; installed: "
        f"{installed(entry.library)}). Re-check {entry.recheck}, then update "
        "the entry.") from e


def _parameters(function, *expected: str) -> None:
  """`function`'s parameters start with `expected` (self included)."""
  names = tuple(inspect.signature(function).parameters)
  if names[:len(expected)] != expected:
    raise TypeError(f"{function.__qualname__} takes {names}, expected "
                    f"{expected} first")


def _source_has(function, *snippets: str) -> None:
  source = inspect.getsource(function)
  for snippet in snippets:
    if snippet not in source:
      raise AssertionError(f"{function.__qualname__} no longer contains "
                           f"{snippet!r}")


def _source_sha256(function, expected: str) -> None:
  digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()
  if digest != expected:
    raise AssertionError(f"the source of {function.__qualname__} changed "
                         f"(sha256 {digest}, was {expected})")


# ---- ImageExampleGen -------------------------------------------------------

@_entry(
    "example_gen_hash_split", "tfx",
    "tfx.components.example_gen.base_example_gen_executor._PartitionFn("
    "record, num_partitions, buckets, split_config): the split TFX's "
    "ExampleGen gives a record under a hash SplitConfig",
    "TFX applies it only inside its own GenerateExamplesByBeam, as a Beam "
    "Partition; ImageExampleGen picks each file's split in its decode "
    "threads and must pick the one TFX would",
    "that _PartitionFn still hashes partition_feature_name's bytes into the "
    "same buckets (a change re-splits every flat dataset)",
    [r"\b_PartitionFn\b"])
def _probe_hash_split():
  partition = base_example_gen_executor._PartitionFn  # pylint: disable=protected-access
  _parameters(partition, "record", "num_partitions", "buckets", "split_config")
  config = example_gen_pb2.SplitConfig(splits=[
      example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=80),
      example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=20)],
                                       partition_feature_name="x")
  got = [partition(tf.train.Example(features=tf.train.Features(feature={
      "x": tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[bytes([i])]))})), 2, [80, 100], config) for i in range(16)]
  if got != [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0]:
    raise AssertionError(f"bytes 0..15 now go to partitions {got}")


@_entry(
    "tfrecord_framing", "apache-beam",
    "apache_beam.io.tfrecordio._TFRecordUtil: write_record(file_handle, "
    "value) frames one TFRecord, _masked_crc32c(value, crc32c_fn) masks a "
    "crc32c as TFRecords store it",
    "Beam frames records only inside its TFRecord sink, whose only switch to "
    "a faster crc32c is a process-wide global; ImageExampleGen frames "
    "records in its decode threads (image_example_gen/beam_io.py)",
    "_TFRecordUtil's framing and masking against "
    "image_example_gen/beam_io.py's tfrecord()",
    [r"\b_TFRecordUtil\b"])
def _probe_tfrecord_framing():
  util = tfrecordio._TFRecordUtil  # pylint: disable=protected-access
  _parameters(util.write_record, "file_handle", "value")
  _parameters(util._masked_crc32c, "value", "crc32c_fn")  # pylint: disable=protected-access
  seen = []
  check_value = 0xE3069283  # crc32c(b"123456789"), the standard check value
  masked = util._masked_crc32c(  # pylint: disable=protected-access
      b"123456789", crc32c_fn=lambda v: seen.append(v) or check_value)
  if seen != [b"123456789"] or masked != 0xC78AB0E5:
    raise AssertionError(f"masked crc32c {masked:#x} (crc32c_fn called with "
                         f"{seen}), expected 0xc78ab0e5")


@_entry(
    "windowed_value", "apache-beam",
    "apache_beam.utils.windowed_value.WindowedValue(value, timestamp, "
    "windows): a DoFn output that keeps its own timestamp and window, which "
    "Beam's runners pass on as is (and require from finish_bundle)",
    "beam.window.TimestampedValue sets a timestamp only; ImageExampleGen's "
    "DoFn emits a chunk's outputs after the next chunk arrived or from "
    "finish_bundle, in the chunk's own window",
    "WindowedValue's constructor and Beam's handling of WindowedValue "
    "outputs (apache_beam/runners/common.py)",
    [r"\bwindowed_value\b"])
def _probe_windowed_value():
  windows = (window.GlobalWindow(),)
  value = windowed_value.WindowedValue("v", 5, windows)
  if (value.value, value.timestamp, tuple(value.windows)) != (
      "v", beam_timestamp.Timestamp(5), windows):
    raise AssertionError("WindowedValue('v', 5, (GlobalWindow(),)) holds "
                         f"{(value.value, value.timestamp, value.windows)}")
  # Compiled with Cython: its source ships beside it.
  source = os.path.join(os.path.dirname(beam_runners_common.__file__),
                        "common.py")
  with open(source, encoding="utf-8") as f:
    text = f.read()
  if text.count("if isinstance(result, WindowedValue):") != 2:
    raise AssertionError(f"{source} no longer passes WindowedValue outputs "
                         "on as they are (from process and finish_bundle)")


@_entry(
    "example_gen_do", "tfx",
    "BaseExampleGenExecutor.Do as in the verified TFX (its source's sha256 "
    "below): ImageExampleGen's Executor.Do is a copy of it that writes each "
    "split with its own sink",
    "TFX's Do always writes with WriteSplit (a Reshuffle, then gzip at "
    "level 6) and has no hook for the sink",
    "BaseExampleGenExecutor.Do against image_example_gen/executor.py's "
    "Executor.Do, carry over what changed, then record the new digest")
def _probe_example_gen_do():
  _source_sha256(
      base_example_gen_executor.BaseExampleGenExecutor.Do,
      "f230f6699c2c803c0ebc376993dd44f82ef6f4d0b869ca75d5ade62b5d2074ea")


@_entry(
    "executor_protected_members", "tfx",
    "BaseExecutor's _log_startup(inputs, outputs, exec_properties) and "
    "_context (the context it was built with), and "
    "BaseBeamExecutor._make_beam_pipeline() (the Beam pipeline of its "
    "beam_pipeline_args)",
    "members meant for TFX's own executors; an executor that replaces Do "
    "(ImageExampleGen, AtomicPusher, SweepEvaluator) or runs others "
    "(VertexPusher) has no public way to them",
    "BaseExecutor.__init__, _log_startup and "
    "BaseBeamExecutor._make_beam_pipeline",
    [r"\b_log_startup\b", r"\b_make_beam_pipeline\b", r"\._context\b"])
def _probe_executor_members():
  _parameters(base_executor.BaseExecutor._log_startup,  # pylint: disable=protected-access
              "self", "inputs", "outputs", "exec_properties")
  _parameters(base_beam_executor.BaseBeamExecutor._make_beam_pipeline,  # pylint: disable=protected-access
              "self")
  context = base_executor.BaseExecutor.Context()
  if base_executor.EmptyExecutor(context)._context is not context:  # pylint: disable=protected-access
    raise AssertionError("BaseExecutor no longer keeps its context in "
                         "_context")


def log_startup(executor, inputs, outputs, exec_properties) -> None:
  executor._log_startup(inputs, outputs, exec_properties)  # pylint: disable=protected-access


def beam_pipeline(executor):
  """The executor's Beam pipeline, as TFX's own Beam executors make it."""
  return executor._make_beam_pipeline()  # pylint: disable=protected-access


def executor_context(executor):
  return executor._context  # pylint: disable=protected-access


@_entry(
    "file_based_example_gen_init", "tfx",
    "FileBasedExampleGen.__init__ (its source's sha256 below) doing nothing "
    "but build a FileBasedExampleGenSpec for BaseBeamComponent.__init__("
    "spec=...), which ImageExampleGen calls directly with its own spec",
    "FileBasedExampleGen.__init__ builds its spec itself, with no way to add "
    "parameters (max_pixels, labels ...) or an output (rejected); being a "
    "FileBasedExampleGen keeps TFX's driver and KubeflowV2's ExampleGen "
    "handling",
    "FileBasedExampleGen.__init__ against ImageExampleGen.__init__ "
    "(image_example_gen/component.py), then record the new digest",
    [r"super\s*\(\s*FileBasedExampleGen\b"])
def _probe_file_based_example_gen_init():
  _source_sha256(
      FileBasedExampleGen.__init__,
      "bc4cb2d97782da8f6247e4c262eb631f1e7b5a7ba2bc5d093a01e1dd4fdeafa2")
  parent = FileBasedExampleGen.__mro__[1]
  if parent is not base_beam_component.BaseBeamComponent:
    raise AssertionError(f"FileBasedExampleGen's parent is {parent}")
  _parameters(parent.__init__, "self", "spec")


def init_file_based_example_gen(component, spec) -> None:
  """FileBasedExampleGen's parent's __init__, with `component`'s own spec."""
  super(FileBasedExampleGen, component).__init__(spec=spec)


@_entry(
    "input_processor_fingerprint", "tfx",
    "FileBasedInputProcessor keeping its input base in _input_base_uri and "
    "returning _fingerprint from get_input_fingerprint (set by "
    "resolve_span_and_version), and FileBasedDriver asking "
    "get_input_processor(splits, range_config, input_base_uri) for it",
    "the input processor is TFX's only hook for ExampleGen's input "
    "fingerprint, and it exposes neither attribute",
    "FileBasedInputProcessor.__init__, get_input_fingerprint and "
    "FileBasedDriver.get_input_processor",
    [r"\._fingerprint\b", r"\._input_base_uri\b"])
def _probe_input_processor():
  processor = input_processor.FileBasedInputProcessor(
      "probe://base", [example_gen_pb2.Input.Split(name="s", pattern="*/*")])
  if input_base_uri(processor) != "probe://base":
    raise AssertionError("FileBasedInputProcessor no longer keeps its input "
                         "base in _input_base_uri")
  set_input_fingerprint(processor, "probe")
  if processor.get_input_fingerprint(0, None) != "probe":
    raise AssertionError("get_input_fingerprint no longer returns "
                         "_fingerprint")
  _parameters(example_gen_driver.FileBasedDriver.get_input_processor,
              "self", "splits", "range_config", "input_base_uri")


def input_base_uri(processor) -> str:
  return processor._input_base_uri  # pylint: disable=protected-access


def set_input_fingerprint(processor, fingerprint: str) -> None:
  processor._fingerprint = fingerprint  # pylint: disable=protected-access


# ---- Vertex (KubeflowV2) ---------------------------------------------------

# The module KubeflowV2 compiles in as every FileBasedExampleGen's
# pre-cache check.
TFX_EXAMPLE_GEN_DRIVER = kubeflow_example_gen_driver.__name__


@_entry(
    "kubeflow_example_gen_driver", "tfx",
    f"{TFX_EXAMPLE_GEN_DRIVER}: _parse_flags(argv) and main(args), with "
    "_run_driver building `input_processor.FileBasedInputProcessor(...)` by "
    "module attribute when it runs",
    "KubeflowV2's compiler offers no hook for the input processor; "
    "replacing that module attribute while main runs, in the driver's own "
    "process, is the only way to ImageInputProcessor's fingerprint there",
    f"{TFX_EXAMPLE_GEN_DRIVER}'s _parse_flags, main and _run_driver",
    [r"\.\s*_parse_flags\b", r"FileBasedInputProcessor\s*=[^=]"])
def _probe_kubeflow_example_gen_driver():
  module = kubeflow_example_gen_driver
  if module.input_processor is not input_processor:
    raise AssertionError(f"{module.__name__}.input_processor is not "
                         f"{input_processor.__name__}")
  _source_has(module._run_driver,  # pylint: disable=protected-access
              "input_processor.FileBasedInputProcessor(")
  _parameters(module.main, "args")
  args = module._parse_flags(  # pylint: disable=protected-access
      ["driver", "--json_serialized_invocation_args", "{}", "--runner=X"])
  if args.json_serialized_invocation_args != "{}":
    raise AssertionError(f"_parse_flags gave {args}")


def parse_example_gen_driver_flags(argv: Sequence[str]):
  """The KubeflowV2 ExampleGen driver's flags (Beam's are ignored)."""
  return kubeflow_example_gen_driver._parse_flags(list(argv))  # pylint: disable=protected-access


def run_example_gen_driver(args, processor_class) -> None:
  """TFX's KubeflowV2 ExampleGen driver main (span, fingerprint, the
  examples artifact, the ExecutorOutput file), with processor_class as its
  input processor; restored after (for in-process tests).

  Raises RuntimeError if TFX did not build its processor through the module
  attribute, rather than report TFX's fingerprint as processor_class's.
  """
  built = []

  class Processor(processor_class):

    def __init__(self, *a, **kw):
      built.append(self)
      super().__init__(*a, **kw)

  tfx_processor = input_processor.FileBasedInputProcessor
  input_processor.FileBasedInputProcessor = Processor
  try:
    kubeflow_example_gen_driver.main(args)
  finally:
    input_processor.FileBasedInputProcessor = tfx_processor
  if not built:
    raise RuntimeError(
        "TFX's ExampleGen driver did not build its input processor as "
        "input_processor.FileBasedInputProcessor (a TFX upgrade?): its "
        f"output has TFX's fingerprint, not {processor_class.__name__}'s")


@_entry(
    "pre_cache_check_command", "tfx",
    "KubeflowV2 compiling every FileBasedExampleGen's pre-cache check as "
    f"`python -m {TFX_EXAMPLE_GEN_DRIVER}` (step_builder._DRIVER_COMMANDS), "
    "which use_image_driver rewrites in the compiled PipelineJob JSON",
    "the compiler uses TFX's driver whatever the component's DRIVER_CLASS, "
    "and offers no hook; that driver's fingerprint misses nested files",
    "where tfx/orchestration/kubeflow/v2/step_builder.py puts the driver",
    [r"\b_DRIVER_COMMANDS\b"])
def _probe_pre_cache_check():
  commands = tuple(step_builder._DRIVER_COMMANDS)  # pylint: disable=protected-access
  if commands != ("python", "-m", TFX_EXAMPLE_GEN_DRIVER):
    raise AssertionError(f"the compiled driver command is {commands}")


def use_image_driver(job: dict, driver_module: str,
                     task: str = "ImageExampleGen") -> None:
  """Points `task`'s pre-cache check at `driver_module`, in place; only the
  module changes, the args (Beam's included) stay.

  Raises RuntimeError if the compiled command is not TFX's driver (a TFX
  upgrade changed the compiler).
  """
  spec = job["pipelineSpec"]
  component = spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]
  label = spec["components"][component]["executorLabel"]
  container = spec["deploymentSpec"]["executors"][label]["container"]
  hook = container.get("lifecycle", {}).get("preCacheCheck", {})
  if hook.get("command") != ["python", "-m", TFX_EXAMPLE_GEN_DRIVER]:
    raise RuntimeError(
        f"{task}: expected KubeflowV2 to compile TFX's ExampleGen driver "
        f"({TFX_EXAMPLE_GEN_DRIVER}) as the pre-cache check, found "
        f"{hook.get('command')}; TFX's compiler changed, update "
        "components/tfx_internals.py")
  hook["command"] = ["python", "-m", driver_module]


@_entry(
    "evaluator_typed_executor", "tfx",
    "kubeflow_v2_run_executor turning a blessing's current_model_id into "
    "the model's Vertex ML Metadata name only when issubclass(executor_cls, "
    "evaluator_executor.Executor); and BaseExecutor.__init__(context) being "
    "all a non-Beam executor needs",
    "the compiled ProductionModelResolver finds the model in production by "
    "that name; TFX keys the translation on the Evaluator executor type and "
    "has no other switch",
    "kubeflow_v2_run_executor._run_executor and "
    "BaseBeamExecutor.__init__",
    [r"BaseExecutor\s*\.\s*__init__"])
def _probe_evaluator_typed_executor():
  _source_has(kubeflow_v2_run_executor._run_executor,  # pylint: disable=protected-access
              "issubclass(executor_cls, evaluator_executor.Executor)",
              "refactor_model_blessing")
  _parameters(base_executor.BaseExecutor.__init__, "self", "context")


class EvaluatorTypedExecutor(evaluator_executor.Executor):
  """A base that types an executor as TFX's Evaluator's, for Vertex (see
  the entry above); put it after the executor's own class. Not a Beam
  executor: BaseBeamExecutor's context checks are skipped."""

  def __init__(self, context=None):
    base_executor.BaseExecutor.__init__(self, context)  # pylint: disable=non-parent-init-called


@_entry(
    "vertex_entrypoint_flags", "tfx",
    "kubeflow_v2_run_executor._parse_flags(argv) -> (args, beam_args), what "
    "the step container's `python -m` runs before main(parsed)",
    "main takes the parsed flags and the module has no public parser; "
    "tests/test_vertex_entrypoint.py runs compiled steps in-process through "
    "it",
    "kubeflow_v2_run_executor._parse_flags and main",
    [r"\.\s*_parse_flags\b"])
def _probe_vertex_entrypoint_flags():
  args, beam_args = kubeflow_v2_run_executor._parse_flags([  # pylint: disable=protected-access
      "--executor_class_path", "a.B", "--json_serialized_invocation_args",
      "{}", "--runner=X"])
  if (args.executor_class_path, beam_args) != ("a.B", ["--runner=X"]):
    raise AssertionError(f"_parse_flags gave {args}, {beam_args}")
  _parameters(kubeflow_v2_run_executor.main, "parsed_argv")


def parse_vertex_entrypoint_flags(argv: Sequence[str]):
  """(args, beam_args) of TFX's Vertex step entrypoint, as its `python -m`
  parses them before main(parsed)."""
  return kubeflow_v2_run_executor._parse_flags(list(argv))  # pylint: disable=protected-access


# ---- Pushers ---------------------------------------------------------------

@_entry(
    "pusher_marks", "tfx",
    "the Pusher executor's _MarkPushed(model_push, pushed_destination, "
    "pushed_version) and _MarkNotPushed(model_push): the custom properties "
    "pushed, pushed_destination and pushed_version that TFX's Pusher "
    "records",
    "protected methods; AtomicPusher and VertexPusher replace Do and must "
    "record a push as TFX's Pusher does",
    "tfx/components/pusher/executor.py's _MarkPushed and _MarkNotPushed",
    [r"\b_MarkPushed\b", r"\b_MarkNotPushed\b"])
def _probe_pusher_marks():
  pusher = pusher_executor.Executor()
  pushed = standard_artifacts.PushedModel()
  mark_pushed(pusher, pushed, pushed_destination="d", pushed_version="v")
  marks = (pushed.get_int_custom_property("pushed"),
           pushed.get_string_custom_property("pushed_destination"),
           pushed.get_string_custom_property("pushed_version"))
  not_pushed = standard_artifacts.PushedModel()
  mark_not_pushed(pusher, not_pushed)
  if marks != (1, "d", "v") or not_pushed.get_int_custom_property(
      "pushed") != 0:
    raise AssertionError(f"_MarkPushed recorded {marks}")


def mark_pushed(executor, model_push, pushed_destination: str,
                pushed_version: Optional[str] = None) -> None:
  executor._MarkPushed(model_push, pushed_destination=pushed_destination,  # pylint: disable=protected-access
                       pushed_version=pushed_version)


def mark_not_pushed(executor, model_push) -> None:
  executor._MarkNotPushed(model_push)  # pylint: disable=protected-access


# ---- Local runs ------------------------------------------------------------

@_entry(
    "local_launcher", "tfx",
    "LocalDagRunner building each node's `launcher.Launcher(pipeline_node="
    "..., ...)` by module attribute (tfx.orchestration.portable.launcher) "
    "when it runs, and calling its launch(), which returns the "
    "ExecutionInfo (None when the step was skipped) and raises when the "
    "step failed",
    "LocalDagRunner has no per-step callback; the alternative is matching "
    "its log messages",
    "LocalDagRunner.run_with_ir and Launcher.__init__ / launch",
    [r"launcher\s*\.\s*Launcher\b", r"portable\s+import\s+launcher\b"])
def _probe_local_launcher():
  if local_dag_runner.launcher is not launcher:
    raise AssertionError("local_dag_runner no longer uses "
                         f"{launcher.__name__}")
  _source_has(local_dag_runner.LocalDagRunner.run_with_ir,
              "launcher.Launcher(", ".launch()")
  _parameters(launcher.Launcher.__init__, "self", "pipeline_node")
  _parameters(launcher.Launcher.launch, "self")


@contextlib.contextmanager
def observe_launches(started: Callable[[str], None],
                     finished: Callable[[str, Optional[int]], None],
                     failed: Callable[[str, BaseException], None]):
  """While inside, every step LocalDagRunner launches calls started(node
  id), then finished(node id, execution id; None when skipped) or
  failed(node id, error) before the error propagates."""
  original = launcher.Launcher

  class ReportingLauncher(original):
    """Launcher whose launch() reports around the original."""

    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      node = kwargs.get("pipeline_node", args[0] if args else None)
      self.node_id = node.node_info.id

    def launch(self):
      started(self.node_id)
      try:
        info = super().launch()
      except BaseException as e:
        failed(self.node_id, e)
        raise
      finished(self.node_id,
               getattr(info, "execution_id", None) if info else None)
      return info

  launcher.Launcher = ReportingLauncher
  try:
    yield
  finally:
    launcher.Launcher = original


@_entry(
    "beam_executor_argv", "tfx",
    "BaseBeamExecutor.__init__ parsing sys.argv together with the Beam "
    "args as absl flags (its TODO b/174174381), so that a caller's own "
    "options (pytest's -v, a script's flags) would be read as absl's",
    "TFX has no switch for it",
    "whether BaseBeamExecutor.__init__ still reads sys.argv (if not, drop "
    "this entry and its uses)",
    [r"patch\s*\.\s*object\s*\(\s*sys\b", r"\bsys\s*\.\s*argv\s*=[^=]"])
def _probe_beam_executor_argv():
  _source_has(base_beam_executor.BaseBeamExecutor.__init__, "sys.argv")


@contextlib.contextmanager
def beam_executor_argv():
  """sys.argv as TFX's Beam executors should parse it: the program alone."""
  import sys  # pylint: disable=import-outside-toplevel
  saved = sys.argv
  sys.argv = saved[:1]
  try:
    yield
  finally:
    sys.argv = saved


for _name in ENTRIES:
  check(_name)

# Bound once their entries' probes passed.
partition_fn = base_example_gen_executor._PartitionFn  # pylint: disable=protected-access
write_tfrecord = tfrecordio._TFRecordUtil.write_record  # pylint: disable=protected-access
masked_crc32c = tfrecordio._TFRecordUtil._masked_crc32c  # pylint: disable=protected-access
WindowedValue = windowed_value.WindowedValue
