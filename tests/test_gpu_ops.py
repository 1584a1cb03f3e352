"""The GPU-delegate check: our exports pass it in every precision; an op the delegate has
no parser for fails it even though TensorFlow's own Analyzer passes it; and the version,
type, rank and fp16-weight rules read from the delegate's sources hold on small graphs; every
head we offer exports to files that run on the GPU."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from face_keypoints.errors import BadInput
from face_keypoints.export.gpu_ops import PARSERS, check_gpu, check_graph
from face_keypoints.model.heads import HEAD_NAMES
from face_keypoints.runtime.flatbuffer import Graph, OpInfo, TensorInfo

SIZE = 96

def _tiny():
    import keras

    from face_keypoints.model.network import ModelSpec, build_model

    keras.utils.set_random_seed(0)
    return build_model(ModelSpec(depth=3, input_size=SIZE, head="gap"))


def _with_gather(model):
    """The tiny model with its points reversed by keras.ops.take: a GATHER in TFLite."""
    import keras

    raw = keras.layers.Dense(136, name="raw")(model.get_layer("points_ibug68").input)
    reversed_ = keras.ops.take(raw, np.arange(136)[::-1].copy(), axis=-1)
    points = keras.layers.Identity(name="points_ibug68")(reversed_)
    return keras.Model(model.input, {"points_ibug68": points}, name="with_gather")


def _images():
    rng = np.random.default_rng(0)
    for _ in range(4):
        yield rng.uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from face_keypoints.export.tflite import convert

    folder = tmp_path_factory.mktemp("gpu_ops")
    model = _tiny()
    files = {}
    for name, precision, int8_io in (("fp32", "fp32", False), ("fp16", "fp16", False),
                                     ("int8", "int8", False), ("int8_io", "int8", True)):
        files[name] = folder / f"{name}.tflite"
        convert(model, files[name], precision, representative=_images, int8_io=int8_io)
    files["gather"] = folder / "gather.tflite"
    convert(_with_gather(model), files["gather"])
    return files


@pytest.mark.parametrize("name", ["fp32", "fp16", "int8", "int8_io"])
def test_every_precision_runs_on_the_gpu(exports: dict[str, Path], name: str):
    report = check_gpu(exports[name])
    assert report.ok, report.describe()
    assert report.describe().endswith("ops run on the GPU delegate")
    quantized = any("quantized model" in note for note in report.notes)
    assert quantized == name.startswith("int8")


def test_fp16_weight_dequantize_goes_with_its_consumers(exports: dict[str, Path]):
    report = check_gpu(exports["fp16"])
    assert sum(v.name == "DEQUANTIZE" for v in report.verdicts) > 5
    assert all(v.reason is None for v in report.verdicts)


def test_gather_falls_back_although_the_analyzer_passes_it(exports: dict[str, Path]):
    import tensorflow as tf

    report = check_gpu(exports["gather"])
    assert not report.ok
    assert [v.name for v in report.fallback] == ["GATHER"]
    assert "no parser" in report.fallback[0].reason
    assert "GATHER (op" in report.describe()

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_path=str(exports["gather"]),
                                              gpu_compatibility=True)
    assert "looks compatible with GPU delegate" in text.getvalue()


def test_not_a_tflite_is_bad_input(tmp_path: Path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(BadInput, match="not a TFLite model"):
        check_gpu(path)


def test_parser_names_are_schema_names():
    from ai_edge_litert import schema_py_generated as schema

    names = {n for n in vars(schema.BuiltinOperator) if not n.startswith("_")}
    assert set(PARSERS) <= names


# --- rules on hand-built graphs -----------------------------------------------------------


def _graph(tensors: list[TensorInfo], ops: list[OpInfo]) -> Graph:
    return Graph(tuple(tensors), tuple(ops), (0,), (len(tensors) - 1,))


def _t(shape: tuple[int, ...], dtype: str = "FLOAT32", constant: bool = False) -> TensorInfo:
    return TensorInfo(f"t{shape}", dtype, shape, constant)


def _conv_graph(version: int = 1, input_dtype: str = "FLOAT32") -> Graph:
    from ai_edge_litert import schema_py_generated as schema

    options = schema.Conv2DOptionsT()
    options.strideH = options.strideW = 1
    tensors = [_t((1, 8, 8, 3), input_dtype), _t((4, 3, 3, 3), constant=True),
               _t((4,), constant=True), _t((1, 8, 8, 4))]
    return _graph(tensors, [OpInfo(0, "CONV_2D", version, (0, 1, 2), (3,), options)])


def test_op_version_beyond_the_parser_falls_back():
    assert check_graph(_conv_graph(version=6), Path("m.tflite")).ok
    report = check_graph(_conv_graph(version=7), Path("m.tflite"))
    assert "version 7" in report.fallback[0].reason


def test_runtime_tensor_type_must_be_float_or_quantized():
    assert check_graph(_conv_graph(input_dtype="INT8"), Path("m.tflite")).ok
    report = check_graph(_conv_graph(input_dtype="INT16"), Path("m.tflite"))
    assert "is INT16" in report.fallback[0].reason


def test_five_dimensional_tensors_fall_back():
    tensors = [_t((1, 2, 3, 4, 5)), _t((1, 2, 3, 4, 5))]
    report = check_graph(_graph(tensors, [OpInfo(0, "RELU", 1, (0,), (1,), None)]),
                         Path("m.tflite"))
    assert "5 dimensions" in report.fallback[0].reason


def test_fp16_weights_of_a_cpu_op_stay_on_the_cpu():
    tensors = [_t((1, 8)), _t((8,), "FLOAT16", constant=True), _t((8,)), _t((1, 8))]
    ops = [OpInfo(0, "DEQUANTIZE", 3, (1,), (2,), None),
           OpInfo(1, "ADD", 1, (0, 2), (3,), None)]
    assert check_graph(_graph(tensors, ops), Path("m.tflite")).ok
    ops[1] = OpInfo(1, "GATHER", 1, (0, 2), (3,), None)
    report = check_graph(_graph(tensors, ops), Path("m.tflite"))
    assert [v.name for v in report.fallback] == ["DEQUANTIZE", "GATHER"]


def test_a_comparison_needs_a_cast_to_float_after_it():
    tensors = [_t((1, 4)), _t((1, 4)), _t((1, 4), "BOOL"), _t((1, 4))]
    compare = OpInfo(0, "GREATER", 1, (0, 1), (2,), None)
    cast = OpInfo(1, "CAST", 1, (2,), (3,), None)
    assert check_graph(_graph(tensors, [compare, cast]), Path("m.tflite")).ok
    report = check_graph(_graph(tensors[:3], [compare]), Path("m.tflite"))
    assert "CAST to float" in report.fallback[0].reason


@pytest.mark.parametrize("head", HEAD_NAMES)
def test_every_head_runs_on_the_gpu_at_every_precision(tmp_path: Path, head: str):
    import keras

    from face_keypoints.export.tflite import convert
    from face_keypoints.model.network import ModelSpec, build_model

    keras.utils.set_random_seed(0)
    model = build_model(ModelSpec(depth=7, input_size=SIZE, head=head))
    for precision in ("fp32", "fp16", "int8"):
        path = tmp_path / f"{head}_{precision}.tflite"
        convert(model, path, precision, representative=_images)
        report = check_gpu(path)
        assert report.ok, report.describe()
