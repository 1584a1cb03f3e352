"""face-keypoints: real-time facial landmarks with MobileNetV1, trained and run on device.

The Python API offers the same verbs as the command line (`prepare`, `train`, `evaluate`,
`export`, `benchmark`, `predict`, `serve`), and `FaceLandmarker` with the `Face` it
returns for photos and streams.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module

__version__ = "0.1.0"

# Where each name lives. Verbs import TensorFlow or OpenCV only when used, so
# `import face_keypoints` is cheap.
_EXPORTS = {
    "prepare": "face_keypoints.prepare",
    "train": "face_keypoints.train",
    "evaluate": "face_keypoints.evaluate",
    "export": "face_keypoints.export.export",
    "benchmark": "face_keypoints.benchmark",
    "predict": "face_keypoints.predict",
    "serve": "face_keypoints.serve",
    "FaceLandmarker": "face_keypoints.runtime.api",
    "Face": "face_keypoints.runtime.api",
}

__all__ = ["__version__", *_EXPORTS]


class _Package(types.ModuleType):
    """The package, whose verbs share their names with the modules that hold them: the
    import system sets `face_keypoints.prepare` to the module when it is first imported,
    which would hide the function `face_keypoints.prepare`. The name keeps the function."""

    def __getattr__(self, name: str):
        if name in _EXPORTS:
            value = getattr(import_module(_EXPORTS[name]), name)
            types.ModuleType.__setattr__(self, name, value)
            return value
        raise AttributeError(f"module 'face_keypoints' has no attribute {name!r}")

    def __setattr__(self, name: str, value: object) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return  # the module stays in sys.modules, where `from ... import` finds it
        types.ModuleType.__setattr__(self, name, value)


sys.modules[__name__].__class__ = _Package
