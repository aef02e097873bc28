"""What a SavedModel would run, read from its saved_model.pb before loading it.

A SavedModel is a program: loading one runs its resource initializers and
calling a signature runs its graph, and either can read or write files
(ReadFile, WriteFile) or call Python (PyFunc). `predict` loads a model only if
every op in it, in every signature, tf.function and initializer, is one that
the models this pipeline exports use (ALLOWED_OPS), checkpoint I/O only in the
functions the saver_def points at, and a vocabulary file only from the model's
own assets. tests/test_model_check.py derives the list from real exports.
"""
import collections
import posixpath

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2

from trainer import model_dirs

# The ops of the models this pipeline exports (trainer/task.py), for every
# backbone, resizer and task, one a line, sorted; tests/test_model_check.py
# prints the lines to add when an export needs more.
ALLOWED_OPS = (
    "AddV2",
    "ArgMax",
    "AssignVariableOp",
    "AvgPool",
    "BiasAdd",
    "Cast",
    "ConcatV2",
    "Const",
    "Conv2D",
    "DecodeImage",
    "DecodeRaw",
    "DepthwiseConv2dNative",
    "DisableCopyOnRead",
    "Einsum",
    "Erf",
    "ExpandDims",
    "Expm1",
    "Fill",
    "FusedBatchNormV3",
    "GatherV2",
    "HashTableV2",
    "Identity",
    "IdentityN",
    "LeakyRelu",
    "Less",
    "Log1p",
    "LogicalAnd",
    "LookupTableFindV2",
    "MatMul",
    "MaxPool",
    "Maximum",
    "Mean",
    "Minimum",
    "Mul",
    "NoOp",
    "Pack",
    "Pad",
    "ParseExampleV2",
    "PartitionedCall",
    "Placeholder",
    "PlaceholderWithDefault",
    "Prod",
    "ReadVariableOp",
    "RealDiv",
    "Relu",
    "Relu6",
    "Reshape",
    "ResizeArea",
    "ResizeBicubic",
    "ResizeBilinear",
    "ResizeNearestNeighbor",
    "Round",
    "Rsqrt",
    "ScaleAndTranslate",
    "Select",
    "SerializeTensor",
    "Shape",
    "Sigmoid",
    "Softmax",
    "Sqrt",
    "SquaredDifference",
    "Squeeze",
    "StatefulPartitionedCall",
    "StatelessWhile",
    "StaticRegexFullMatch",
    "StopGradient",
    "StridedSlice",
    "StringJoin",
    "StringLength",
    "Sub",
    "Substr",
    "TensorListFromTensor",
    "TensorListGetItem",
    "TensorListReserve",
    "TensorListSetItem",
    "TensorListStack",
    "Tile",
    "Transpose",
    "VarHandleOp",
    "VarIsInitializedOp",
)
# Checkpoint I/O: only in the traced save and restore functions of saver_def.
SAVER_OPS = ("MergeV2Checkpoints", "RestoreV2", "SaveV2", "ShardedFilename")
# Ops that read the file named by one input (its index): only a model asset
# (TF Transform's label vocabulary).
ASSET_FILE_OPS = {"InitializeTableFromTextFileV2": 1}
CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
GRAPH = "the graph"  # where a node of a meta graph's own graph_def is
_SHOWN = 3  # places named per op in a message


class ModelCheckError(ValueError):
  """The SavedModel does what the models of this pipeline don't."""


def graph_ops(graph_def):
  """{op type: {where}} over a GraphDef's nodes (GRAPH) and its function
  library (function names); calls of library functions are not ops."""
  functions = {f.signature.name for f in graph_def.library.function}
  ops = collections.defaultdict(set)
  for where, nodes in _node_lists(graph_def):
    for node in nodes:
      if node.op not in functions:
        ops[node.op].add(where)
  return dict(ops)


def _node_lists(graph_def):
  yield GRAPH, graph_def.node
  for function in graph_def.library.function:
    yield function.signature.name, function.node_def


def _callees(node):
  """Library functions a node calls or names (a call, a loop body...)."""
  for value in node.attr.values():
    if value.HasField("func"):
      yield value.func.name
    yield from (f.name for f in value.list.func)


def _data_inputs(node):
  return [i for i in node.input if not i.startswith("^")]


class _MetaGraph:
  """One meta graph's functions and who refers to each."""

  def __init__(self, meta_graph):
    self.meta_graph = meta_graph
    graph = meta_graph.graph_def
    self.functions = {f.signature.name: f for f in graph.library.function}
    # function name -> [(where, node)]: node None for the object graph
    # (a concrete function Python can call) and a gradient registration.
    self.referrers = collections.defaultdict(list)
    for where, nodes in _node_lists(graph):
      for node in nodes:
        names = list(_callees(node))
        if node.op in self.functions:
          names.append(node.op)
        for name in names:
          self.referrers[name].append((where, node))
    for gradient in graph.library.gradient:
      self.referrers[gradient.gradient_func].append(("a gradient", None))
    for name in meta_graph.object_graph_def.concrete_functions:
      self.referrers[name].append(("the object graph", None))

  def saver_functions(self):
    """The functions saver_def's save and restore nodes call, when nothing
    else calls them."""
    saver = self.meta_graph.saver_def
    names = {t.split(":")[0] for t in (saver.save_tensor_name,
                                       saver.restore_op_name) if t}
    nodes = [n for n in self.meta_graph.graph_def.node if n.name in names]
    called = {f for n in nodes for f in _callees(n)}
    return {f for f in called if all(where == GRAPH and node.name in names
                                     for where, node in self.referrers[f])}

  def fed_by_asset(self, function, index, seen=None):
    """Whether argument `index` of `function` is a model asset's path at
    every call (calls in the graph_def run only under TF1 loaders, and
    `check` refuses models without an object graph, which need them)."""
    seen = set() if seen is None else seen
    if (function, index) in seen:
      return True  # a cycle brings no value of its own
    seen.add((function, index))
    args = [a.name for a in self.functions[function].signature.input_arg]
    for where, node in self.referrers[function]:
      if where == "the object graph":
        if not self._bound_to_asset(function, index, len(args)):
          return False
      elif where == GRAPH:
        continue
      elif node is None or (node.op not in CALL_OPS and node.op != function):
        return False  # a gradient, a loop body...: not a plain call
      else:
        inputs = _data_inputs(node)
        caller_args = [a.name for a in
                       self.functions[where].signature.input_arg]
        if index >= len(inputs) or inputs[index] not in caller_args or \
            not self.fed_by_asset(where, caller_args.index(inputs[index]),
                                  seen):
          return False
    return True

  def _bound_to_asset(self, function, index, arg_count):
    """A concrete function's captured inputs come last; the loader binds
    each to an object graph node."""
    bound = self.meta_graph.object_graph_def.concrete_functions[
        function].bound_inputs
    position = index - (arg_count - len(bound))
    nodes = self.meta_graph.object_graph_def.nodes
    return 0 <= position < len(bound) and 0 <= bound[position] < len(nodes) \
        and nodes[bound[position]].WhichOneof("kind") == "asset"

  def add_problems(self, found):
    """Adds {what: {where}} for every op this meta graph may not run."""
    savers = self.saver_functions()
    for where, nodes in _node_lists(self.meta_graph.graph_def):
      for node in nodes:
        op = node.op
        if op in self.functions or op in ALLOWED_OPS or \
            (op in SAVER_OPS and where in savers):
          continue
        if op in SAVER_OPS:
          found[f"{op} outside the saver's functions"].add(where)
        elif op in ASSET_FILE_OPS and where != GRAPH:
          inputs = _data_inputs(node)
          args = [a.name for a in
                  self.functions[where].signature.input_arg]
          index = ASSET_FILE_OPS[op]
          if index >= len(inputs) or inputs[index] not in args or \
              not self.fed_by_asset(where, args.index(inputs[index])):
            found[f"{op} on a file that is not a model asset"].add(where)
        else:
          found[op].add(where)
    for asset in self.meta_graph.asset_file_def:
      name = asset.filename
      if not name or name.startswith("/") or \
          posixpath.normpath(name) != name or name.split("/")[0] == "..":
        found[f"asset file {name!r} outside the model's assets folder"].add(
            "the asset list")


def problems(saved_model):
  """{what the SavedModel proto does that this pipeline's models don't:
  {where}}; empty when there is nothing."""
  found = collections.defaultdict(set)
  if not saved_model.meta_graphs:
    found["no meta graph"].add("saved_model.pb")
  for meta_graph in saved_model.meta_graphs:
    if not meta_graph.object_graph_def.nodes:
      found["no object graph (a TF1 SavedModel)"].add("a meta graph")
    _MetaGraph(meta_graph).add_problems(found)
  return dict(found)


def describe(found):
  """One line naming each problem and up to _SHOWN places where it is."""
  parts = []
  for what in sorted(found):
    places = sorted(found[what])
    more = f" and {len(places) - _SHOWN} more" if len(places) > _SHOWN else ""
    parts.append(f"{what} (in {', '.join(places[:_SHOWN])}{more})")
  return "; ".join(parts)


def read(model_dir):
  """The SavedModel proto of model_dir/saved_model.pb."""
  path = f"{model_dir.rstrip('/')}/{model_dirs.SAVED_MODEL}"
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      return saved_model_pb2.SavedModel.FromString(f.read())
  except tf.errors.OpError as e:
    raise ModelCheckError(f"can't read {path} ({e.message})") from None
  except DecodeError:
    raise ModelCheckError(f"{path} is not a SavedModel") from None


def check(model_dir):
  """Raises ModelCheckError unless every op of model_dir's SavedModel is one
  the models of this pipeline use, where they use it."""
  found = problems(read(model_dir))
  if found:
    raise ModelCheckError(
        f"{model_dir} runs what the models of this pipeline don't: "
        f"{describe(found)}")
