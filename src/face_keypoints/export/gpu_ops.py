"""Will every op of a .tflite run on the LiteRT GPU delegate? Our own answer, from its sources.

`tf.lite.experimental.Analyzer(gpu_compatibility=True)` runs only the per-op rules of
gpu_compatibility.cc, so it passes ops the delegate has no parser for at all (measured
here: a GATHER passes the Analyzer and is then left to the CPU). The delegate decides in
two files of tensorflow/tensorflow, and this module restates both (rewritten, not copied):

* tensorflow/lite/delegates/gpu/common/model_builder.cc
  - `NewOperationParser`: the ops it has a parser for; any other op gets
    `UnsupportedOperationParser` and stays on the CPU (`PARSERS` below);
  - each parser's `IsSupported`: `CheckMaxSupportedOpVersion(registration, N)`, the newest
    op version it reads (the numbers in `PARSERS`), then `CheckGpuDelegateCompatibility`;
  - `GetOpsToReplace` / `IsAllAllowedTensors`: every non-constant input and output must be
    float32 or float16 (int8 / uint8 too when quantized models are enabled; bool out of a
    comparison; bool / int32 around CAST), and no tensor may have 5 or more dimensions.
* tensorflow/lite/tools/versioning/gpu_compatibility.cc, `CheckGpuDelegateCompatibility`:
  per-op rules on runtime vs constant inputs, options and shapes (`_RULES` below).

Two details decide the verdict on our fp16 and int8 exports:

* fp16: weights are float16 constants read through DEQUANTIZE ops. The delegate's
  `FP16GraphPartitionHelper` (tensorflow/lite/delegates/utils.cc) points each consumer at
  the float16 constant itself and delegates the DEQUANTIZE with it, but only when its
  consumers are delegated too; a consumer's weights then count as constants.
* int8: QUANTIZE and DEQUANTIZE have parsers only when quantized models are enabled
  (`allow_quant_ops`), which `TfLiteGpuDelegateOptionsV2Default` does
  (TFLITE_GPU_EXPERIMENTAL_FLAGS_ENABLE_QUANT, tensorflow/lite/delegates/gpu/
  delegate_options.cc). Even then the delegate does not compute in int8: it dequantizes
  int8 weights to float when it builds its graph, and rewrites QUANTIZE / DEQUANTIZE as
  QUANTIZE_AND_DEQUANTIZE nodes "since we are dealing with floating-point versions of the
  original tensors" (model_builder.cc). An int8 file is smaller on disk, not faster on the
  GPU, and its GPU results are float results with the int8 rounding imitated. The report
  of a quantized file says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from face_keypoints.errors import FaceKeypointsError
from face_keypoints.runtime.flatbuffer import Graph, OpInfo, TensorInfo, read_graph


class GpuFallback(FaceKeypointsError):
    """Some ops of an export would run on the CPU instead of the GPU delegate."""

    code = 3


# ---------------------------------------------------------------------------------------
# The delegate's rules
# ---------------------------------------------------------------------------------------

# model_builder.cc, NewOperationParser: every builtin op with a parser, and the version its
# IsSupported accepts at most (CheckMaxSupportedOpVersion); None where it checks none.
# ElementwiseOperationParser allows version 2, or 3 for MUL. QUANTIZE and DEQUANTIZE get a
# parser only with allow_quant_ops, which the default delegate options set.
PARSERS: dict[str, int | None] = {
    "ABS": 2, "ADD": 2, "AVERAGE_POOL_2D": 2, "BATCH_MATMUL": None, "CAST": None,
    "CONCATENATION": 2, "CONV_2D": 6, "COS": 2, "CUMSUM": 1, "DENSIFY": 1,
    "DEPTHWISE_CONV_2D": 6, "DEPTH_TO_SPACE": None, "DEQUANTIZE": 3, "DIV": 2, "EQUAL": 2,
    "ELU": 2, "EXP": 2, "FLOOR": 2, "FLOOR_DIV": 2, "FLOOR_MOD": 2, "FULLY_CONNECTED": 9,
    "GREATER": 2, "GREATER_EQUAL": 2, "HARD_SWISH": None, "LESS": 2, "LESS_EQUAL": 2,
    "LOGISTIC": 2, "LOG": 2, "LSTM": 4, "MAXIMUM": 2, "MAX_POOL_2D": 2, "MEAN": None,
    "MINIMUM": 2, "MIRROR_PAD": 2, "MUL": 3, "NEG": 2, "NOT_EQUAL": 2, "ONE_HOT": 1,
    "PACK": None, "PAD": 2, "POW": 2, "REDUCE_MAX": None, "REDUCE_MIN": None,
    "REDUCE_PROD": None, "QUANTIZE": 2, "RELU": 2, "RELU6": 2, "RELU_N1_TO_1": None,
    "LEAKY_RELU": 2, "PRELU": 1, "RESHAPE": 1, "RESIZE_BILINEAR": 3,
    "RESIZE_NEAREST_NEIGHBOR": 3, "RSQRT": 2, "SELECT_V2": 1, "SIN": 2, "SLICE": 2,
    "SOFTMAX": 2, "SPACE_TO_DEPTH": 2, "SPLIT": None, "SPLIT_V": None, "SQRT": 2,
    "SQUARE": 2, "SQUARED_DIFFERENCE": 2, "STRIDED_SLICE": 2, "SUB": 2, "SUM": None,
    "TANH": 2, "TILE": None, "TRANSPOSE": 2, "TRANSPOSE_CONV": 3,
}
# model_builder.cc: custom ops with a parser; the rest go to NewCustomOperationParser,
# which in TensorFlow's own build supports none. Their rules are not restated here.
CUSTOM_PARSERS = ("Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D",
                  "Resampler")
# Ops whose gpu_compatibility.cc rules are not restated here: version and tensor types
# are still checked, and the report names them so a device run can confirm.
NOT_RESTATED = ("LSTM", "ONE_HOT", "SELECT_V2", "DENSIFY", *CUSTOM_PARSERS)

FLOATS = ("FLOAT32", "FLOAT16")
QUANTIZED = ("INT8", "UINT8")  # allowed when quantized models are enabled (the default)
LOGICAL = ("GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "EQUAL", "NOT_EQUAL")
UNARY = ("ABS", "COS", "ELU", "EXP", "FLOOR", "LOG", "LOGISTIC", "NEG", "RSQRT", "SIN",
         "SQRT", "SQUARE", "TANH")
BINARY = ("DIV", "EQUAL", "FLOOR_DIV", "FLOOR_MOD", "GREATER", "GREATER_EQUAL", "LESS",
          "LESS_EQUAL", "MAXIMUM", "MINIMUM", "NOT_EQUAL", "POW", "SQUARED_DIFFERENCE", "SUB")
MAX_RANK = 4  # IsAllAllowedTensors rejects tensors of 5 or more dimensions
SIGN_BIT = 5  # ActivationFunctionType.SIGN_BIT: the one fused activation it rejects


@dataclass(frozen=True)
class OpVerdict:
    index: int
    name: str
    version: int
    reason: str | None  # None: the GPU delegate takes the op

    def label(self) -> str:
        return f"{self.name} (op {self.index}, v{self.version})"


@dataclass
class GpuReport:
    """The verdict on every op of one .tflite, and what a reader should know about it."""

    path: Path
    verdicts: list[OpVerdict]
    notes: list[str] = field(default_factory=list)

    @property
    def fallback(self) -> list[OpVerdict]:
        return [v for v in self.verdicts if v.reason is not None]

    @property
    def ok(self) -> bool:
        return not self.fallback

    def describe(self) -> str:
        """One line: all ops on the GPU, or which ops would fall back and why."""
        total = len(self.verdicts)
        if self.ok:
            return f"{self.path.name}: all {total} ops run on the GPU delegate"
        ops = "; ".join(f"{v.label()}: {v.reason}" for v in self.fallback)
        return (f"{self.path.name}: {len(self.fallback)} of {total} ops would fall back to "
                f"the CPU: {ops}")


def check_gpu(path: str | Path) -> GpuReport:
    """Which ops of the .tflite at `path` the GPU delegate (default options) would not take."""
    path = Path(path)
    return check_graph(read_graph(path), path)


def check_graph(graph: Graph, path: Path) -> GpuReport:
    constant = _constants_after_fp16_remap(graph)
    absorbed = {op.index for op in graph.ops if _is_fp16_weight_dequantize(graph, op)}
    reasons: dict[int, str | None] = {
        op.index: _op_reason(graph, op, constant)
        for op in graph.ops if op.index not in absorbed
    }
    # FP16GraphPartitionHelper delegates an fp16 weight DEQUANTIZE only with its consumers.
    for index in absorbed:
        (output,) = graph.ops[index].outputs
        on_cpu = [c for c in graph.consumers(output) if reasons.get(c.index) is not None]
        reasons[index] = (f"feeds float16 weights to {on_cpu[0].name} (op {on_cpu[0].index}),"
                          " which stays on the CPU") if on_cpu else None
    verdicts = [OpVerdict(op.index, op.name, op.version, reasons[op.index]) for op in graph.ops]
    return GpuReport(path, verdicts, _notes(graph))


def _notes(graph: Graph) -> list[str]:
    notes = []
    names = {op.name for op in graph.ops}
    if any(graph.tensors[i].dtype in QUANTIZED and not graph.tensors[i].constant
           for op in graph.ops for i in op.outputs):
        notes.append(
            "quantized model: the GPU delegate takes it only with quantized models enabled "
            "(the default), dequantizes the int8 weights to float and imitates the int8 "
            "rounding with QUANTIZE_AND_DEQUANTIZE nodes: on the GPU it computes in float "
            "like the fp16 file, so int8 buys a smaller file, not GPU speed")
    not_restated = sorted(names & set(NOT_RESTATED))
    if not_restated:
        notes.append(f"per-op rules not restated here for {', '.join(not_restated)}: "
                     "version and tensor types were checked; confirm on a device")
    return notes


def _is_fp16_weight_dequantize(graph: Graph, op: OpInfo) -> bool:
    if op.name != "DEQUANTIZE" or len(op.inputs) != 1 or op.inputs[0] < 0:
        return False
    source = graph.tensors[op.inputs[0]]
    return source.dtype == "FLOAT16" and source.constant


def _constants_after_fp16_remap(graph: Graph) -> list[bool]:
    """Constness as the delegate sees it: fp16 weight DEQUANTIZE outputs are constants."""
    constant = [t.constant for t in graph.tensors]
    for op in graph.ops:
        if _is_fp16_weight_dequantize(graph, op):
            constant[op.outputs[0]] = True
    return constant


def _op_reason(graph: Graph, op: OpInfo, constant: list[bool]) -> str | None:
    """Why the delegate would leave `op` to the CPU, or None when it takes it."""
    if op.name in CUSTOM_PARSERS:
        max_version = None
    elif op.name not in PARSERS:
        return "the GPU delegate has no parser for this op (model_builder.cc)"
    else:
        max_version = PARSERS[op.name]
    if max_version is not None and op.version > max_version:
        return f"version {op.version}; the GPU delegate reads up to version {max_version}"
    rule = _RULES.get(op.name)
    reason = rule(_OpView(graph, op, constant)) if rule else None
    return reason or _tensor_reason(graph, op, constant)


def _tensor_reason(graph: Graph, op: OpInfo, constant: list[bool]) -> str | None:
    """model_builder.cc GetOpsToReplace: the types and ranks of the op's tensors."""
    allowed_in = [*FLOATS, *QUANTIZED]
    allowed_out = [*FLOATS, *QUANTIZED]
    if op.name in LOGICAL:
        allowed_out.append("BOOL")
    if op.name == "CAST":
        allowed_in += ["BOOL", "INT32"]
        allowed_out.append("INT32")
    if op.name == "ONE_HOT":
        allowed_in.append("INT32")
    for role, indices, allowed in (("input", op.inputs, allowed_in),
                                   ("output", op.outputs, allowed_out)):
        for i in indices:
            if i < 0:
                continue
            tensor = graph.tensors[i]
            if len(tensor.shape) > MAX_RANK:
                return f"{role} {tensor.name!r} has {len(tensor.shape)} dimensions (max 4)"
            if not constant[i] and tensor.dtype not in allowed:
                return f"{role} {tensor.name!r} is {tensor.dtype}"
    return None


@dataclass(frozen=True)
class _OpView:
    """An op with what its rules ask about: runtime vs constant inputs, dtypes, shapes."""

    graph: Graph
    op: OpInfo
    constant: list[bool]

    def option(self, name: str, default: object = 0) -> object:
        return getattr(self.op.options, name, default) if self.op.options else default

    def present(self) -> list[int]:
        return [i for i in self.op.inputs if i >= 0]

    @property
    def runtime_inputs(self) -> int:
        return sum(not self.constant[i] for i in self.present())

    @property
    def const_inputs(self) -> int:
        return sum(self.constant[i] for i in self.present())

    def input(self, k: int) -> TensorInfo | None:
        index = self.op.inputs[k] if k < len(self.op.inputs) else -1
        return self.graph.tensors[index] if index >= 0 else None

    def input_is_const(self, k: int) -> bool:
        index = self.op.inputs[k] if k < len(self.op.inputs) else -1
        return index >= 0 and self.constant[index]

    def output(self, k: int = 0) -> TensorInfo:
        return self.graph.tensors[self.op.outputs[k]]


# --- gpu_compatibility.cc, CheckGpuDelegateCompatibility, one small function per rule ---


def _io(view: _OpView, runtime: int, outputs: int = 1, const: int | None = None) -> str | None:
    """CheckInputsOutputs / CheckInputsConstsOutputs."""
    if view.runtime_inputs != runtime:
        return f"needs {runtime} runtime input(s), has {view.runtime_inputs}"
    if const is not None and view.const_inputs != const:
        return f"needs {const} constant input(s), has {view.const_inputs}"
    if len(view.op.outputs) != outputs:
        return f"needs {outputs} output(s), has {len(view.op.outputs)}"
    return None


def _activation(view: _OpView) -> str | None:
    if view.option("fusedActivationFunction") == SIGN_BIT:
        return "fused SIGN_BIT activation"
    return None


def _positive(view: _OpView, *names: str) -> str | None:
    bad = [n for n in names if int(view.option(n, 1)) <= 0]
    return f"non-positive {', '.join(bad)}" if bad else None


def _conv_io(view: _OpView) -> str | None:
    """CheckConvoultionInputOutput: 1 or 2 runtime inputs, one output, weights present."""
    if view.runtime_inputs > 2:
        return f"{view.runtime_inputs} runtime inputs (at most 2)"
    if len(view.op.outputs) != 1:
        return "more than one output"
    if view.runtime_inputs == 1 and len(view.op.inputs) < 2:
        return "no weights input"
    return None


def _conv(view: _OpView) -> str | None:
    return (_conv_io(view) or _positive(view, "strideH", "strideW", "dilationHFactor",
                                        "dilationWFactor") or _activation(view))


def _depthwise(view: _OpView) -> str | None:
    reason = _conv(view)
    if reason:
        return reason
    source, weights, bias = view.input(0), view.input(1), view.input(2)
    out = view.output()
    if not source or not weights or len(source.shape) != 4 or len(weights.shape) != 4 \
            or len(out.shape) != 4:
        return "input, filter and output must be 4-D"
    multiplier = int(view.option("depthMultiplier", 1))
    if source.shape[0] != out.shape[0] or weights.shape[3] != out.shape[3]:
        return "batch or filter channels do not match the output"
    if out.shape[3] != source.shape[3] * multiplier:
        return "output channels != input channels x depth multiplier"
    if bias is not None and math.prod(bias.shape) != out.shape[3]:
        return "bias size != output channels"
    if multiplier != 1 and source.shape[3] != 1:
        return "depth multiplier != 1 with more than one input channel"
    return None


def _fully_connected(view: _OpView) -> str | None:
    if view.option("weightsFormat") != 0:
        return "shuffled weights format"
    if view.runtime_inputs > 2:
        return "more than 2 runtime inputs"
    if view.input_is_const(0):
        return "constant input"
    source = view.input(0)
    if view.option("keepNumDims", False) and source and \
            len(source.shape) != len(view.output().shape):
        return "keep_num_dims with input and output ranks that differ"
    return None


def _broadcastable(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """CheckAddMulBroadcastCompatibility with enhanced broadcast (the offline default)."""
    if len(a) <= 1 or len(b) <= 1 or len(a) == len(b):
        return True
    return all(x == y or x == 1 or y == 1 for x, y in zip(reversed(a), reversed(b), strict=False))


def _add(view: _OpView) -> str | None:
    if len(view.op.inputs) != 2:
        return "needs two inputs"
    a, b = view.input(0), view.input(1)
    if a and b and not _broadcastable(a.shape, b.shape):
        return f"cannot broadcast {list(a.shape)} with {list(b.shape)}"
    return None


def _mul(view: _OpView) -> str | None:
    reason = _add(view)
    if reason:
        return reason
    a, b = view.input(0), view.input(1)
    if a and b and len(a.shape) == len(b.shape):
        a_smaller = any(x < y for x, y in zip(a.shape, b.shape, strict=True))
        b_smaller = any(y < x for x, y in zip(a.shape, b.shape, strict=True))
        if a_smaller and b_smaller:
            return "neither input is at least as large as the other in every dimension"
    return _activation(view)


def _unary(view: _OpView) -> str | None:
    return _io(view, runtime=1, const=0)


def _binary(view: _OpView) -> str | None:
    if _io(view, runtime=2, const=0) and _io(view, runtime=1, const=1):
        return "needs two runtime inputs, or one runtime and one constant"
    return _activation(view)


def _logical(view: _OpView) -> str | None:
    """model_builder.cc ElementwiseOperationParser: a comparison only feeds a float CAST."""
    consumers = view.graph.consumers(view.op.outputs[0])
    if len(consumers) != 1 or consumers[0].name != "CAST" or \
            view.graph.tensors[consumers[0].outputs[0]].dtype not in FLOATS:
        return "a comparison is taken only when a single CAST to float reads it"
    return _binary(view)


def _cast(view: _OpView) -> str | None:
    reason = _io(view, runtime=1)
    if reason:
        return reason
    src, dst = view.input(0), view.output()
    if src is None:
        return "no input"
    if src.dtype == "BOOL" and dst.dtype in FLOATS:
        producer = view.graph.producer(view.op.inputs[0])
        if producer is None or producer.name not in LOGICAL:
            return "bool to float only straight after a comparison (model_builder.cc)"
        return None
    if (src.dtype in FLOATS and dst.dtype == "BOOL") or (
            src.dtype in ("FLOAT32", "INT32") and dst.dtype in ("FLOAT32", "INT32")):
        return None
    return f"cast from {src.dtype} to {dst.dtype}"


def _pool(view: _OpView) -> str | None:
    return (_io(view, runtime=1) or _positive(view, "filterHeight", "filterWidth", "strideH",
                                               "strideW") or _activation(view))


def _axes(view: _OpView, k: int = 1) -> str | None:
    """CheckAxesAreInt32Const."""
    axes = view.input(k)
    if axes is None or not view.input_is_const(k):
        return "axes must be constant"
    return None if axes.dtype == "INT32" else f"axes are {axes.dtype}, not INT32"


def _mean(view: _OpView) -> str | None:
    return _io(view, runtime=1, const=1) or _axes(view)


def _reduce(view: _OpView) -> str | None:
    return _io(view, runtime=1) or _axes(view)


def _pad(view: _OpView) -> str | None:
    if view.op.name == "MIRROR_PAD" and view.option("mode") != 0:
        return "mirror pad mode other than REFLECT"
    reason = _io(view, runtime=1)
    if reason:
        return reason
    paddings = view.input(1)
    if paddings is None:
        return "no paddings input"
    if len(paddings.shape) != 2 or paddings.shape[0] not in (3, 4) or paddings.shape[1] != 2:
        return f"paddings of shape {list(paddings.shape)} (needs 4x2 or 3x2)"
    return None


def _softmax(view: _OpView) -> str | None:
    return None if view.option("beta", 1.0) == 1.0 else "softmax beta != 1"


def _rank_3_or_4(view: _OpView, min_inputs: int) -> str | None:
    if len(view.op.inputs) < min_inputs:
        return f"needs {min_inputs} inputs"
    source = view.input(0)
    if source is None or len(source.shape) not in (3, 4):
        return "input must be 3-D or 4-D"
    return None


def _strided_slice(view: _OpView) -> str | None:
    masks = [n for n in ("ellipsisMask", "newAxisMask", "shrinkAxisMask") if view.option(n)]
    if masks:
        return f"{', '.join(masks)} set"
    return _rank_3_or_4(view, 4)


def _slice(view: _OpView) -> str | None:
    return _rank_3_or_4(view, 3)


def _resize_bilinear(view: _OpView) -> str | None:
    if view.option("alignCorners", False) and view.option("halfPixelCenters", False):
        return "align_corners together with half_pixel_centers"
    return _io(view, runtime=1)


def _block(view: _OpView) -> str | None:
    reason = _io(view, runtime=1)
    if reason:
        return reason
    return None if int(view.option("blockSize", 0)) > 1 else "block size must be > 1"


def _dequantize(view: _OpView) -> str | None:
    if len(view.op.inputs) != 1 or len(view.op.outputs) != 1:
        return "needs one input and one output"
    source = view.input(0)
    return "int16 dequantization" if source is not None and source.dtype == "INT16" else None


def _batch_matmul(view: _OpView) -> str | None:
    if len(view.op.inputs) != 2 or len(view.op.outputs) != 1:
        return "needs two inputs and one output"
    return None


def _cumsum(view: _OpView) -> str | None:
    source, axis = view.input(0), view.input(1)
    if len(view.op.inputs) != 2 or source is None or axis is None:
        return "needs two inputs"
    if source.dtype not in FLOATS or view.output().dtype != source.dtype or \
            axis.dtype != "INT32" or not view.input_is_const(1):
        return "needs float data and a constant int32 axis"
    return None


def _one_runtime(view: _OpView) -> str | None:
    return _io(view, runtime=1)


_RULES: dict[str, Callable[[_OpView], str | None]] = {
    "ADD": _add, "MUL": _mul, "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _depthwise,
    "TRANSPOSE_CONV": _conv_io, "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool, "MAX_POOL_2D": _pool, "MEAN": _mean,
    "SUM": _reduce, "REDUCE_MAX": _reduce, "REDUCE_MIN": _reduce, "REDUCE_PROD": _reduce,
    "PAD": _pad, "MIRROR_PAD": _pad, "SOFTMAX": _softmax, "STRIDED_SLICE": _strided_slice,
    "SLICE": _slice, "RESIZE_BILINEAR": _resize_bilinear,
    "RESIZE_NEAREST_NEIGHBOR": _one_runtime, "RESHAPE": _one_runtime,
    "TRANSPOSE": _one_runtime, "TILE": _one_runtime, "QUANTIZE": _one_runtime,
    "HARD_SWISH": _one_runtime, "SPACE_TO_DEPTH": _block, "DEPTH_TO_SPACE": _block,
    "DEQUANTIZE": _dequantize, "CAST": _cast, "BATCH_MATMUL": _batch_matmul,
    "CUMSUM": _cumsum,
    **{name: _unary for name in UNARY},
    **{name: _binary for name in BINARY if name not in LOGICAL},
    **{name: _logical for name in LOGICAL},
}
