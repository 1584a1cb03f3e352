"""A landmark model and the crop it was trained on: image + face square -> points in pixels.

The crop is geometry's training crop (a square MODEL_SCALE x the landmark box, resampled
to the model's input, black outside the image), so the model sees a face framed as in
training; its normalised output (pixel / input size) is mapped back through the inverse of
the same affine. A model trained with `align` (its card's `input.crop.align`) saw that
square turned about its centre to level the eyes, so it is run on crops turned by the
face's roll: from the detector's eye keypoints before any landmark is known, then from
the landmarks themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from face_keypoints import geometry
from face_keypoints.card import POINTS_PREFIX, PRESENCE, VISIBLE_PREFIX
from face_keypoints.errors import BadInput
from face_keypoints.resolve import ResolvedModel, resolve_model
from face_keypoints.runtime.cpu_precision import fastest
from face_keypoints.runtime.detector import Detection, eye_roll, landmark_square
from face_keypoints.runtime.predictor import load_predictor
from face_keypoints.schemes import IBUG68, Scheme, get_scheme

DEFAULT_SCHEME = IBUG68.name  # the points a model reports unless asked for another head
HIDDEN_BELOW = 0.5  # a point whose visibility is below this counts as not seen


@dataclass(frozen=True)
class Reading:
    """What the model says of one crop: (K, 2) points in image pixels and, where the model
    has those outputs, the probability that the crop frames a face as training does
    (`presence`) and each point's probability of being seen (`visible`, (K,)); `roll` is
    the angle of the crop that read them (degrees; 0 for an upright crop)."""

    points: np.ndarray
    presence: float | None = None
    visible: np.ndarray | None = None
    roll: float = 0.0


def crop_square(points: np.ndarray, align: Scheme | None = None,
                visible: np.ndarray | None = None) -> geometry.Square:
    """The training crop around landmarks: where a second pass, or the next frame of a
    tracked face, looks; with `align` (the points' scheme), turned by their roll as an
    aligned model's training crops were (the box stays the upright landmark box).

    Training levelled a face only where both eyes were annotated, and left a profile's
    crop upright (its far eye unannotated); so the roll counts only the points the
    model says are seen (`visible`, where it has that output), and a face with an eye
    unseen stays upright. On 200 MERL-RAV test faces at yaw 60-90 through the detector
    (`benchmarks/framing.py`, the shipped default) this takes the box NME from 5.48 %
    (the roll of every point, the far eye's guessed) to 4.31 %."""
    square = geometry.square_around(geometry.landmark_box(points), geometry.MODEL_SCALE)
    if align is None:
        return square
    seen = (np.ones(len(points), dtype=bool) if visible is None
            else np.asarray(visible) >= HIDDEN_BELOW)
    roll = align.roll(points, seen)
    return square if roll is None else square.rolled(roll)


class Landmarker:
    """Points of one scheme of a model (.tflite with its model.json, or .keras).

    Without `model` (or with `default`), the default model shipped in the package, in
    the precision fastest on this CPU among those within 1 % of fp32's NME (timed at
    first use and cached: runtime/cpu_precision.py); `default:PRECISION` one file of it,
    and an export folder the same way. A model trained
    on caches of several schemes has one head per scheme: `scheme` picks one (default
    DEFAULT_SCHEME, or the model's first head when it has none of that scheme).
    `precision` says which file runs (None for a file no model.json names).
    """

    def __init__(self, model: str | Path | ResolvedModel | None = None,
                 threads: int | None = None, scheme: str | None = None) -> None:
        self.model = (model if isinstance(model, ResolvedModel)
                      else resolve_model(model, choose=partial(fastest, threads=threads)))
        self.path = self.model.path
        self.precision = self.model.precision
        self._predictor = load_predictor(self.model, threads)
        heads = self._predictor.schemes
        if scheme is None:
            scheme = DEFAULT_SCHEME if DEFAULT_SCHEME in heads else heads[0]
        if scheme not in heads:
            raise BadInput(f"{self.path}: has no {scheme} head; its heads: {', '.join(heads)}")
        self.scheme: Scheme = get_scheme(scheme)
        self.input_size = self._predictor.input_size
        self.aligned = self.model.aligned
        self.has_presence = PRESENCE in self._predictor.extras
        visible = VISIBLE_PREFIX + scheme
        self._visible = visible if visible in self._predictor.extras else None
        self.has_visible = self._visible is not None

    def crop_square(self, points: np.ndarray,
                    visible: np.ndarray | None = None) -> geometry.Square:
        """The crop this model reads a face in whose landmarks are `points` (turned by
        the roll of their seen eyes for an aligned model: `crop_square`)."""
        return crop_square(points, self.scheme if self.aligned else None, visible)

    def detection_square(self, detection: Detection) -> geometry.Square:
        """The crop this model reads a detected face in first (turned by the detector's
        eye roll for an aligned model)."""
        square = landmark_square(detection)
        return square.rolled(eye_roll(detection)) if self.aligned else square

    def read(self, image: np.ndarray, square: geometry.Square) -> Reading:
        """The model's reading of the face framed by `square` in an RGB image."""
        matrix = geometry.crop_matrix(square, self.input_size)
        crop = geometry.warp(image, matrix, self.input_size).astype(np.float32)
        out = self._predictor.run(crop[None])
        points = out[POINTS_PREFIX + self.scheme.name][0].astype(np.float64)
        return Reading(
            geometry.transform_points(points * self.input_size, geometry.invert(matrix)),
            float(out[PRESENCE][0]) if self.has_presence else None,
            out[self._visible][0].astype(np.float64) if self._visible else None,
            square.angle)

    def points(self, image: np.ndarray, square: geometry.Square) -> np.ndarray:
        """(K, 2) points in image pixels of the face framed by `square` in an RGB image."""
        return self.read(image, square).points

    def detected(self, image: np.ndarray, detection: Detection) -> Reading:
        """The reading of a detected face: a first pass on the crop the detection
        implies, then a second on the crop around the first pass's landmarks.

        The detection-to-crop relation is a fit on mostly frontal faces, and it frames
        profiles loosely; the first pass's landmarks frame the face as training did.
        Measured by `benchmarks/detectors.py --fit --model default:fp16`: box NME on
        100 MERL-RAV test faces at yaw 60-90 falls from 4.63 to 3.70 % with the shipped
        default (30-60: 3.20 to 3.04 %; AFW, mostly frontal, inter-ocular: 4.64 and
        4.65 %), for one more landmark inference per face. An aligned model's first crop
        levels the detector's eye keypoints, its second the first pass's eyes.
        """
        first = self.read(image, self.detection_square(detection))
        return self.read(image, self.crop_square(first.points, first.visible))

    def detected_points(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        """(K, 2) points of a detected face (`detected`'s)."""
        return self.detected(image, detection).points
