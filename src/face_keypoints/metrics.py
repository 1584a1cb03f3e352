"""Landmark accuracy: NME under three normalisers, failure rate, CED and its AUC.

Pure numpy on (N, K, 2) points in any common unit (NME is a ratio, so pixels and
normalised crop coordinates give the same number). Only present points count
(visibility != ABSENT); a face whose normaliser cannot be measured (an outer eye absent,
as on MERL-RAV profiles) gets NaN for that normaliser and is left out of its mean, and
every summary says how many faces it used.

Per-face values are fractions (0.05 = 5 %); `nme_summary` reports NME and FR in percent
and AUC in [0, 1], as papers print them.
"""

from __future__ import annotations

import numpy as np

from face_keypoints.data.face import ABSENT
from face_keypoints.schemes import Scheme

THRESHOLD = 0.10  # FR@10% and AUC@10%, the field's usual cut-off
NORMALISERS = ("inter_ocular", "inter_pupil", "box")


def present_mask(visibility: np.ndarray) -> np.ndarray:
    """(N, K) bool: points that carry a location."""
    return np.asarray(visibility) != ABSENT


def point_errors(pred: np.ndarray, truth: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(N, K) Euclidean error of every point; NaN where the ground truth is absent."""
    errors = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(truth, np.float64),
                            axis=-1)
    return np.where(present, errors, np.nan)


def normalisers(truth: np.ndarray, present: np.ndarray, scheme: Scheme) -> dict[str, np.ndarray]:
    """Per-face (N,) normalising lengths; NaN where a face cannot define one.

    inter_ocular: distance of the outer eye corners (WFLW's and 300-W's default);
    inter_pupil: distance of the eye centres, which needs every point of both pupil groups;
    box: sqrt(w * h) of the present points' box (the large-pose convention, AFLW/MERL-RAV).
    """
    truth = np.asarray(truth, np.float64)
    present = np.asarray(present, bool)
    a, b = scheme.outer_eyes
    ocular = np.linalg.norm(truth[:, a] - truth[:, b], axis=-1)
    ocular[~(present[:, a] & present[:, b])] = np.nan

    left, right = scheme.eye_centres(truth)
    pupil = np.linalg.norm(left - right, axis=-1)
    groups = list(scheme.pupils[0]) + list(scheme.pupils[1])
    pupil[~present[:, groups].all(axis=1)] = np.nan

    low = np.where(present[..., None], truth, np.inf).min(axis=1)
    high = np.where(present[..., None], truth, -np.inf).max(axis=1)
    size = np.where(present.any(axis=1)[:, None], high - low, np.nan)
    box = np.sqrt(size[:, 0] * size[:, 1])
    return {"inter_ocular": _positive(ocular), "inter_pupil": _positive(pupil),
            "box": _positive(box)}


def nme(errors: np.ndarray, normaliser: np.ndarray) -> np.ndarray:
    """(N,) mean error over each face's present points / its normaliser (a fraction)."""
    return _mean_finite(errors, axis=1) / normaliser


def face_nme(pred: np.ndarray, truth: np.ndarray, present: np.ndarray,
             scheme: Scheme) -> dict[str, np.ndarray]:
    """(N,) NME of every face under each normaliser (NaN where it is undefined)."""
    errors = point_errors(pred, truth, present)
    return {name: nme(errors, length)
            for name, length in normalisers(truth, present, scheme).items()}


def failure_rate(values: np.ndarray, threshold: float = THRESHOLD) -> float:
    """Percent of faces (with a defined NME) whose NME exceeds `threshold`."""
    values = _defined(values)
    return float(100.0 * (values > threshold).mean()) if values.size else float("nan")


def ced(values: np.ndarray, threshold: float = THRESHOLD,
        steps: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative error distribution: thresholds 0..`threshold` and the fraction of
    faces at or below each (for plots and reports; AUC is computed exactly instead)."""
    values = np.sort(_defined(values))
    x = np.linspace(0.0, threshold, steps)
    if not values.size:
        return x, np.full_like(x, np.nan)
    return x, np.searchsorted(values, x, side="right") / values.size


def auc(values: np.ndarray, threshold: float = THRESHOLD) -> float:
    """Area under the CED from 0 to `threshold`, divided by `threshold` (so in [0, 1]).

    The CED is a step function, so the integral is exact: a face with NME e adds
    (threshold - e) / threshold to the area when e < threshold, nothing otherwise.
    """
    values = _defined(values)
    if not values.size:
        return float("nan")
    return float(np.clip(threshold - values, 0.0, None).mean() / threshold)


def per_point(errors: np.ndarray, normaliser: np.ndarray) -> np.ndarray:
    """(K,) mean normalised error of each point over the faces where it is present and
    the normaliser is defined; NaN for a point never measured."""
    return _mean_finite(errors / normaliser[:, None], axis=0)


def nme_summary(values: np.ndarray, threshold: float = THRESHOLD) -> dict[str, float | int]:
    """Mean NME and FR in percent, AUC in [0, 1], and the number of faces they used."""
    defined = _defined(values)
    return {
        "n": int(defined.size),
        "nme": float(100.0 * defined.mean()) if defined.size else float("nan"),
        "fr": failure_rate(defined, threshold),
        "auc": auc(defined, threshold),
    }


def _defined(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return values[np.isfinite(values)]


def _positive(lengths: np.ndarray) -> np.ndarray:
    """A zero length (all points on one spot) cannot normalise anything."""
    return np.where(lengths > 0, lengths, np.nan)


def _mean_finite(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean of the finite entries along `axis`, NaN where there are none (np.nanmean
    warns on those rows, which are expected here: a face or point with nothing measured)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=axis)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    return np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)
