"""face-keypoints: real-time facial landmarks with MobileNetV1, trained and run on device.

The Python API offers the same verbs as the command line.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["FaceLandmarker", "__version__", "prepare", "serve"]


def __getattr__(name: str):
    # Verbs import TensorFlow or OpenCV only when used, so `import face_keypoints` is cheap.
    if name == "prepare":
        from face_keypoints.prepare import prepare

        return prepare
    if name == "FaceLandmarker":
        from face_keypoints.runtime.api import FaceLandmarker

        return FaceLandmarker
    if name == "serve":
        from face_keypoints.serve import serve

        return serve
    raise AttributeError(f"module 'face_keypoints' has no attribute {name!r}")
