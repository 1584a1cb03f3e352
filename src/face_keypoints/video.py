"""Video in and out through OpenCV, and a still-face clip for measuring tracking.

OpenCV reports a file it cannot open on its own log, several lines of it; here every
failure becomes one VideoError line instead, and frames come out as RGB like images do.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np


class VideoError(Exception):
    """A video or camera that cannot be used; the message is the one-line reason."""


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log (its errors are turned into VideoError lines here).

    FFmpeg's log ("moov atom not found", "overread 8") is set once, when OpenCV first
    opens a video: OPENCV_FFMPEG_LOGLEVEL -8 is FFmpeg's AV_LOG_QUIET.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


class VideoReader:
    """RGB frames of a video file or a camera (an int index)."""

    def __init__(self, source: Path | int) -> None:
        self.source = source
        with quiet_opencv():
            self._capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
            opened = self._capture.isOpened()
            ok, first = self._capture.read() if opened else (False, None)
        if not opened:
            raise VideoError("cannot be opened (no such camera, or it is busy)"
                             if isinstance(source, int) else
                             "cannot be opened as a video (not a video file, or a damaged one)")
        if not ok or first is None:
            self._capture.release()
            raise VideoError("no frame can be read")
        self._first: np.ndarray | None = first
        self.height, self.width = first.shape[:2]
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if np.isfinite(fps) and 0 < fps < 1000 else 0.0
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not isinstance(source, int) else None

    def __iter__(self) -> Iterator[np.ndarray]:
        with quiet_opencv():
            if self._first is not None:
                first, self._first = self._first, None
                yield cv2.cvtColor(first, cv2.COLOR_BGR2RGB)
            while True:
                ok, frame = self._capture.read()
                if not ok or frame is None:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self._capture.release()


class VideoWriter:
    """An MP4 (MPEG-4 part 2) file written frame by frame from RGB frames."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        with quiet_opencv():
            self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"),
                                           fps or 30.0, (width, height))
        if not self._writer.isOpened():
            raise VideoError(f"{path}: cannot write a video file there")

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()


def shaken_clip(photo: np.ndarray, count: int, size: tuple[int, int] = (640, 480),
                shake: float = 0.5, noise: float = 2.0, sweep: float = 0.0,
                seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A clip of a face that does not move, as a camera would film it, for tracking tests.

    `photo` (RGB) is centred on a grey (width, height) frame, shrunk to fit; each frame is
    shifted by Gaussian camera shake of `shake` px (sub-pixel, resampled), plus a
    horizontal sweep of `sweep` px amplitude (period 60 frames) when the face should move,
    and gets Gaussian sensor noise of `noise` grey levels. Yields (frame, shift (2,)).
    """
    width, height = size
    fit = min(1.0, 0.9 * width / photo.shape[1], 0.9 * height / photo.shape[0])
    rng = np.random.default_rng(seed)
    place = np.array([[fit, 0.0, (width - fit * photo.shape[1]) / 2.0],
                      [0.0, fit, (height - fit * photo.shape[0]) / 2.0]])
    for i in range(count):
        shift = rng.normal(0.0, shake, 2)
        shift[0] += sweep * np.sin(2.0 * np.pi * i / 60.0)
        matrix = place.copy()
        matrix[:, 2] += shift
        frame = cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(110, 110, 110))
        grain = rng.normal(0.0, noise, frame.shape)
        yield np.clip(frame + grain, 0, 255).astype(np.uint8), shift
