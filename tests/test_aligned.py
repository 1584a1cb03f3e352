"""Aligned crops at run time (issue 20): a model trained with `align: true` saw every face
turned about its crop's centre to level the eyes, so it runs on crops turned by the face's
roll. Pinned here on the repository's AFW photos, turned with cv2 as a tilted head or
camera would: the crop geometry (one rotation for training and run time), BlazeFace's eye
roll, the card and run-config flag, and the landmarker, tracker and evaluate of a model
whose card says aligned.

The aligned model is a copy of the shipped default export with `input.crop.align` set in
its model.json (and an upright twin with it cleared), so these tests pin the runtime's
framing whatever the shipped model's own card says: a model that sees a levelled crop of
a turned face sees what it sees of the upright face, and must read it as well.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, needs_model

from face_keypoints import geometry
from face_keypoints.data.images import read_rgb
from face_keypoints.runtime.detector import BlazeFace, Detection, eye_roll
from face_keypoints.schemes import IBUG68

AFW = FIXTURES / "300w" / "afw"
FACES = ("261068_1", "261068_2", "45092961_1")
TURN = 30.0  # degrees the photos are turned (counter-clockwise as shown)
ROLL_TOLERANCE = 5.0  # degrees: BlazeFace's eye roll off the ground truth's on these faces
ALL = np.ones(IBUG68.num_points, dtype=bool)


def _pts(path: Path) -> np.ndarray:
    lines = path.with_suffix(".pts").read_text().splitlines()
    return np.array([[float(v) for v in line.split()] for line in lines[3:71]])


def _face(name: str, turn: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """An AFW photo and its 68 points, turned by `turn` degrees about the face's centre
    (the canvas kept; cv2's positive angle turns the picture counter-clockwise, so the
    face's roll, image axes y down, falls by `turn`)."""
    image, points = read_rgb(AFW / f"{name}.jpg"), _pts(AFW / f"{name}.pts")
    if not turn:
        return image, points
    centre = (geometry.landmark_box(points)[:2] + geometry.landmark_box(points)[2:]) / 2.0
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), turn, 1.0)
    turned = cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]),
                            flags=cv2.INTER_LINEAR)
    return turned, geometry.transform_points(points, matrix)


def _nearest(detections: list[Detection], points: np.ndarray) -> Detection:
    centre = points.mean(axis=0)
    return min(detections, key=lambda d: float(np.linalg.norm(
        (d.box[:2] + d.box[2:]) / 2.0 - centre)))


def _nme(predicted: np.ndarray, points: np.ndarray) -> float:
    """Inter-ocular NME in % (outer eye corners)."""
    a, b = IBUG68.outer_eyes
    return float(np.linalg.norm(predicted - points, axis=1).mean()
                 / np.linalg.norm(points[a] - points[b]) * 100.0)


def _angle_gap(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


# --- geometry -------------------------------------------------------------------------


@pytest.mark.parametrize("angle", [-40.0, 0.0, 25.0])
def test_crop_matrix_turns_a_square_as_model_matrix_turns_the_training_crop(
        angle: float) -> None:
    cache, size = 224, 128
    frame = geometry.model_square(cache)
    runtime = geometry.crop_matrix(frame.rolled(angle), size)
    np.testing.assert_allclose(runtime, geometry.model_matrix(cache, size, angle=angle),
                               rtol=0, atol=1e-9)
    # A point on the line at `angle` through the centre comes out on the crop's middle row.
    theta = np.deg2rad(angle)
    on_line = np.array([[frame.cx + t * np.cos(theta), frame.cy + t * np.sin(theta)]
                        for t in (-50.0, 30.0)])
    np.testing.assert_allclose(geometry.transform_points(on_line, runtime)[:, 1], size / 2.0,
                               atol=1e-9)


def test_an_upright_square_crops_exactly_as_before_the_angle() -> None:
    square = geometry.Square(101.37, 88.91, 143.2)
    s = 128 / square.side
    before = np.array([[s, 0.0, 64.0 - s * square.cx], [0.0, s, 64.0 - s * square.cy]])
    assert (geometry.crop_matrix(square, 128) == before).all()
    assert square.as_list() == square.rolled(12.0).as_list() == [101.37, 88.91, 143.2]


def test_the_turned_crop_of_a_turned_photo_is_the_level_crop_of_the_upright_one() -> None:
    upright, points = _face("261068_1")
    turned, _ = _face("261068_1", TURN)
    square = geometry.square_around(geometry.landmark_box(points), geometry.MODEL_SCALE)
    level = geometry.warp(upright, geometry.crop_matrix(square, 128), 128).astype(float)
    undone = geometry.warp(turned, geometry.crop_matrix(square.rolled(-TURN), 128),
                           128).astype(float)
    kept = geometry.warp(turned, geometry.crop_matrix(square, 128), 128).astype(float)
    inside = (level.sum(axis=2) > 0) & (undone.sum(axis=2) > 0) & (kept.sum(axis=2) > 0)
    assert inside.mean() > 0.8
    close = np.abs(level - undone)[inside].mean()
    assert close < 6.0, f"turned crop differs from the level one by {close:.1f} grey levels"
    assert np.abs(level - kept)[inside].mean() > 4.0 * close  # the turn is what matched


# --- BlazeFace's roll -----------------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> BlazeFace:
    return BlazeFace(threads=1)


@pytest.mark.parametrize("name", FACES)
def test_blazeface_eye_roll_follows_a_turned_face(detector: BlazeFace, name: str) -> None:
    upright, points = _face(name)
    turned, moved = _face(name, TURN)
    before = eye_roll(_nearest(detector.detect_photo(upright), points))
    after = eye_roll(_nearest(detector.detect_photo(turned), moved))
    truth = IBUG68.roll(moved, ALL)
    assert _angle_gap(truth, IBUG68.roll(points, ALL) - TURN) < 1e-6
    assert _angle_gap(after, truth) < ROLL_TOLERANCE
    assert _angle_gap(after, before - TURN) < ROLL_TOLERANCE


# --- the flag: model.json and a run's config.yaml ---------------------------------------


def _export_copy(folder: Path, align: bool | None) -> Path:
    """A copy of the shipped default export whose card says `input.crop.align` (left
    out when `align` is None, as in cards written before it)."""
    from face_keypoints.card import ModelCard
    from face_keypoints.resolve import default_folder

    shutil.copytree(default_folder(), folder)
    card = ModelCard.read(folder)
    crop = {k: v for k, v in card.data["input"]["crop"].items() if k != "align"}
    if align is not None:
        crop["align"] = align
    ModelCard.write(folder, {**card.data, "input": {**card.data["input"], "crop": crop}})
    return folder


@needs_model
def test_the_card_and_a_runs_config_say_whether_a_model_is_aligned(tmp_path: Path) -> None:
    from face_keypoints.config import TrainConfig
    from face_keypoints.resolve import resolve_model

    for align in (True, False, None):
        folder = _export_copy(tmp_path / f"export_{align}", align)
        assert resolve_model(f"{folder}:fp32").aligned is (align is True)
        assert resolve_model(f"{folder}:keras").aligned is (align is True)
    run = tmp_path / "run"
    run.mkdir()
    keras_file = next((tmp_path / "export_True").glob("*.keras"))
    shutil.copyfile(keras_file, run / "best.keras")
    assert not resolve_model(run).aligned  # no card, no config: trained upright
    TrainConfig(align=True).save(run / "config.yaml")
    assert resolve_model(run).aligned and resolve_model(run / "best.keras").aligned
    TrainConfig(align=False).save(run / "config.yaml")
    assert not resolve_model(run).aligned


# --- the landmarker, the tracker, evaluate ---------------------------------------------


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, str]:
    """{aligned: model name}: fp32 of a copy of the shipped default whose card says
    aligned, and of one whose card says upright."""
    folder = tmp_path_factory.mktemp("aligned")
    return {align: f"{_export_copy(folder / str(align), align)}:fp32" for align in (True, False)}


@needs_model
def test_an_aligned_cards_crops_turn_by_the_roll_and_an_upright_ones_do_not(
        exports: dict[bool, str], detector: BlazeFace) -> None:
    from face_keypoints.runtime.landmarker import Landmarker, crop_square

    turned, points = _face("261068_1", TURN)
    detection = _nearest(detector.detect_photo(turned), points)
    aligned, upright = (Landmarker(exports[a], threads=1) for a in (True, False))
    assert aligned.aligned and not upright.aligned
    assert aligned.detection_square(detection).angle == eye_roll(detection)
    assert aligned.crop_square(points).angle == pytest.approx(IBUG68.roll(points, ALL))
    assert upright.detection_square(detection).angle == 0.0
    assert upright.crop_square(points) == crop_square(points)
    level = aligned.crop_square(points)
    assert (level.cx, level.cy, level.side) == (crop_square(points).cx, crop_square(points).cy,
                                                crop_square(points).side)
    assert upright.detected(turned, detection).roll == 0.0


@needs_model
@pytest.mark.parametrize("name", FACES)
def test_an_aligned_model_reads_a_turned_face_as_well_as_the_upright_one(
        exports: dict[bool, str], detector: BlazeFace, name: str) -> None:
    from face_keypoints.runtime.api import FaceLandmarker

    landmarker = FaceLandmarker(exports[True])
    errors, rolls = [], []
    for turn in (0.0, 45.0):
        image, points = _face(name, turn)
        face = min(landmarker.detect(image), key=lambda f: float(np.linalg.norm(
            f.points.mean(axis=0) - points.mean(axis=0))))
        errors.append(_nme(face.points, points))
        rolls.append((face.to_dict()["roll"], IBUG68.roll(points, ALL)))
    # Measured with the copy of today's default: +1.3, +1.3 and +0.5 points at 45 degrees
    # (the turn resamples a 211-232 px photo and brings its black corners near the face);
    # with issue 20's aligned run (runs/i20_aligned, trained so): +1.1, +1.1 and +0.5.
    # What this guards is the points' way back from a turned crop into the image; which
    # way the crop turns is pinned by the roll reported (the square's angle, which
    # crop_matrix levels: test_crop_matrix_turns_a_square_as_model_matrix_turns_...).
    assert errors[1] < errors[0] + 2.0, f"upright {errors[0]:.2f} %, turned {errors[1]:.2f} %"
    for reported, truth in rolls:
        assert _angle_gap(reported, truth) < ROLL_TOLERANCE


@needs_model
def test_tracking_a_turned_face_keeps_it_on_crops_turned_by_its_landmarks(
        exports: dict[bool, str]) -> None:
    from face_keypoints.runtime.api import FaceLandmarker
    from face_keypoints.testing import shaken_clip

    turned, points = _face("261068_1", TURN)
    truth = IBUG68.roll(points, ALL)
    landmarker = FaceLandmarker(exports[True], smoothing=False)
    for frame, _ in shaken_clip(turned, 12, seed=3):
        (face,) = landmarker.track(frame)
        assert _angle_gap(face.roll, truth) < ROLL_TOLERANCE
        assert _angle_gap(face.roll, IBUG68.roll(face.points, ALL)) < ROLL_TOLERANCE


@needs_model
def test_evaluate_frames_an_aligned_models_faces_by_the_ground_truth_roll(
        exports: dict[bool, str], tmp_path: Path) -> None:
    from face_keypoints.evaluate import evaluate
    from face_keypoints.prepare import prepare

    prepare(format="300w", input=AFW, output=tmp_path / "afw", size=128, progress=False,
            log=lambda line: None)
    aligned = evaluate(exports[True], tmp_path / "afw")
    upright = evaluate(exports[False], tmp_path / "afw")
    assert aligned["aligned"] and not upright["aligned"]
    assert aligned["nme"] == evaluate(exports[False], tmp_path / "afw", align=True)["nme"]
    assert aligned["nme"] != upright["nme"]
