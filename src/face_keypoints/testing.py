"""Synthetic inputs for the tests and benchmarks (like numpy.testing): nothing in the
verbs uses this module; it lives in the package so both can import it from one place."""

from __future__ import annotations

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
