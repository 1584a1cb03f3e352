"""A .tflite's main graph read from its flatbuffer: the tensors and ops that the GPU check
(export/gpu_ops.py) and the multiply-accumulate count of `benchmark` look at."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from face_keypoints.errors import BadInput

TFLITE_IDENTIFIER = b"TFL3"  # the flatbuffer's file identifier, bytes 4..8




@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # the schema's TensorType name: FLOAT32, FLOAT16, INT8, INT32, ...
    shape: tuple[int, ...]
    constant: bool  # its data is stored in the file (weights), not computed at run time


@dataclass(frozen=True)
class OpInfo:
    index: int
    name: str  # builtin operator name (CONV_2D), or the custom op's code
    version: int
    inputs: tuple[int, ...]  # tensor indices; -1 is an omitted optional input
    outputs: tuple[int, ...]
    options: object | None  # the schema's *OptionsT object, None when the op has none


@dataclass(frozen=True)
class Graph:
    """The main subgraph of a .tflite: what the delegate and a MAC count look at."""

    tensors: tuple[TensorInfo, ...]
    ops: tuple[OpInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def consumers(self, tensor: int) -> list[OpInfo]:
        return [op for op in self.ops if tensor in op.inputs]

    def producer(self, tensor: int) -> OpInfo | None:
        return next((op for op in self.ops if tensor in op.outputs), None)


def read_graph(path: str | Path) -> Graph:
    """Parse a .tflite file; BadInput when it is not one."""
    from ai_edge_litert import schema_py_generated as schema

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BadInput(f"{path}: cannot read: {err.strerror or err}") from None
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise BadInput(f"{path}: not a TFLite model (no TFL3 flatbuffer identifier)")
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
        subgraph = model.subgraphs[0]
    except Exception as err:  # a damaged flatbuffer fails in many ways; all mean unusable
        detail = (str(err).strip() or type(err).__name__).splitlines()[0]
        raise BadInput(f"{path}: damaged TFLite model: truncated or corrupt ({len(data):,} "
                       f"bytes; {detail})") from None
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)

    def is_constant(buffer_index: int) -> bool:
        buffer = model.buffers[buffer_index] if buffer_index < len(model.buffers) else None
        return buffer is not None and bool(
            (buffer.data is not None and len(buffer.data)) or buffer.size)

    tensors = tuple(
        TensorInfo(
            name=_text(t.name),
            dtype=type_names.get(t.type, str(t.type)),
            shape=tuple(int(d) for d in (t.shape if t.shape is not None else ())),
            constant=is_constant(t.buffer),
        )
        for t in subgraph.tensors
    )
    ops = []
    for index, op in enumerate(subgraph.operators or ()):
        code = model.operatorCodes[op.opcodeIndex]
        # Codes past 127 live in builtinCode; older files keep them in the deprecated byte.
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = (_text(code.customCode) if builtin == schema.BuiltinOperator.CUSTOM
                else op_names.get(builtin, f"BUILTIN_{builtin}"))
        ops.append(OpInfo(index, name, int(code.version),
                          tuple(int(i) for i in _seq(op.inputs)),
                          tuple(int(i) for i in _seq(op.outputs)), op.builtinOptions))
    return Graph(tensors, tuple(ops), tuple(int(i) for i in _seq(subgraph.inputs)),
                 tuple(int(i) for i in _seq(subgraph.outputs)))


def _enum_names(enum: type) -> dict[int, str]:
    return {value: name for name, value in vars(enum).items() if not name.startswith("_")}


def _text(value: bytes | str | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


def _seq(values: object) -> list:
    return [] if values is None else list(values)


def count_macs(graph: Graph) -> int:
    """Multiply-accumulates of the convolutions and dense layers, from their tensor shapes.

    CONV_2D: output elements x kernel height x width x input channels per group (the
    filter is OHWI); DEPTHWISE_CONV_2D: output elements x kernel area (filter 1HWO);
    FULLY_CONNECTED: output elements x input features (weights are units x features).
    """
    total = 0
    for op in graph.ops:
        if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        out = math.prod(graph.tensors[op.outputs[0]].shape)
        weights = graph.tensors[op.inputs[1]].shape
        if op.name == "CONV_2D":
            total += out * weights[1] * weights[2] * weights[3]
        elif op.name == "DEPTHWISE_CONV_2D":
            total += out * weights[1] * weights[2]
        else:
            total += out * weights[-1]
    return total
