"""metrics.py against cases small enough to work out on paper.

A toy 4-point scheme keeps the arithmetic visible: points 0 and 1 are the outer eyes,
the eye centres are the means of (0, 2) and (1, 3).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from face_keypoints import metrics
from face_keypoints.data.face import ABSENT, OCCLUDED, VISIBLE
from face_keypoints.schemes import IBUG68, Scheme

TOY = Scheme(name="toy", names=("a", "b", "c", "d"), flip=(1, 0, 3, 2), outer_eyes=(0, 1),
             pupils=((0, 2), (1, 3)))

# Ground truth: a 10 x 20 box. Outer eyes (0,0)-(10,0): 10 apart. Eye centres (0,5) and
# (10,10): sqrt(125) apart. Box sqrt(10 * 20) = sqrt(200).
TRUTH = np.array([[[0, 0], [10, 0], [0, 10], [10, 20]]], dtype=np.float64)
# Errors 5 (3-4-5), 1, 0 and 10 (6-8-10): mean 4.
PRED = TRUTH + np.array([[[3, 4], [0, 1], [0, 0], [-6, 8]]], dtype=np.float64)
ALL = np.full((1, 4), VISIBLE)


def nmes(pred, truth, visibility, scheme=TOY):
    return metrics.face_nme(pred, truth, metrics.present_mask(visibility), scheme)


def test_point_errors_are_euclidean_and_nan_where_absent():
    present = metrics.present_mask(np.array([[VISIBLE, VISIBLE, OCCLUDED, ABSENT]]))
    errors = metrics.point_errors(PRED, TRUTH, present)
    np.testing.assert_allclose(errors[0, :3], [5.0, 1.0, 0.0])
    assert math.isnan(errors[0, 3])


def test_three_normalisers_by_hand():
    result = nmes(PRED, TRUTH, ALL)
    assert result["inter_ocular"][0] == pytest.approx(4 / 10)
    assert result["inter_pupil"][0] == pytest.approx(4 / math.sqrt(125))
    assert result["box"][0] == pytest.approx(4 / math.sqrt(200))


def test_absent_point_leaves_the_mean_and_the_box():
    # Point 3 absent: its error of 10 does not count (mean of 5, 1, 0 = 2); the box
    # shrinks to the 10 x 10 of points 0-2; the eye centre needing point 3 is undefined.
    visibility = np.array([[VISIBLE, VISIBLE, VISIBLE, ABSENT]])
    result = nmes(PRED, TRUTH, visibility)
    assert result["inter_ocular"][0] == pytest.approx(2 / 10)
    assert result["box"][0] == pytest.approx(2 / 10)
    assert math.isnan(result["inter_pupil"][0])


def test_occluded_points_are_scored():
    visibility = np.array([[VISIBLE, VISIBLE, OCCLUDED, OCCLUDED]])
    assert nmes(PRED, TRUTH, visibility)["inter_ocular"][0] == pytest.approx(0.4)


def test_absent_outer_eye_makes_inter_ocular_undefined_and_summaries_skip_it():
    # Face 0 as above (0.4); face 1 identical but its outer eye 1 is absent (a profile):
    # no inter-ocular NME, while its box NME is still defined.
    pred, truth = np.concatenate([PRED, PRED]), np.concatenate([TRUTH, TRUTH])
    visibility = np.array([[VISIBLE] * 4, [VISIBLE, ABSENT, VISIBLE, VISIBLE]])
    result = nmes(pred, truth, visibility)
    assert result["inter_ocular"][0] == pytest.approx(0.4)
    assert math.isnan(result["inter_ocular"][1])
    # Face 1 without point 1: errors 5, 0, 10 (mean 5); box of (0,0), (0,10), (10,20).
    assert result["box"][1] == pytest.approx(5 / math.sqrt(200))
    summary = metrics.nme_summary(result["inter_ocular"])
    assert summary["n"] == 1
    assert summary["nme"] == pytest.approx(40.0)


def test_degenerate_faces_have_no_normaliser():
    # Every point on one spot: zero inter-ocular, pupil and box lengths.
    truth = np.zeros((1, 4, 2))
    result = nmes(truth + 1.0, truth, ALL)
    assert all(math.isnan(v[0]) for v in result.values())
    # No present point at all: nothing to average, no box.
    result = nmes(PRED, TRUTH, np.full((1, 4), ABSENT))
    assert all(math.isnan(v[0]) for v in result.values())


def test_inter_ocular_uses_the_schemes_outer_eye_corners():
    truth = np.zeros((1, IBUG68.num_points, 2))
    b = IBUG68.outer_eyes[1]
    truth[0, b] = (40.0, 30.0)  # 50 px apart
    pred = truth.copy()
    pred[0, :, 0] += 2.0  # every point 2 px off
    result = nmes(pred, truth, np.full((1, IBUG68.num_points), VISIBLE), IBUG68)
    assert result["inter_ocular"][0] == pytest.approx(2 / 50)


VALUES = np.array([0.025, 0.055, 0.12, np.nan])


def test_failure_rate_counts_faces_above_threshold_among_defined_ones():
    assert metrics.failure_rate(VALUES) == pytest.approx(100 / 3)
    # Exactly at the threshold is not a failure.
    assert metrics.failure_rate(np.array([0.10, 0.1000001])) == pytest.approx(50.0)
    assert math.isnan(metrics.failure_rate(np.array([np.nan])))


def test_auc_is_the_exact_step_integral():
    # CED: 0 below 0.025, 1/3 up to 0.055, 2/3 up to 0.10 (0.12 is past the end).
    # Area = 1/3 * 0.03 + 2/3 * 0.045 = 0.04; over 0.10 -> 0.4.
    assert metrics.auc(VALUES) == pytest.approx(0.4)
    assert metrics.auc(np.array([0.0, 0.0])) == pytest.approx(1.0)
    assert metrics.auc(np.array([0.2])) == pytest.approx(0.0)
    assert metrics.auc(np.array([0.05])) == pytest.approx(0.5)
    assert math.isnan(metrics.auc(np.array([np.nan])))


def test_auc_matches_a_fine_numerical_integral_of_the_ced():
    values = np.random.default_rng(0).gamma(2.0, 0.02, size=500)
    x, y = metrics.ced(values, steps=200_001)
    numeric = np.sum(y[:-1] * np.diff(x)) / 0.10  # left Riemann sum of a right-continuous step
    assert metrics.auc(values) == pytest.approx(numeric, abs=1e-4)


def test_ced_points():
    x, y = metrics.ced(VALUES, threshold=0.10, steps=11)
    np.testing.assert_allclose(x, np.linspace(0, 0.10, 11))
    np.testing.assert_allclose(y, [0, 0, 0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3])


def test_per_point_mean_over_faces_where_measured():
    # Face 0: errors 5, 1, 0, 10 over inter-ocular 10. Face 1: same points, point 2 absent,
    # truth scaled by 2 (inter-ocular 20) with the same pixel errors.
    pred = np.concatenate([PRED, 2 * TRUTH + (PRED - TRUTH)])
    truth = np.concatenate([TRUTH, 2 * TRUTH])
    present = metrics.present_mask(np.array([[VISIBLE] * 4,
                                             [VISIBLE, VISIBLE, ABSENT, VISIBLE]]))
    errors = metrics.point_errors(pred, truth, present)
    lengths = metrics.normalisers(truth, present, TOY)["inter_ocular"]
    np.testing.assert_allclose(metrics.per_point(errors, lengths),
                               [(0.5 + 0.25) / 2, (0.1 + 0.05) / 2, 0.0, (1.0 + 0.5) / 2])


def test_per_point_is_nan_for_a_point_never_measured():
    present = metrics.present_mask(np.array([[VISIBLE, VISIBLE, VISIBLE, ABSENT]]))
    errors = metrics.point_errors(PRED, TRUTH, present)
    result = metrics.per_point(errors, np.array([10.0]))
    np.testing.assert_allclose(result[:3], [0.5, 0.1, 0.0])
    assert math.isnan(result[3])


def test_nme_summary_reports_percent():
    summary = metrics.nme_summary(VALUES)
    assert summary["n"] == 3
    assert summary["nme"] == pytest.approx(100 * (0.025 + 0.055 + 0.12) / 3)
    assert summary["fr"] == pytest.approx(100 / 3)
    assert summary["auc"] == pytest.approx(0.4)
    empty = metrics.nme_summary(np.array([np.nan]))
    assert empty["n"] == 0 and math.isnan(empty["nme"])
