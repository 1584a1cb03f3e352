"""A landmark model and the crop it was trained on: image + face square -> points in pixels.

The crop is geometry's training crop (a square MODEL_SCALE x the landmark box, resampled
to the model's input, black outside the image), so the model sees a face framed as in
training; its normalised output (pixel / input size) is mapped back through the inverse of
the same affine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from face_keypoints import geometry
from face_keypoints.errors import BadInput
from face_keypoints.runtime.detector import Detection, landmark_square
from face_keypoints.runtime.predictor import load_predictor
from face_keypoints.schemes import IBUG68, Scheme, get_scheme

DEFAULT_SCHEME = IBUG68.name  # the points a model reports unless asked for another head


def cpu_model(model: str | Path | None) -> Path:
    """The model file to run on this CPU.

    Where `model` names a model folder without a precision (None, `default`, `lite`, an
    export folder), the file its export measured as the fastest within 1 % of fp32's NME
    (model.json's "cpu", export/tflite.py): on a CPU the fp16 file runs as fp32, the int8
    file in about half the time. Otherwise (a file, `default:fp16`, a folder whose
    model.json has no such record), the file resolve_model names.
    """
    from face_keypoints.models import DEFAULT_PRECISIONS, is_shipped, resolve_model

    path = resolve_model(model)
    names_folder = (model is None or (is_shipped(model) and ":" not in str(model))
                    or Path(model).is_dir())
    if not names_folder or path.suffix != ".tflite":
        return path
    cpu = _card(path.parent).get("cpu")
    pick = cpu.get("precision") if isinstance(cpu, dict) else None
    if not isinstance(pick, str) or pick == "keras":
        return path
    return resolve_model(model, prefer=(pick, *DEFAULT_PRECISIONS))


def precision_of(path: Path) -> str | None:
    """Which file of its export `path` is (fp32, fp16, int8 or keras, as model.json lists
    it); None for a file no model.json beside it names."""
    files = _card(path.parent).get("files", {})
    if isinstance(files, dict):
        for precision, entry in files.items():
            if isinstance(entry, dict) and entry.get("file") == path.name:
                return str(precision)
    return "keras" if path.suffix == ".keras" else None


def _card(folder: Path) -> dict:
    """The folder's model.json, or {} when it has none or cannot be read (loading the
    model reports that)."""
    try:
        card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def crop_square(points: np.ndarray) -> geometry.Square:
    """The training crop around landmarks: where a second pass, or the next frame of a
    tracked face, looks."""
    return geometry.square_around(geometry.landmark_box(points), geometry.MODEL_SCALE)


class Landmarker:
    """Points of one scheme of a model (.tflite with its model.json, or .keras).

    Without `model` (or with `default`), the default model shipped in the package, in
    the precision `cpu_model` picks; `default:PRECISION` one file of it. A model trained
    on caches of several schemes has one head per scheme: `scheme` picks one (default
    DEFAULT_SCHEME, or the model's first head when it has none of that scheme).
    `precision` says which file runs (None for a file no model.json names).
    """

    def __init__(self, model: str | Path | None = None, threads: int | None = None,
                 scheme: str | None = None) -> None:
        self.path = cpu_model(model)
        self.precision = precision_of(self.path)
        self._predictor = load_predictor(self.path, threads)
        heads = self._predictor.schemes
        if scheme is None:
            scheme = DEFAULT_SCHEME if DEFAULT_SCHEME in heads else heads[0]
        if scheme not in heads:
            raise BadInput(f"{self.path}: has no {scheme} head; its heads: {', '.join(heads)}")
        self.scheme: Scheme = get_scheme(scheme)
        self.input_size = self._predictor.input_size

    def points(self, image: np.ndarray, square: geometry.Square) -> np.ndarray:
        """(K, 2) points in image pixels of the face framed by `square` in an RGB image."""
        matrix = geometry.crop_matrix(square, self.input_size)
        crop = geometry.warp(image, matrix, self.input_size).astype(np.float32)
        out = self._predictor.predict(crop[None])[self.scheme.name][0].astype(np.float64)
        return geometry.transform_points(out * self.input_size, geometry.invert(matrix))

    def detected_points(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        """(K, 2) points of a detected face: a first pass on the crop the detection
        implies, then a second on the crop around the first pass's landmarks.

        The detection-to-crop relation is a fit on mostly frontal faces, and it frames
        profiles loosely; the first pass's landmarks frame the face as training did.
        Measured by `benchmarks/detectors.py --fit --model default:fp16`: box NME on
        100 MERL-RAV test faces at yaw 60-90 falls from 4.32 to 3.76 % (30-60: 3.36 to
        3.16 %; AFW, mostly frontal, inter-ocular: 4.85 and 4.89 %), for one more landmark
        inference per face.
        """
        first = self.points(image, landmark_square(detection))
        return self.points(image, crop_square(first))
