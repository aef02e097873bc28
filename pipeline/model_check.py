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
import os
import posixpath

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2

from trainer import model_dirs

# The ops of the models this pipeline exports (trainer/export.py), for every
# backbone, resizer and task, one a line, sorted; tests/test_model_check.py
# prints the lines to add when an export needs more.
ALLOWED_OPS = (
    "Abs",
    "AddV2",
    "All",
    "Any",
    "ArgMax",
    "ArgMin",
    "AsString",
    "AssignVariableOp",
    "AvgPool",
    "BiasAdd",
    "Cast",
    "ConcatV2",
    "Const",
    "Conv2D",
    "DecodeImage",
    "DecodePaddedRaw",
    "DecodeRaw",
    "DepthwiseConv2dNative",
    "DisableCopyOnRead",
    "Einsum",
    "Equal",
    "Erf",
    "ExpandDims",
    "Expm1",
    "Fill",
    "FusedBatchNormV3",
    "GatherV2",
    "Greater",
    "GreaterEqual",
    "HashTableV2",
    "Identity",
    "IdentityN",
    "LeakyRelu",
    "Less",
    "LessEqual",
    "Log1p",
    "LogicalAnd",
    "LogicalNot",
    "LogicalOr",
    "LookupTableFindV2",
    "MatMul",
    "MaxPool",
    "Maximum",
    "Mean",
    "Minimum",
    "Mul",
    "NoOp",
    "NotEqual",
    "Pack",
    "Pad",
    "ParseExampleV2",
    "PartitionedCall",
    "Placeholder",
    "PlaceholderWithDefault",
    "Prod",
    "Range",
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
    "ScatterNd",
    "Select",
    "SelectV2",
    "SerializeTensor",
    "Shape",
    "Sigmoid",
    "Softmax",
    "Sqrt",
    "SquaredDifference",
    "Squeeze",
    "StatefulPartitionedCall",
    "StatelessIf",
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
    "Unpack",
    "VarHandleOp",
    "VarIsInitializedOp",
    "Where",
)
# Checkpoint I/O: only in the traced save and restore functions of saver_def.
SAVER_OPS = ("MergeV2Checkpoints", "RestoreV2", "SaveV2", "ShardedFilename")
# Ops that read the file named by one input (its index): only a model asset
# (TF Transform's label vocabulary).
ASSET_FILE_OPS = {"InitializeTableFromTextFileV2": 1}
CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
GRAPH = "the graph"  # shown for a node of a meta graph's own graph_def
_SHOWN_PROBLEMS, _SHOWN_PLACES = 10, 3  # named in a message
# Who refers to a function besides a node: not plain calls. (A function's
# name can be any string, so these are not strings.)
_OBJECT_GRAPH, _GRADIENT = object(), object()


class ModelCheckError(ValueError):
  """The SavedModel does what the models of this pipeline don't."""


def graph_ops(graph_def):
  """{op type: {where}} over a GraphDef's nodes (GRAPH) and its function
  library (function names); calls of library functions are not ops."""
  functions = {f.signature.name for f in graph_def.library.function}
  ops = collections.defaultdict(set)
  for function, nodes in _node_lists(graph_def):
    for node in nodes:
      if node.op not in functions:
        ops[node.op].add(GRAPH if function is None else function)
  return dict(ops)


def _node_lists(graph_def):
  """(function name, its nodes), the graph's own nodes under None."""
  yield None, graph_def.node
  for function in graph_def.library.function:
    yield function.signature.name, function.node_def


def _callees(node):
  """Library functions a node calls or names (a call, a loop body...)."""
  for value in node.attr.values():
    if value.HasField("func"):
      yield value.func.name
    yield from (f.name for f in value.list.func)


def _arg_index(function, name):
  """The index of `name` among the function's arguments, or None (a node's
  output, a constant...)."""
  args = [a.name for a in function.signature.input_arg]
  return args.index(name) if name in args else None


def _data_input(node, index):
  inputs = [i for i in node.input if not i.startswith("^")]
  return inputs[index] if index < len(inputs) else None


class _MetaGraph:
  """One meta graph's functions and who refers to each."""

  def __init__(self, meta_graph):
    self.meta_graph = meta_graph
    graph = meta_graph.graph_def
    self.functions = {f.signature.name: f for f in graph.library.function}
    # function name -> [(caller, node)]: caller a function name, None for
    # the graph's own nodes, or _OBJECT_GRAPH (a concrete function the
    # loader binds, Python can call) or _GRADIENT with no node.
    self.referrers = collections.defaultdict(list)
    for caller, nodes in _node_lists(graph):
      for node in nodes:
        names = list(_callees(node))
        if node.op in self.functions:
          names.append(node.op)
        for name in names:
          self.referrers[name].append((caller, node))
    for gradient in graph.library.gradient:
      self.referrers[gradient.gradient_func].append((_GRADIENT, None))
    for name in meta_graph.object_graph_def.concrete_functions:
      self.referrers[name].append((_OBJECT_GRAPH, None))

  def saver_functions(self):
    """The functions saver_def's save and restore nodes call, when nothing
    else refers to them."""
    saver = self.meta_graph.saver_def
    names = {t.split(":")[0] for t in (saver.save_tensor_name,
                                       saver.restore_op_name) if t}
    nodes = [n for n in self.meta_graph.graph_def.node if n.name in names]
    called = {f for n in nodes for f in _callees(n)}
    return {f for f in called if all(caller is None and node.name in names
                                     for caller, node in self.referrers[f])}

  def fed_by_asset(self, function, index):
    """Whether argument `index` of `function` is a model asset's path at
    every call. (Calls in the graph's own nodes run only under TF1 loaders;
    `problems` refuses a model without an object graph, which needs one.)"""
    todo, seen = [(function, index)], set()
    while todo:
      function, index = todo.pop()
      if (function, index) in seen:
        continue  # a cycle brings no value of its own
      seen.add((function, index))
      for caller, node in self.referrers[function]:
        if caller is _OBJECT_GRAPH:
          if not self._bound_to_asset(function, index):
            return False
        elif caller is None:
          continue
        elif caller is _GRADIENT or (node.op not in CALL_OPS and
                                     node.op != function):
          return False  # a gradient, a loop body...: not a plain call
        else:
          arg = _arg_index(self.functions[caller], _data_input(node, index))
          if arg is None:
            return False  # a constant or a computed path
          todo.append((caller, arg))
    return True

  def _bound_to_asset(self, function, index):
    """A concrete function's captured inputs come last; the loader binds
    each to an object graph node."""
    bound = self.meta_graph.object_graph_def.concrete_functions[
        function].bound_inputs
    arg_count = len(self.functions[function].signature.input_arg)
    position = index - (arg_count - len(bound))
    nodes = self.meta_graph.object_graph_def.nodes
    return 0 <= position < len(bound) and 0 <= bound[position] < len(nodes) \
        and nodes[bound[position]].WhichOneof("kind") == "asset"

  def add_problems(self, found):
    """Adds {what: {where}} for everything this meta graph may not run."""
    savers = self.saver_functions()
    for function, nodes in _node_lists(self.meta_graph.graph_def):
      where = GRAPH if function is None else function
      for node in nodes:
        op = node.op
        if op in self.functions or op in ALLOWED_OPS or \
            (op in SAVER_OPS and function in savers):
          continue
        if op in SAVER_OPS:
          found[f"{op} outside the saver's functions"].add(where)
        elif op in ASSET_FILE_OPS and function is not None:
          arg = _arg_index(self.functions[function],
                           _data_input(node, ASSET_FILE_OPS[op]))
          if arg is None or not self.fed_by_asset(function, arg):
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


def _listed(items, shown):
  more = f" and {len(items) - shown} more" if len(items) > shown else ""
  return items[:shown], more


def describe(found):
  """One line naming the problems (up to _SHOWN_PROBLEMS) and up to
  _SHOWN_PLACES places of each."""
  shown, more = _listed(sorted(found), _SHOWN_PROBLEMS)
  parts = []
  for what in shown:
    places, more_places = _listed(sorted(found[what]), _SHOWN_PLACES)
    parts.append(f"{what} (in {', '.join(places)}{more_places})")
  return "; ".join(parts) + more


def read(model_dir):
  """The SavedModel proto of model_dir/saved_model.pb."""
  path = os.path.join(model_dir, model_dirs.SAVED_MODEL)
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
