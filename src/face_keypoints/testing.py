"""Synthetic inputs for the tests and benchmarks (like numpy.testing): nothing in the
verbs uses this module; it lives in the package so both can import it from one place."""

from __future__ import annotations

import collections
from collections.abc import Iterator

import cv2
import numpy as np


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


def leave_and_enter_clip(first: np.ndarray, first_box: np.ndarray, second: np.ndarray,
                         second_box: np.ndarray, size: tuple[int, int] = (640, 480),
                         fps: float = 30.0, hold: float = 0.5, slide: float = 1.0,
                         empty: float = 1.0, face: float = 140.0, noise: float = 2.0,
                         seed: int = 0) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """A clip in which a face is lost and another found, for tracking tests.

    `first` (RGB) sits centred on a grey (width, height) frame for `hold` seconds, slides
    right out of the frame in `slide` seconds; the frame stays empty for `empty` seconds;
    `second` slides in from the left in `slide` seconds and stays centred for `hold`.
    Each photo is scaled so that its face box (`*_box`, x0, y0, x1, y1 in its pixels)
    is `face` px wide. Frames get Gaussian sensor noise of `noise` grey levels (three
    noise fields in turn). Yields
    (frame, boxes): the face boxes in frame pixels of the faces at least partly in view.
    """
    width, height = size
    rng = np.random.default_rng(seed)
    frames = {name: max(1, round(seconds * fps))
              for name, seconds in (("hold", hold), ("slide", slide), ("empty", empty))}

    def placed(photo: np.ndarray, box: np.ndarray, fraction: float, entering: bool):
        """The photo's affine into the frame, `fraction` of the way from the centre out
        to the right (leaving) or from the left in to the centre (entering)."""
        scale = face / float(box[2] - box[0])
        face_x, face_y = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
        if entering:  # from just left of the frame (the whole photo out) to the centre
            start = -scale * (photo.shape[1] - face_x) - 1.0
            centre_x = start + fraction * (width / 2.0 - start)
        else:  # from the centre to just right of the frame
            centre_x = width / 2.0 + fraction * (width / 2.0 + scale * face_x + 1.0)
        return np.array([[scale, 0.0, centre_x - scale * face_x],
                         [0.0, scale, height / 2.0 - scale * face_y]])

    # A few noise fields in turn: drawing a fresh one per frame costs more than the
    # tracking it is there to test.
    grains = collections.deque(rng.standard_normal((3, height, width, 3), np.float32)
                               * np.float32(noise))
    steps = [(first, first_box, 0.0, False)] * frames["hold"]
    steps += [(first, first_box, (i + 1) / frames["slide"], False)
              for i in range(frames["slide"])]
    steps += [None] * frames["empty"]
    steps += [(second, second_box, (i + 1) / frames["slide"], True)
              for i in range(frames["slide"])]
    steps += [(second, second_box, 1.0, True)] * frames["hold"]
    for step in steps:
        frame = np.full((height, width, 3), 110, np.uint8)
        boxes = []
        if step is not None:
            photo, box, fraction, entering = step
            matrix = placed(photo, box, fraction, entering)
            frame = cv2.warpAffine(photo, matrix, (width, height), dst=frame,
                                   flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
            corners = np.array([[box[0], box[1], 1.0], [box[2], box[3], 1.0]]) @ matrix.T
            shown = corners.ravel()
            if shown[2] > 0 and shown[0] < width - 1:
                boxes.append(shown)
        grained = frame + grains[0]
        grains.rotate(1)
        yield np.clip(grained, 0, 255).astype(np.uint8), boxes
