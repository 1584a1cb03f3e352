"""A landmark model and the crop it was trained on: image + face square -> points in pixels.

The crop is geometry's training crop (a square MODEL_SCALE x the landmark box, resampled
to the model's input, black outside the image), so the model sees a face framed as in
training; its normalised output (pixel / input size) is mapped back through the inverse of
the same affine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from face_keypoints import geometry
from face_keypoints.errors import BadInput
from face_keypoints.runtime.detector import Detection, landmark_square
from face_keypoints.runtime.predictor import load_predictor
from face_keypoints.schemes import Scheme, get_scheme


def crop_square(points: np.ndarray) -> geometry.Square:
    """The training crop around landmarks: where a second pass, or the next frame of a
    tracked face, looks."""
    return geometry.square_around(geometry.landmark_box(points), geometry.MODEL_SCALE)


class Landmarker:
    """Points of one scheme of a model (.tflite with its model.json, or .keras).

    Without `model` (or with `default`), the default model shipped in the package;
    `default:PRECISION` one file of it. Without `scheme`, the model's first (a model
    trained on several caches has one head per scheme).
    """

    def __init__(self, model: str | Path | None = None, threads: int | None = None,
                 scheme: str | None = None) -> None:
        from face_keypoints.models import resolve_model

        self.path = resolve_model(model)
        self._predictor = load_predictor(self.path, threads)
        if scheme is not None and scheme not in self._predictor.schemes:
            raise BadInput(f"{self.path}: predicts {', '.join(self._predictor.schemes)}, "
                           f"not {scheme}")
        self.scheme: Scheme = get_scheme(scheme or self._predictor.schemes[0])
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
