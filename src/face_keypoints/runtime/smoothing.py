"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) for landmarks in a stream.

A low-pass filter whose cutoff rises with speed: a still face is smoothed hard (no
jitter), a moving one lightly (little lag). Speed is measured in face sizes per second
(`scale`), so the same parameters suit a face near the camera and one far away, as in
MediaPipe's landmark smoothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    """min_cutoff (Hz): smoothing at rest, lower is steadier; beta: how fast the cutoff
    rises with speed (per face size per second), higher lags less; d_cutoff (Hz): the
    smoothing of the speed estimate itself."""

    min_cutoff: float = 1.0
    beta: float = 40.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        values = (self.min_cutoff, self.beta, self.d_cutoff)
        if not all(math.isfinite(v) for v in values) or self.min_cutoff <= 0 \
                or self.d_cutoff <= 0 or self.beta < 0:
            raise ValueError(f"One Euro filter: min_cutoff {self.min_cutoff}, beta "
                             f"{self.beta}, d_cutoff {self.d_cutoff}: the cutoffs must be "
                             "finite numbers above 0, beta a finite number of 0 or more")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Weight of the new sample in an exponential filter of `cutoff` Hz at step dt."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters an array (e.g. (K, 2) points) element by element over time."""

    def __init__(self, params: OneEuroParams | None = None) -> None:
        self.params = params or OneEuroParams()
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time = 0.0

    def __call__(self, value: np.ndarray, time: float, scale: float = 1.0) -> np.ndarray:
        """The filtered `value` at `time` seconds; `scale` is the face size in the
        value's units."""
        value = np.asarray(value, np.float64)
        if self._value is None or self._speed is None or value.shape != self._value.shape:
            self._value, self._speed, self._time = value.copy(), np.zeros_like(value), time
            return value.copy()
        dt = time - self._time
        if dt <= 0.0:  # a repeated or out-of-order timestamp: nothing new to filter
            return self._value.copy()
        p = self.params
        speed = (value - self._value) / dt
        self._speed = self._speed + _alpha(p.d_cutoff, dt) * (speed - self._speed)
        cutoff = p.min_cutoff + p.beta * np.abs(self._speed) / max(scale, 1e-9)
        self._value = self._value + _alpha(cutoff, dt) * (value - self._value)
        self._time = time
        return self._value.copy()
