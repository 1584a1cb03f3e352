"""BlazeFace through our own anchors, decoding and NMS, on the real AFW fixture faces.

None of these needs a landmark model: the detector file ships with the package.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES

from face_keypoints import geometry
from face_keypoints.data.images import read_rgb
from face_keypoints.errors import BadInput
from face_keypoints.runtime.detector import (
    CLOSE_UP,
    FULL_RANGE,
    SHORT_RANGE,
    BlazeFace,
    Detection,
    detector_model_path,
    landmark_square,
    letterbox_matrix,
    ssd_anchors,
    weighted_nms,
)

AFW = sorted((FIXTURES / "300w" / "afw").glob("*.jpg"))


def _pts(path: Path) -> np.ndarray:
    lines = path.with_suffix(".pts").read_text().splitlines()
    return np.array([[float(v) for v in line.split()] for line in lines[3:71]])


def _eyes(points: np.ndarray) -> np.ndarray:
    """Eye centres of iBUG-68 points: the subject's right (image left) first."""
    return np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0)])


def _the_face(detections: list[Detection], points: np.ndarray) -> Detection:
    """The detection whose eye keypoints are nearest the annotated eyes."""
    eyes = _eyes(points)
    assert detections, "no face found"
    return min(detections, key=lambda d: np.linalg.norm(d.keypoints[:2] - eyes, axis=1).max())


@pytest.fixture(scope="module")
def detector() -> BlazeFace:
    return BlazeFace(threads=1)


def test_anchor_layout_matches_the_model_outputs() -> None:
    short = ssd_anchors(SHORT_RANGE)
    # 16x16 cells x 2 anchors (stride 8), then 8x8 cells x 6 anchors (three stride-16 layers)
    assert short.shape == (16 * 16 * 2 + 8 * 8 * 6, 2) == (896, 2)
    np.testing.assert_allclose(short[0], short[1])
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])  # x runs fastest
    np.testing.assert_allclose(short[512:518], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    assert ssd_anchors(FULL_RANGE).shape == (48 * 48, 2)


def test_letterbox_keeps_the_aspect_ratio_and_centres_the_image() -> None:
    matrix = letterbox_matrix(640, 480, 128)
    corners = geometry.transform_points(np.array([[-0.5, -0.5], [639.5, 479.5]]), matrix)
    # the edges of the image's outer pixels land on the input's edges (x) and on the bars (y)
    np.testing.assert_allclose(corners, [[-0.5, 15.5], [127.5, 111.5]])


def test_weighted_nms_merges_overlaps_by_score_and_keeps_separate_faces() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    keypoints = np.zeros((3, 6, 2))
    keypoints[1] += 3.0
    scores = np.array([0.6, 0.9, 0.7])
    merged = weighted_nms(boxes, keypoints, scores, 0.3)
    assert [round(s, 3) for _, s, _ in merged] == [0.9, 0.7]
    np.testing.assert_allclose(merged[0][0], [0.6, 0, 10.6, 10])  # (0.6 * 0 + 0.9 * 1) / 1.5
    np.testing.assert_allclose(merged[0][2], np.full((6, 2), 1.8))
    np.testing.assert_allclose(merged[1][0], boxes[2])


@pytest.mark.parametrize("path", AFW, ids=lambda p: p.stem)
def test_real_faces_are_found_with_their_eyes(detector: BlazeFace, path: Path) -> None:
    points = _pts(path)
    face = _the_face(detector.detect(read_rgb(path)), points)
    ocular = np.linalg.norm(np.subtract(*_eyes(points)))
    assert face.score > 0.7
    assert np.linalg.norm(face.keypoints[:2] - _eyes(points), axis=1).max() < 0.25 * ocular
    assert face.keypoints[0, 0] < face.keypoints[1, 0]  # the subject's right eye: image left


@pytest.mark.parametrize("path", AFW, ids=lambda p: p.stem)
def test_the_crop_from_a_detection_matches_the_training_crop(detector: BlazeFace,
                                                             path: Path) -> None:
    """The detector box is mapped to the landmark box, so the crop frames the face as the
    model was trained (augmentation covers 8% shifts and 15% zoom)."""
    points = _pts(path)
    square = landmark_square(_the_face(detector.detect(read_rgb(path)), points))
    truth = geometry.square_around(geometry.landmark_box(points), geometry.MODEL_SCALE)
    assert np.hypot(square.cx - truth.cx, square.cy - truth.cy) < 0.08 * truth.side
    assert abs(np.log(square.side / truth.side)) < 0.15


def test_grayscale_and_huge_images_map_back_to_the_original_pixels(detector: BlazeFace) -> None:
    path = AFW[0]
    image, points = read_rgb(path), _pts(path)
    base = _the_face(detector.detect(image), points)
    gray = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    assert np.abs(_the_face(detector.detect(gray), points).box - base.box).max() < 0.05 * (
        base.box[2] - base.box[0])
    factor = 4000 / max(image.shape[:2])
    huge = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
    found = _the_face(detector.detect(huge), (points + 0.5) * factor - 0.5)
    np.testing.assert_allclose(found.box, (base.box + 0.5) * factor - 0.5,
                               atol=0.05 * (base.box[2] - base.box[0]) * factor)


def test_a_region_sees_the_face_larger_and_maps_back(detector: BlazeFace) -> None:
    image, points = read_rgb(AFW[1]), _pts(AFW[1])
    base = _the_face(detector.detect(image), points)
    inside = _the_face(detector.detect(image, landmark_square(base)), points)
    np.testing.assert_allclose(inside.box, base.box, atol=0.06 * (base.box[2] - base.box[0]))


def test_a_small_face_in_a_photo_is_found_by_the_zoomed_pass(detector: BlazeFace) -> None:
    """MediaPipe's short-range model misses faces below about a tenth of the image; photos
    get a second pass at twice the input size."""
    image, points = read_rgb(AFW[0]), _pts(AFW[0])
    side = np.ptp(points, axis=0).max()
    scale = 50.0 / side  # a 50 px face in a 640 x 480 photo
    matrix = np.array([[scale, 0, 400.0], [0, scale, 300.0]])
    photo = cv2.warpAffine(image, matrix, (640, 480), borderValue=(110, 110, 110))
    eyes = geometry.transform_points(_eyes(points), matrix)
    found = detector.detect_photo(photo)
    assert any(np.linalg.norm(d.keypoints[:2] - eyes, axis=1).max() < 5 for d in found)


def test_a_close_up_skips_the_zoomed_pass() -> None:
    """A photo whose faces the first pass found all large is a close-up: the 2x pass
    (four times the first's cost) does not run, so a small face beside a large one is
    not searched for; beside a face below CLOSE_UP it is, and found."""
    image, points = read_rgb(AFW[0]), _pts(AFW[0])
    side = np.ptp(points, axis=0).max()
    small = np.array([[50.0 / side, 0, 500.0], [0, 50.0 / side, 300.0]])
    eyes = geometry.transform_points(_eyes(points), small)
    for large_side, close_up in ((260.0, True), (110.0, False)):
        large = np.array([[large_side / side, 0, 20.0], [0, large_side / side, 40.0]])
        photo = cv2.warpAffine(image, small, (640, 480), borderValue=(110, 110, 110))
        photo = cv2.warpAffine(image, large, (640, 480), dst=photo,
                               borderMode=cv2.BORDER_TRANSPARENT)
        fresh = BlazeFace(threads=1)  # builds its 2x detector at the first pass that runs
        first = fresh.detect(photo)
        assert [d.box[2] - d.box[0] >= CLOSE_UP * 640 for d in first] == [close_up]
        found = fresh.detect_photo(photo)
        assert (fresh._zoomed is None) is close_up
        small_found = any(np.linalg.norm(d.keypoints[:2] - eyes, axis=1).max() < 5 for d in found)
        assert small_found is not close_up
        if close_up:
            assert [d.box.tolist() for d in found] == [d.box.tolist() for d in first]


def test_a_larger_input_has_more_anchors_and_maps_faces_back() -> None:
    """The short-range model is fully convolutional: at 256 px it has the anchors of a
    256 px grid, and a face it finds maps back onto the photo's pixels."""
    zoomed = BlazeFace(threads=1, input_size=256)
    assert zoomed.spec.size == 256 and zoomed.spec.strides == SHORT_RANGE.strides
    assert len(ssd_anchors(zoomed.spec)) == 32 * 32 * 2 + 16 * 16 * 6
    for path in AFW:
        image, points = read_rgb(path), _pts(path)
        matrix = np.array([[0.5, 0, 150.0], [0, 0.5, 120.0]])  # a ~55 px face in 400 px
        photo = cv2.warpAffine(image, matrix, (400, 400), borderValue=(110, 110, 110))
        eyes = geometry.transform_points(_eyes(points), matrix)
        face = _the_face(zoomed.detect(photo), geometry.transform_points(points, matrix))
        ocular = np.linalg.norm(eyes[0] - eyes[1])  # ~20 px: a wrong mapping is far off
        assert np.linalg.norm(face.keypoints[:2] - eyes, axis=1).max() < 0.35 * ocular


def test_no_face_gives_no_detection(detector: BlazeFace) -> None:
    rng = np.random.default_rng(0)
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert detector.detect_photo(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) == []


def test_a_file_that_is_not_a_model_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "detector.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(BadInput, match=r"not a loadable TFLite model") as err:
        BlazeFace(bad)
    assert "\n" not in str(err.value)


def test_the_shipped_detector_is_the_one_its_notice_names() -> None:
    path = detector_model_path()
    notice = (path.parent / "NOTICE").read_text()
    assert hashlib.sha256(path.read_bytes()).hexdigest() in notice
    assert re.search(r"Apache License, Version 2\.0", notice)
    assert "Apache License" in (path.parent / "LICENSE-mediapipe").read_text()
