"""Video in through OpenCV, out as H.264 through ffmpeg, and a still-face clip for
measuring tracking.

OpenCV reports a file it cannot open on its own log, several lines of it; here every
failure becomes one VideoError line instead, and frames come out as RGB like images do.

Output videos are H.264 (what browsers play), encoded by the ffmpeg binary that the
imageio-ffmpeg wheel ships; without it, OpenCV's MPEG-4 Part 2 (`mp4v`), which browsers
do not play, and VideoWriter.note says so. Neither encoder reports a full disk reliably
(OpenCV not at all), so `check_video` reads a written file back before it is used.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
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


def ffmpeg_binary() -> str | None:
    """The ffmpeg executable imageio-ffmpeg names (its own binary, or the one the
    IMAGEIO_FFMPEG_EXE environment variable gives), or None where there is none."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        binary = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the wheel without a binary for this platform
        return None
    return binary if os.path.isfile(binary) and os.access(binary, os.X_OK) else None


class VideoWriter:
    """An MP4 file written frame by frame from RGB frames: H.264 through ffmpeg where
    imageio-ffmpeg is installed, else MPEG-4 Part 2 through OpenCV. `codec` is "h264" or
    "mp4v", `note` the one-line reason when it is not H.264, `frames` the count written.
    `threads` caps ffmpeg's encoding threads."""

    def __init__(self, path: Path, fps: float, width: int, height: int,
                 threads: int | None = 1) -> None:
        self.path, self.frames, self.note = Path(path), 0, None
        self._ffmpeg: subprocess.Popen | None = None
        self._error: str | None = None
        self._cv: cv2.VideoWriter | None = None
        binary = ffmpeg_binary()
        if binary is not None:
            self.codec = "h264"
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open while ffmpeg runs
            # yuv420p (what browsers decode) needs even sides: an odd one gets a black line.
            command = [binary, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                       "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                       "-r", str(float(fps or 30.0)), "-i", "pipe:0", "-an",
                       "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264",
                       "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
                       "-threads", str(threads or 0), "-movflags", "+faststart",
                       "-f", "mp4", str(path)]
            try:  # a session of its own: Ctrl-C ending a camera must not stop the encoder
                self._ffmpeg = subprocess.Popen(command, stdin=subprocess.PIPE,
                                                stdout=subprocess.DEVNULL, stderr=self._log,
                                                start_new_session=True)
            except OSError as err:
                raise VideoError(f"{path}: cannot start ffmpeg ({binary}): "
                                 f"{err.strerror or err}") from None
            return
        self.codec = "mp4v"
        self.note = ("no ffmpeg binary (the imageio-ffmpeg package, or IMAGEIO_FFMPEG_EXE), "
                     "so videos are MPEG-4 Part 2 (mp4v), which browsers do not play; "
                     "pip install imageio-ffmpeg for H.264")
        with quiet_opencv():
            self._cv = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"),
                                       fps or 30.0, (width, height))
        if not self._cv.isOpened():
            raise VideoError(f"{path}: cannot write a video file there")

    def write(self, frame: np.ndarray) -> None:
        if self._ffmpeg is not None:
            assert self._ffmpeg.stdin is not None
            try:
                self._ffmpeg.stdin.write(np.ascontiguousarray(frame, np.uint8).tobytes())
            except BrokenPipeError:  # ffmpeg stopped: its own message says why
                raise VideoError(self._failure()) from None
        else:
            assert self._cv is not None
            self._cv.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        """Finish the file; VideoError when ffmpeg could not (a full disk, for one)."""
        if self._cv is not None:
            self._cv.release()
            return
        assert self._ffmpeg is not None and self._ffmpeg.stdin is not None
        with contextlib.suppress(OSError):
            self._ffmpeg.stdin.close()
        if self._ffmpeg.wait() != 0:
            raise VideoError(self._failure())
        if not self._log.closed:
            self._log.close()

    def _failure(self) -> str:
        """ffmpeg's last error line, as the one-line reason the video was not written
        (read once: close() after a failed write() gives the same line)."""
        assert self._ffmpeg is not None
        if self._error is None:
            with contextlib.suppress(OSError):
                self._ffmpeg.stdin.close()  # type: ignore[union-attr]
            self._ffmpeg.wait()
            self._log.seek(0)
            lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
            self._log.close()
            reason = (re.sub(r"^(\[[^\]]*\]\s*)+", "", lines[-1]) if lines  # "[out#0 @ ..]"
                      else f"ffmpeg exited with code {self._ffmpeg.returncode}")
            self._error = f"the video could not be written: {reason}"
        return self._error


def check_video(path: Path, frames: int) -> None:
    """VideoError unless the video at `path` opens and decodes to `frames` frames: a
    writer that ran out of disk leaves a short or unplayable file and may not say so."""
    count = 0
    with quiet_opencv():
        capture = cv2.VideoCapture(str(path))
        if capture.isOpened():
            while capture.grab():
                count += 1
        capture.release()
    if count != frames:
        raise VideoError(f"the video written decodes to {count} of its {frames} frames "
                         "(is the disk full?); nothing was replaced")
