"""Checking a SavedModel before running it.

A SavedModel is a TensorFlow program: loading one and calling its signature runs whatever
ops its author put in the graph, including ones that read or write files, start processes or
use the network. So before a SavedModel that is not a generator.keras is run, every op of its
graph must be one a generator needs (GENERATOR_OPS); the functions used only to save or restore
its variables may also use the checkpoint ops: TensorFlow 2's loader never runs them. A SavedModel
in the TensorFlow 1 format (no object graph, or several MetaGraphs) is refused whatever its ops:
loading it runs its saver's restore step and its init ops, which the model chooses. The graph is
read as data, nothing is run.
"""

from pathlib import Path

from dcgan_tf.utils.files import regular_files

GENERATOR_OPS = frozenset({
    # graph plumbing, variables, control flow
    "Const", "Identity", "IdentityN", "NoOp", "Placeholder", "PlaceholderWithDefault", "StatefulPartitionedCall",
    "PartitionedCall", "VarHandleOp", "ReadVariableOp", "AssignVariableOp", "VarIsInitializedOp", "DisableCopyOnRead",
    "If", "StatelessIf", "While", "StatelessWhile", "Case", "StatelessCase", "StopGradient", "EnsureShape",
    "CheckNumerics",
    # arithmetic
    "Add", "AddV2", "AddN", "Sub", "Mul", "RealDiv", "Div", "DivNoNan", "FloorDiv", "FloorMod", "Neg", "Abs", "Sign",
    "Square", "Sqrt", "Rsqrt", "Reciprocal", "Exp", "Log", "Log1p", "Pow", "Maximum", "Minimum", "Round", "Floor",
    "Ceil", "Cast", "ClipByValue", "Erf", "Erfc", "Ndtri", "Sin", "Cos", "Acos", "Atan2", "Greater", "GreaterEqual",
    "Less", "LessEqual", "Equal", "NotEqual", "LogicalAnd", "LogicalOr", "LogicalNot", "Select", "SelectV2",
    "Sum", "Mean", "Max", "Min", "Prod", "ArgMax", "ArgMin", "Cumsum",
    # neural network layers
    "MatMul", "BatchMatMulV2", "Einsum", "BiasAdd", "Conv2D", "Conv2DBackpropInput", "DepthwiseConv2dNative",
    "FusedBatchNorm", "FusedBatchNormV3", "Relu", "Relu6", "LeakyRelu", "Elu", "Selu", "Softplus", "Sigmoid", "Tanh",
    "Softmax", "AvgPool", "MaxPool", "ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic", "DepthToSpace",
    # shapes
    "Reshape", "Transpose", "ConcatV2", "Pack", "Unpack", "Split", "SplitV", "Squeeze", "ExpandDims", "Shape",
    "ShapeN", "Size", "Rank", "StridedSlice", "Slice", "Fill", "ZerosLike", "OnesLike", "Tile", "Pad", "PadV2",
    "MirrorPad", "Range", "BroadcastTo", "BroadcastArgs", "GatherV2",
    # random numbers (latent vectors)
    "StatelessRandomGetKeyCounter", "StatelessRandomGetKeyCounterAlg", "StatelessRandomNormalV2",
    "StatelessRandomUniformV2", "StatelessTruncatedNormalV2", "StatelessRandomNormal", "StatelessRandomUniform",
    "StatelessTruncatedNormal", "RandomStandardNormal", "RandomUniform", "TruncatedNormal",
})
# Only in the functions a SavedModel saves and restores its variables with (variables/ files).
CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin",
                            "StaticRegexFullMatch"})


class UntrustedModel(ValueError):
    pass


def _read(path):
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    except Exception as error:  # protobuf's DecodeError, or an unreadable file
        raise ValueError(f"{path}: not a readable SavedModel ({type(error).__name__}: {error})") from None
    return proto


def _calls(node, functions):
    """Names of the library functions a node calls (by its op, or in its attributes: f, body, branches...)."""
    names = {node.op} & functions.keys()
    for value in node.attr.values():
        names.add(value.func.name)
        names.update(f.name for f in value.list.func)
    return names & functions.keys()


def _reached(functions, nodes=(), names=()):
    """The functions `names` and those `nodes` call, and every function they call in turn."""
    pending, seen = set(names).union(*(_calls(node, functions) for node in nodes)), set()
    while pending:
        name = pending.pop()
        seen.add(name)
        pending |= set().union(*(_calls(node, functions) for node in functions[name].node_def)) - seen
    return seen


def _graph_ops(meta_graph):
    """(op, allowed ops) for every op in a MetaGraph. The checkpoint ops are allowed only in the
    functions that nothing but the saver (saver_def's save and restore nodes) calls."""
    functions = {f.signature.name: f for f in meta_graph.graph_def.library.function}
    saver_names = {name.split(":")[0] for name in (meta_graph.saver_def.save_tensor_name,
                                                     meta_graph.saver_def.restore_op_name) if name}
    top = meta_graph.graph_def.node
    used = _reached(functions, [node for node in top if node.name not in saver_names],
                    set(meta_graph.object_graph_def.concrete_functions) & functions.keys())
    saver_only = _reached(functions, [node for node in top if node.name in saver_names]) - used
    for node in top:
        yield node.op, GENERATOR_OPS
    for name, function in functions.items():
        allowed = GENERATOR_OPS | CHECKPOINT_OPS if name in saver_only else GENERATOR_OPS
        for node in function.node_def:
            if node.op not in functions:  # a call: the callee is checked itself
                yield node.op, allowed


def check_ops(path):
    """UntrustedModel for a SavedModel at `path` in the TensorFlow 1 format, or naming the ops of
    its graph that a generator does not need."""
    regular_files(path, "a SavedModel")
    proto = _read(path)
    if len(proto.meta_graphs) != 1 or not proto.meta_graphs[0].HasField("object_graph_def"):
        raise UntrustedModel(
            f"{path}: refusing to load this SavedModel: it is in the TensorFlow 1 format (no object graph), "
            "whose loading runs its own saver and init steps, which can read or write files; export it again "
            "with TensorFlow 2 (tf.saved_model.save), or, if you trust where it came from, pass generate.py or evaluate --trust-savedmodel")
    unknown = {op for op, allowed in _graph_ops(proto.meta_graphs[0]) if op not in allowed}
    if unknown:
        raise UntrustedModel(
            f"{path}: refusing to run this SavedModel: its graph uses ops a generator does not need "
            f"({', '.join(sorted(unknown))}), which can read or write files or run other code; use its "
            "generator.keras if it has one, or, if you trust where it came from, pass generate.py or evaluate --trust-savedmodel")
