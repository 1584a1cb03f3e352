"""FaceLandmarker: landmarks of every face in a photo (`detect`) or a stream (`track`).

The same objects serve the `predict` verb, so the Python API and the command line give the
same faces, and `Face.to_dict` is the JSON that `predict` writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_keypoints import geometry
from face_keypoints.data.images import ImageError, read_rgb
from face_keypoints.errors import BadInput
from face_keypoints.resolve import ResolvedModel
from face_keypoints.runtime.detector import BlazeFace
from face_keypoints.runtime.landmarker import HIDDEN_BELOW, Landmarker, Reading
from face_keypoints.runtime.predictor import check_threads
from face_keypoints.runtime.smoothing import OneEuroParams
from face_keypoints.runtime.tracker import MIN_TRACKING_CONFIDENCE, Track, Tracker

STREAM_STEP = 1.0 / 30.0  # seconds between frames given to `track` without timestamps


@dataclass(frozen=True)
class Face:
    """One face: `points` (K, 2) in image pixels in `scheme`'s order, `box` the box of
    the points (x0, y0, x1, y1), `score` the face detector's confidence (for a tracked
    face, its confidence in this frame: the model's presence where it has one, else the
    detector's score on the face's crop). Where the model has those outputs, `presence`
    is the probability that the crop frames a face and `visible` (K,) each point's
    probability of being seen (None otherwise). `roll` is the angle in degrees of the
    crop that read the points (an aligned model's turns by the face's roll; 0 otherwise)."""

    box: np.ndarray
    score: float
    scheme: str
    points: np.ndarray
    presence: float | None = None
    visible: np.ndarray | None = None
    roll: float = 0.0

    def to_dict(self) -> dict:
        """The face as `predict` writes it to JSON (pixels to 0.01, score to 0.0001,
        presence and visibility to 0.001, roll to 0.01 degree; null where the model lacks
        the output)."""
        return {"box": [round(float(v), 2) for v in self.box],
                "score": round(float(self.score), 4),
                "scheme": self.scheme,
                "points": [[round(float(x), 2), round(float(y), 2)] for x, y in self.points],
                "presence": None if self.presence is None else round(float(self.presence), 3),
                "visible": (None if self.visible is None
                            else [round(float(v), 3) for v in self.visible]),
                "roll": round(float(self.roll), 2)}

    @property
    def hidden(self) -> np.ndarray | None:
        """(K,) True for the points the model says are not seen (visible < 0.5)."""
        return None if self.visible is None else np.asarray(self.visible) < HIDDEN_BELOW


def as_rgb(image: np.ndarray | str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a path (EXIF-rotated) or a gray, RGB or RGBA array."""
    if isinstance(image, str | Path):
        try:
            return read_rgb(Path(image), exif_rotate=True)
        except ImageError as err:
            raise BadInput(f"{image}: {err}") from None
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise BadInput(f"image array of dtype {array.dtype}: expected uint8")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return np.ascontiguousarray(np.repeat(array[:, :, None], 3, axis=2))
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return np.ascontiguousarray(array[:, :, :3])
    raise BadInput(f"image array of shape {array.shape}: expected (H, W), (H, W, 3) or "
                   "(H, W, 4)")


class FaceLandmarker:
    """Face detection (BlazeFace) + a landmark model, for photos and streams.

    `model` is a .tflite with its model.json or a .keras (default: the model shipped in
    the package, in the precision fastest on this CPU among those within 1 % of fp32's
    NME, timed at first use and cached per machine; `default:fp32`, `default:fp16`,
    `default:int8`, `default:keras` pick one of its files; `lite` and `full` name the
    smaller and the larger shipped model the same way). `precision` says which file
    runs. `scheme` picks the head of a model with several (ibug68 by default; wflw98
    for the 98 WFLW points): every Face and the tracking are in its points.
    `max_faces` caps the faces reported (best detector scores first). For `track`:
    `smoothing` turns the One Euro filter on (`min_cutoff`, `beta`, `d_cutoff`, see
    OneEuroParams), `redetect_every` is how many frames pass between searches of the
    whole frame for new faces while fewer than `max_faces` are tracked, and
    `min_tracking_confidence` the face presence that keeps a track (a model without a
    presence output keeps it while BlazeFace finds the face on its crop). Faces carry
    `presence` and `visible` where the model has those outputs.
    """

    def __init__(self, model: str | Path | ResolvedModel | None = None, *, threads: int | None = 1,
                 max_faces: int | None = None, scheme: str | None = None,
                 smoothing: bool = True, min_cutoff: float = OneEuroParams.min_cutoff,
                 beta: float = OneEuroParams.beta, d_cutoff: float = OneEuroParams.d_cutoff,
                 redetect_every: int = 10, min_score: float | None = None,
                 min_tracking_confidence: float = MIN_TRACKING_CONFIDENCE) -> None:
        if max_faces is not None and max_faces < 1:
            raise BadInput(f"max_faces {max_faces}: must be at least 1")
        if not 0.0 <= min_tracking_confidence <= 1.0:
            raise BadInput(f"min_tracking_confidence {min_tracking_confidence}: must be "
                           "from 0 to 1")
        check_threads(threads)
        try:
            params = OneEuroParams(min_cutoff, beta, d_cutoff) if smoothing else None
        except ValueError as err:
            raise BadInput(str(err)) from None
        self.landmarker = Landmarker(model, threads=threads, scheme=scheme)
        self.detector = BlazeFace(threads=threads, min_score=min_score)
        self.scheme = self.landmarker.scheme.name
        self.precision = self.landmarker.precision
        self.max_faces = max_faces
        self.tracker = Tracker(self.detector, self.landmarker, max_faces=max_faces,
                               redetect_every=redetect_every, smoothing=params,
                               min_tracking_confidence=min_tracking_confidence)
        self._time = 0.0

    def detect(self, image: np.ndarray | str | Path) -> list[Face]:
        """Every face of a photo (an RGB, gray or RGBA uint8 array, or an image path)."""
        image = as_rgb(image)
        faces = []
        for detection in self.detector.detect_photo(image)[: self.max_faces]:
            reading = self.landmarker.detected(image, detection)
            faces.append(self._face(reading.points, detection.score, reading))
        return faces

    def track(self, frame: np.ndarray, timestamp: float | None = None) -> list[Face]:
        """The faces of the next frame of a stream; `timestamp` in seconds (default: one
        frame at 30 fps after the previous), for the smoothing filter."""
        self._time = self._time + STREAM_STEP if timestamp is None else float(timestamp)
        tracks = self.tracker.step(as_rgb(frame), self._time)
        return [self._face(t.output, t.score, t) for t in tracks]

    def reset(self) -> None:
        """Start a new stream: forget the tracked faces."""
        self.tracker.reset()
        self._time = 0.0

    def _face(self, points: np.ndarray, score: float, seen: Reading | Track) -> Face:
        return Face(geometry.landmark_box(points), float(score), self.scheme, points,
                    seen.presence, seen.visible, seen.roll)
