"""Tracking as MediaPipe's face mesh does it: the last frame's landmarks place the next crop.

The crop of a tracked face is the training crop around the box of its previous (raw,
unsmoothed) landmarks (for an aligned model, turned by their roll: Landmarker.crop_square),
which frames the face better than a detector box does and costs no search of the whole
frame. Each frame decides whether the face is still there, and the
track ends when the answer is no:

* the landmarks must look like a face framed as in training (`lost`): a regression model
  returns some shape whatever it is shown, but off a face the shape shrinks or drifts
  from the crop's centre or out of the image;
* nor may they shrink below SHRINK_LIMIT of the face's size when a whole-frame search
  last saw it: a face leaving the frame drags the crop after its last visible part (an
  ear, hair), and the shape shrinks there a little each frame, each step within
  SIDE_RANGE, while a real face does not recede that fast between two searches;
* a model with a face-presence output answers itself, as MediaPipe's does: the track is
  kept while its presence stays at least `min_tracking_confidence`, and no detector runs
  on tracked crops;
* a model without one (older exports) falls back to BlazeFace run on the crop alone
  (where the face fills the input, about 1 ms), which must find a face with at least
  TRACK_MIN_SCORE, a lower bar than for finding a face in the first place, so that a
  known face turning to a large yaw keeps its track while an empty crop loses it.

The whole frame is searched when no face is tracked, and every `redetect_every` frames
while fewer than `max_faces` are, for faces that came into view; with a presence output,
a face found there is kept only when its presence reaches the same threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from face_keypoints import geometry
from face_keypoints.runtime.detector import BlazeFace, iou
from face_keypoints.runtime.landmarker import Landmarker, Reading, crop_square
from face_keypoints.runtime.smoothing import OneEuroFilter, OneEuroParams

# A face framed as in training has a landmark box of 1 / MODEL_SCALE = 0.8 of the crop;
# off-face crops make the predicted shape shrink or drift off centre. The bounds are wide
# around 0.8 so that real faces, expressions and poses keep their track.
SIDE_RANGE = (0.6, 1.05)
MAX_OFFSET = 0.15  # landmark box centre from the crop centre, in crop sides
MIN_INSIDE = 0.5  # fraction of the points that must lie inside the image
TRACK_MIN_SCORE = 0.3  # detector score on the crop that keeps a track (no presence output)
MIN_TRACKING_CONFIDENCE = 0.5  # presence that keeps a track (MediaPipe's default)
SHRINK_LIMIT = 0.6  # crop side, against the side when a whole-frame search last saw it
MATCH_IOU = 0.3  # a detection and a track are one face above this crop overlap
SAME_FACE_IOU = 0.5  # two tracks above this crop overlap have converged on one face


def lost(points: np.ndarray, square: geometry.Square, width: int, height: int) -> bool:
    """True when landmarks predicted in `square` do not look like a face framed there.
    A turned square (an aligned model's) has the centre and side of the upright one
    around the same landmarks, so the same upright box is measured against it."""
    box = geometry.landmark_box(points)
    side = max(box[2] - box[0], box[3] - box[1]) / square.side
    offset = np.hypot((box[0] + box[2]) / 2 - square.cx, (box[1] + box[3]) / 2 - square.cy)
    inside = np.mean((points[:, 0] >= 0) & (points[:, 0] <= width - 1)
                     & (points[:, 1] >= 0) & (points[:, 1] <= height - 1))
    return (not SIDE_RANGE[0] <= side <= SIDE_RANGE[1] or offset / square.side > MAX_OFFSET
            or inside < MIN_INSIDE)


def _corners(square: geometry.Square) -> np.ndarray:
    """The upright box of a square's centre and side, whatever its angle: the overlaps
    that match tracks and detections compare where a face is and how large, and a roll
    estimate's jitter should not change them."""
    half = square.side / 2.0
    return np.array([square.cx - half, square.cy - half, square.cx + half, square.cy + half])


@dataclass
class Track:
    """One face followed through a stream.

    `points` are the model's raw points (they place the next crop); `output` the smoothed
    ones reported; `score` the face's confidence in the latest frame: the detector's on
    the frame that found it, then the model's presence where it has that output, else
    the detector's score on the crop;
    `presence` and `visible` the model's readings (None without those outputs), `roll`
    the angle of the crop that read `points`; `seen` the side of its crop when a
    whole-frame search last found it.
    """

    points: np.ndarray
    output: np.ndarray
    score: float
    smoother: OneEuroFilter | None
    presence: float | None = None
    visible: np.ndarray | None = None
    seen: float = 0.0
    roll: float = 0.0

    def update(self, reading: Reading, score: float) -> None:
        self.points, self.score = reading.points, score
        self.presence, self.visible, self.roll = reading.presence, reading.visible, reading.roll


class Tracker:
    """Faces of a stream of frames, one `step` per frame."""

    def __init__(self, detector: BlazeFace, landmarker: Landmarker,
                 max_faces: int | None = None, redetect_every: int = 10,
                 smoothing: OneEuroParams | None = None,
                 min_tracking_confidence: float = MIN_TRACKING_CONFIDENCE) -> None:
        if redetect_every < 1:
            raise ValueError(f"redetect_every {redetect_every}: must be at least 1")
        if not 0.0 <= min_tracking_confidence <= 1.0:
            raise ValueError(f"min_tracking_confidence {min_tracking_confidence}: must be "
                             "from 0 to 1")
        self.detector, self.landmarker = detector, landmarker
        self.max_faces, self.redetect_every, self.smoothing = max_faces, redetect_every, smoothing
        self.min_tracking_confidence = min_tracking_confidence
        self.tracks: list[Track] = []
        self._since_detection = 0

    def reset(self) -> None:
        """Forget every face: the next frame starts from a detection."""
        self.tracks = []
        self._since_detection = 0

    def step(self, frame: np.ndarray, time: float) -> list[Track]:
        """Follow the tracked faces into `frame` (RGB) at `time` seconds; find new ones."""
        height, width = frame.shape[:2]
        kept: list[Track] = []
        for track in self.tracks:
            square = self.landmarker.crop_square(track.points, track.visible)
            reading = self.landmarker.read(frame, square)
            if (lost(reading.points, square, width, height)
                    or crop_square(reading.points).side < SHRINK_LIMIT * track.seen):
                continue
            score = self._still_there(frame, square, reading)
            if score is not None:
                track.update(reading, score)
                kept.append(track)
        self.tracks = self._distinct(kept)
        self._since_detection += 1
        room = self.max_faces is None or len(self.tracks) < self.max_faces
        if not self.tracks or (room and self._since_detection >= self.redetect_every):
            self._add_new_faces(frame)
            self._since_detection = 0
        for track in self.tracks:
            scale = float(np.ptp(track.points, axis=0).max())
            track.output = (track.points if track.smoother is None
                            else track.smoother(track.points, time, scale))
        return self.tracks

    def _still_there(self, frame: np.ndarray, square: geometry.Square,
                     reading: Reading) -> float | None:
        """The tracked face's score in this frame, or None when it is gone: the model's
        presence against the threshold, else the detector on the crop."""
        if reading.presence is not None:
            return (reading.presence if reading.presence >= self.min_tracking_confidence
                    else None)
        found = self.detector.detect(frame, square, min_score=TRACK_MIN_SCORE)
        return found[0].score if found else None

    def _add_new_faces(self, frame: np.ndarray) -> None:
        """Start a track for each detected face that no track follows yet."""
        followed = [_corners(crop_square(t.points)) for t in self.tracks]
        for detection in self.detector.detect(frame):
            if self.max_faces is not None and len(self.tracks) >= self.max_faces:
                break
            square = self.landmarker.detection_square(detection)
            overlaps = iou(_corners(square), np.array(followed)) if followed else np.zeros(0)
            if overlaps.size and overlaps.max() > MATCH_IOU:
                self.tracks[int(overlaps.argmax())].seen = square.side
                continue
            reading = self.landmarker.detected(frame, detection)
            if (reading.presence is not None
                    and reading.presence < self.min_tracking_confidence):
                continue  # the detector saw a face the landmark model does not frame
            smoother = None if self.smoothing is None else OneEuroFilter(self.smoothing)
            track = Track(reading.points, reading.points, detection.score, smoother,
                          seen=crop_square(reading.points).side)
            track.update(reading, detection.score)
            self.tracks.append(track)
            followed.append(_corners(crop_square(reading.points)))

    @staticmethod
    def _distinct(tracks: list[Track]) -> list[Track]:
        """Drop a track whose crop overlaps an earlier (older) one's: they follow one face."""
        kept: list[Track] = []
        for track in tracks:
            box = _corners(crop_square(track.points))
            others = np.array([_corners(crop_square(k.points)) for k in kept])
            if not kept or iou(box, others).max() <= SAME_FACE_IOU:
                kept.append(track)
        return kept
