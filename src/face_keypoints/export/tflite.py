"""Keras model -> .tflite with a fixed batch of 1, and the model.json that describes it.

A mobile GPU delegate wants static shapes, so the graph is converted from a copy of the
model whose input is `keras.Input(batch_size=1)`. (Converting from a concrete function
instead silently leaves the weights out with this TensorFlow/Keras pair.) model.json
carries what a runtime cannot read from the flatbuffer: the crop rule, the input range
and which output belongs to which landmark scheme.

Precisions: fp32; fp16 (float16 weights read through DEQUANTIZE ops, float32 input and
output: the file the GPU delegate wants, which takes the float16 weights as they are);
int8 (full-integer: int8 weights and activations with int32 biases, calibrated on
representative images; float32 input and output unless `int8_io`, which makes them int8
too, their scale and zero point recorded in model.json).

On a CPU the fp16 file runs as fp32 (LiteRT turns its weights back into float32), while
the int8 file runs integer kernels in about half the time on some CPUs and more slowly on
others. So the export measures each file's NME drift against fp32 and its latency here,
and model.json's "cpu" records them with the fastest file within CPU_TOLERANCE of fp32's
NME on this machine. The NMEs say which files a CPU may run; which of them predict and
FaceLandmarker run is timed again on the machine that runs them
(runtime/cpu_precision.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import keras
import numpy as np

from face_keypoints import geometry
from face_keypoints.card import (
    CPU_TOLERANCE,
    FORMAT_VERSION,
    PRECISIONS,
    ModelCard,
    within_tolerance,
)
from face_keypoints.errors import FaceKeypointsError
from face_keypoints.fileio import write_atomic
from face_keypoints.model.network import INPUT_NAME
from face_keypoints.quiet import is_verbose, native_stderr_silenced

CPU_RUNS = 300  # timed inferences per file, interleaved, for the CPU pick


def convert(model: keras.Model, path: Path, precision: str = "fp32",
            representative: Callable[[], Iterable[np.ndarray]] | None = None,
            int8_io: bool = False) -> None:
    """Write `model` as a batch-1 TFLite flatbuffer at `path` (atomically).

    int8 needs `representative`: a callable that yields float32 images (1, S, S, 3), RGB
    0..255, for calibrating the activation ranges.
    """
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "int8" and representative is None:
        raise ValueError("int8 needs representative images to calibrate on")
    if int8_io and precision != "int8":
        raise ValueError("integer input and output apply to int8 only")
    image = keras.Input(shape=model.input_shape[1:], batch_size=1, name=INPUT_NAME)
    fixed = keras.Model(image, model(image), name=model.name)
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x] for x in representative())
        # Builtin int8 kernels only: conversion fails rather than leave a float op behind.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    # The converter prints its temporary SavedModel's signature on stdout; keep stdout
    # clean, and stderr for our lines: int8 calibration warns that the float input has no
    # statistics, which is what a float input is meant to have.
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            if not is_verbose():
                warnings.filterwarnings("ignore", "Statistics for quantized inputs")
            flatbuffer = converter.convert()
    except Exception as err:  # the converter's own errors carry no common base class
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FaceKeypointsError(f"{Path(path).name}: the TFLite converter could not make "
                                 f"the {precision} file ({reason}); --verbose shows its "
                                 "messages") from None
    write_atomic(Path(path), lambda tmp: tmp.write_bytes(flatbuffer))


def write_model_json(directory: Path, model: keras.Model, files: dict[str, str],
                     source_run: str | Path | None, calibrated_on: str | None = None,
                     aligned: bool = False) -> Path:
    """Describe the exported `files` ({precision: file name in `directory`}; the key
    "keras" for the copy of the source .keras) for runtimes; `calibrated_on` is the cache
    whose annotation convention the outputs were moved onto (calibration.py); `aligned`
    a model trained on crops turned to level the eyes (`input.crop.align`)."""
    directory = Path(directory)
    size = int(model.input_shape[1])
    crop = {"rule": "square around the face box", "scale": geometry.MODEL_SCALE}
    if aligned:
        crop["align"] = True
    card = {
        "format_version": FORMAT_VERSION,
        "name": model.name,
        "input": {
            "name": INPUT_NAME,
            "size": size,
            "channels": 3,
            "dtype": "float32",
            "range": [0, 255],
            "color": "RGB",
            "crop": crop,
        },
        "outputs": ModelCard.describe_outputs(list(model.output_names)),
        "files": {precision: _describe(directory / file) for precision, file in files.items()},
        "source_run": None if source_run is None else str(source_run),
        "calibrated_on": calibrated_on,
    }
    return ModelCard.write(directory, card).path


def _describe(path: Path) -> dict[str, object]:
    """File name, digest and size; for a .tflite with integer input or output, how to
    convert them: real = scale * (integer - zero_point)."""
    from ai_edge_litert.interpreter import Interpreter

    data = path.read_bytes()
    card: dict[str, object] = {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(),
                               "size_bytes": len(data)}
    if path.suffix != ".tflite":
        return card
    with native_stderr_silenced():
        interpreter = Interpreter(model_content=data)
    for role, details in (("input", interpreter.get_input_details()),
                          ("output", interpreter.get_output_details())):
        dtype = np.dtype(details[0]["dtype"])
        if np.issubdtype(dtype, np.integer):
            card[f"{role}_dtype"] = dtype.name
            card[f"{role}_quantization"] = [
                {"scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1])}
                for d in details]
    return card


def cpu_pick(nme: dict[str, float | None], median_us: dict[str, float]) -> str | None:
    """The fastest precision whose NME is within CPU_TOLERANCE of fp32's (fp32 itself
    always is); None without an NME for fp32."""
    eligible = [p for p in within_tolerance(nme) if p in median_us]
    return min(eligible, key=lambda p: median_us[p]) if eligible else None


def record_cpu_precision(model_json: Path, files: dict[str, Path],
                         nme: dict[str, float | None], measured_on: str | Path,
                         threads: int = 1, runs: int = CPU_RUNS) -> dict:
    """Time every .tflite of `files` ({precision: path}) on this CPU, interleaved,
    with `threads`; write into `model_json` (atomically) each one's NME (`nme`, % on
    the cache `measured_on`), its drift against fp32 and its median latency, and the
    precision `cpu_pick` makes of them. Returns that "cpu" entry."""
    from face_keypoints.runtime.flatbuffer import read_graph
    from face_keypoints.runtime.timing import interleaved, tflite_subject

    subjects = [tflite_subject(p, Path(path), threads, read_graph(path))
                for p, path in files.items()]
    interleaved(subjects, max(5, runs // 10))  # the warm-up
    timed = interleaved(subjects, runs)
    median = {p: float(np.median(timed[p])) for p in files}
    reference = nme.get("fp32")

    def drift(value: float | None) -> float | None:
        if value is None or reference is None or not reference:
            return None
        return round(100.0 * (value / reference - 1.0), 3)

    entry = {
        "precision": cpu_pick(nme, median),
        "rule": f"the fastest file whose NME is within {100 * CPU_TOLERANCE:g} % of fp32's",
        "measured_on": str(measured_on),
        "threads": threads,
        "files": {p: {"nme_pct": None if nme.get(p) is None else round(float(nme[p]), 4),
                      "nme_drift_vs_fp32_pct": drift(nme.get(p)),
                      "median_us": round(median[p], 1)} for p in files},
    }
    ModelCard.read(Path(model_json).parent).with_cpu(entry)
    return entry
