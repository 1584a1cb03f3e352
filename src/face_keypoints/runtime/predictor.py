"""One interface over a trained model, whether a Keras .keras file or an exported .tflite.

evaluate and predict go through `load_predictor`, so a Keras model and its TFLite export
are measured by the same code and can be compared number for number. Beside the points,
a model may have a face-presence output and per-point visibility outputs (`extras`):
`run` returns every output of one inference by name, `predict` the points alone.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path
from typing import Protocol

import numpy as np

from face_keypoints.card import MODEL_JSON, POINTS_PREFIX, PRESENCE, VISIBLE_PREFIX, ModelCard
from face_keypoints.errors import BadInput
from face_keypoints.quiet import native_stderr_silenced
from face_keypoints.resolve import ResolvedModel, listing, resolve_model

THREADS_PER_CPU = 2  # inference threads allowed per CPU; more only slow LiteRT down


class Predictor(Protocol):
    """Images (N, S, S, 3) float32 RGB 0..255 -> {scheme: (N, K, 2) normalised points}."""

    path: Path
    kind: str
    input_size: int
    schemes: list[str]

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]: ...


def load_predictor(model: str | Path | ResolvedModel,
                   threads: int | None = None) -> KerasPredictor | TFLitePredictor:
    """Open a .keras or .tflite model (a path, or a model resolve_model resolved, with its
    card); BadInput (one line) when it is not one of ours."""
    check_threads(threads)
    resolved = model if isinstance(model, ResolvedModel) else resolve_model(Path(model))
    path = resolved.path
    if path.exists() and not path.is_file():
        raise BadInput(f"{path}: not a regular file (a FIFO, socket or device), not a model")
    if not path.exists():
        beside = (f"; {path.parent} holds {listing(path.parent)}" if path.parent.is_dir()
                  else "")
        raise BadInput(f"{path}: no such model file{beside}")
    if resolved.card is not None:
        resolved.card.check_file(path)
    if path.suffix == ".keras":
        return KerasPredictor(path, threads)
    if path.suffix == ".tflite":
        return TFLitePredictor(path, threads, resolved.card)
    raise BadInput(f"{path}: not a model file (expected .keras or .tflite)")


class KerasPredictor:
    """A .keras model as saved by train: one output "points_<scheme>" per scheme."""

    kind = "keras"

    def __init__(self, path: Path, threads: int | None = None, batch_size: int = 64) -> None:
        import keras

        from face_keypoints.model.heads import output_name
        from face_keypoints.model.network import model_schemes

        if threads:
            _set_tf_threads(threads)
        if not zipfile.is_zipfile(path):  # Keras would call it "File not found"
            raise BadInput(f"{path}: not a loadable Keras model: not a .keras (zip) archive; "
                           "the file is damaged or of another kind")
        try:
            self.model = keras.models.load_model(path, compile=False)
        except Exception as err:  # Keras raises many types for a bad file; all mean "unusable"
            raise BadInput(f"{path}: not a loadable Keras model: {_first_line(err)}") from None
        try:
            self.schemes = model_schemes(self.model)
        except ValueError as err:
            raise BadInput(f"{path}: {err}") from None
        self.path = path
        self.input_size = int(self.model.input_shape[1])
        self._outputs = {name: output_name(name) for name in self.schemes}
        self.extras = [n for n in self.model.output_names
                       if n == PRESENCE or n.startswith(VISIBLE_PREFIX)]
        self._batch_size = batch_size

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every output by name: points_<scheme> (N, K, 2), presence (N,), visible_<scheme>
        (N, K)."""
        images = np.asarray(images, np.float32)
        # A call costs a fraction of predict's set-up for the one crop a tracker asks for.
        out = (self.model(images, training=False) if len(images) <= self._batch_size
               else self.model.predict(images, batch_size=self._batch_size, verbose=0))
        return {name: _shaped(name, np.asarray(out[name], np.float32), len(images))
                for name in [*self._outputs.values(), *self.extras]}

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        out = self.run(images)
        return {scheme: out[name] for scheme, name in self._outputs.items()}


class TFLitePredictor:
    """An exported .tflite (batch 1) and the model.json beside it, which names its schemes.

    Output tensors carry generated names, so each is matched to its scheme by its size 2K
    (unique per scheme).
    """

    kind = "tflite"

    def __init__(self, path: Path, threads: int | None = None,
                 card: ModelCard | None = None) -> None:
        card = card if card is not None else ModelCard.read(path.parent)
        self._interpreter = open_interpreter(path, threads)
        self.path = path
        (image,) = self._interpreter.get_input_details()
        self._input = image["index"]
        self.input_size = int(image["shape"][1])
        if self.input_size != card.input_size:
            raise BadInput(f"{path}: input is {self.input_size} px but {MODEL_JSON} says "
                           f"{card.input_size}")
        named = _signature_outputs(self._interpreter)
        by_size = {int(np.prod(o["shape"])): o["index"]
                   for o in self._interpreter.get_output_details()}
        self._outputs: dict[str, int] = {}  # {output name: tensor index}
        for scheme, num_points in card.outputs.items():
            index = named.get(POINTS_PREFIX + scheme, by_size.get(2 * num_points))
            if index is None:
                raise BadInput(f"{path}: no output of size {2 * num_points} for scheme "
                               f"{scheme} named in {MODEL_JSON}")
            self._outputs[POINTS_PREFIX + scheme] = index
        self.schemes = [name.removeprefix(POINTS_PREFIX) for name in self._outputs]
        self.extras = [PRESENCE] if card.has_presence else []
        self.extras += [VISIBLE_PREFIX + scheme for scheme in card.visible]
        for name in self.extras:
            if name not in named:
                raise BadInput(f"{path}: {MODEL_JSON} lists the output {name}, which the "
                               "model does not have")
            self._outputs[name] = named[name]

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every output by name, as KerasPredictor.run; one image at a time: the exported
        graph has a fixed batch of 1."""
        images = np.asarray(images, np.float32)
        out: dict[str, list[np.ndarray]] = {name: [] for name in self._outputs}
        for image in images:
            self._interpreter.set_tensor(self._input, image[None])
            self._interpreter.invoke()
            for name, index in self._outputs.items():
                out[name].append(self._interpreter.get_tensor(index)[0])
        return {name: _shaped(name, np.asarray(values, np.float32), len(images))
                for name, values in out.items()}

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        out = self.run(images)
        return {scheme: out[POINTS_PREFIX + scheme] for scheme in self.schemes}


def _shaped(name: str, values: np.ndarray, count: int) -> np.ndarray:
    """An output of `count` images as the runtime reads it: points (N, 2K) x0, y0, x1,
    y1, ... -> (N, K, 2); presence (N, 1) -> (N,); visibility (N, K) as it is."""
    if name.startswith(POINTS_PREFIX):
        return values.reshape(count, -1, 2)
    if name == PRESENCE:
        return values.reshape(count)
    return values.reshape(count, -1)


def _signature_outputs(interpreter) -> dict[str, int]:
    """{output name: tensor index} from the model's serving signature (the Keras output
    names, which the converter keeps there); empty for a model without one."""
    try:
        runner = interpreter.get_signature_runner()
    except ValueError:
        return {}
    return {str(name): int(detail["index"])
            for name, detail in runner.get_output_details().items()}


def check_threads(threads: int | None) -> None:
    """BadInput unless `threads` is None or 1 to THREADS_PER_CPU x this machine's CPUs:
    LiteRT starts every thread it is given, and a huge count starves the machine and can
    crash it."""
    if threads is None:
        return
    cpus = os.cpu_count() or 1
    if threads < 1 or threads > THREADS_PER_CPU * cpus:
        raise BadInput(f"threads {threads}: give 1 to {THREADS_PER_CPU * cpus} "
                       f"({THREADS_PER_CPU} per CPU; this machine has {cpus})")


def open_interpreter(path: Path, threads: int | None = None):
    """A LiteRT interpreter with its tensors allocated; BadInput when `path` is no model."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        with native_stderr_silenced():  # LiteRT's XNNPACK note, for every interpreter
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise BadInput(f"{path}: not a loadable TFLite model: {_first_line(err)}") from None
    return interpreter


def _set_tf_threads(threads: int) -> None:
    """TensorFlow takes thread counts only before it first runs; later calls are ignored."""
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
