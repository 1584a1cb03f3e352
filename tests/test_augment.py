"""Augmentation on real faces: points must stay on the features they name."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_keypoints import geometry
from face_keypoints.data.augment import AugmentConfig, Augmenter, model_input
from face_keypoints.data.cache import Cache, open_cache
from face_keypoints.data.face import ABSENT, OCCLUDED, VISIBLE
from face_keypoints.prepare import prepare

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
AFW = SHARED_DATA / "300w" / "afw"
SIZE = 128
GEOMETRY_ONLY = AugmentConfig(
    flip_p=0.0, brightness=0.0, contrast=0.0, saturation=0.0, grayscale_p=0.0, blur_p=0.0,
    occlusion_p=0.0, jpeg_p=0.0,
)


@pytest.fixture(scope="module")
def afw(tmp_path_factory: pytest.TempPathFactory) -> Cache:
    if not AFW.is_dir():
        pytest.skip(f"real faces needed: {AFW} is absent (shared data not mounted)")
    out = tmp_path_factory.mktemp("afw") / "cache"
    prepare("300w", AFW, out, progress=False, log=lambda line: None)
    return open_cache(out)


@pytest.fixture(scope="module")
def frontal(afw: Cache) -> int:
    """The most frontal fully visible face: its points' mean x sits midway between the
    outer eye corners, and the eyes are far apart."""
    scheme = afw.scheme
    eyes = afw.points[:, list(scheme.outer_eyes)]
    distance = np.linalg.norm(eyes[:, 1] - eyes[:, 0], axis=1)
    skew = np.abs(afw.points[..., 0].mean(axis=1) - eyes[..., 0].mean(axis=1)) / distance
    usable = (afw.visibility == VISIBLE).all(axis=1) & (distance > 0.3 * afw.size)
    return int(np.flatnonzero(usable)[np.argmin(skew[usable])])


def only(**changes: object) -> AugmentConfig:
    return AugmentConfig.from_dict(GEOMETRY_ONLY.to_dict() | changes)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b) + 1e-9))


def patch(image: np.ndarray, centre: np.ndarray, radius: int = 7) -> np.ndarray:
    x, y = np.round(centre).astype(int)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[y - radius : y + radius + 1,
                                                   x - radius : x + radius + 1]


def sample(afw: Cache, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.asarray(afw.images[index]), np.asarray(afw.points[index]), afw.visibility[index]


@pytest.mark.parametrize("flip_p", [0.0, 1.0])
def test_points_land_on_the_pixels_they_name(afw: Cache, frontal: int, flip_p: float) -> None:
    """Fit the affine that carries the un-augmented points onto the augmented ones, warp the
    un-augmented crop with it: around each eye feature it must look like the augmented crop.
    Points and pixels moved by different transforms would fail this."""
    scheme = afw.scheme
    image, points, visibility = sample(afw, frontal)
    ref_image, ref_points = model_input(image, points, visibility, SIZE)
    augment = Augmenter(only(flip_p=flip_p), SIZE)
    for seed in range(12):
        out, placed, _ = augment(image, points, visibility, scheme, np.random.default_rng(seed))
        if flip_p:  # undo the renaming, so row i is the same physical point as ref row i
            placed = placed[list(scheme.flip)]
        design = np.hstack([ref_points * SIZE, np.ones((len(ref_points), 1))])
        fit, *_ = np.linalg.lstsq(design, placed * SIZE, rcond=None)
        matrix = fit.T
        linear = matrix[:, :2]
        scale = np.sqrt(abs(np.linalg.det(linear)))
        # A similarity within the configured ranges, mirrored exactly when asked.
        assert np.sign(np.linalg.det(linear)) == (-1 if flip_p else 1)
        assert 0.85 - 1e-3 <= scale <= 1.15 + 1e-3
        angle = np.degrees(np.arctan2(abs(linear[1, 0]), abs(linear[0, 0])))
        assert angle <= 30.0 + 1e-3
        warped = cv2.warpAffine(ref_image, matrix, (SIZE, SIZE))
        eyes = scheme.eye_centres(placed)
        for where in (*placed[list(scheme.outer_eyes)], *eyes):
            px = where * SIZE
            assert px.min() >= 8 and px.max() <= SIZE - 8, "feature left the crop"
            assert ncc(patch(out, px), patch(warped, px)) > 0.95, (seed, px)


def test_a_known_mirror_is_an_exact_reflection(afw: Cache, frontal: int) -> None:
    """Mirror only: pixels are the reflected model frame, points reflect and swap sides."""
    scheme = afw.scheme
    image, points, visibility = sample(afw, frontal)
    ref_image, ref_points = model_input(image, points, visibility, SIZE)
    out, placed, _ = Augmenter(only(flip_p=1.0, rotation=0.0, zoom=(1.0, 1.0), shift=0.0),
                               SIZE)(image, points, visibility, scheme, np.random.default_rng(0))
    # model_matrix mirrors about x = S/2: output column j samples reference column S - j
    # (equal up to cv2's fixed-point bilinear rounding).
    difference = out[:, 1:].astype(int) - ref_image[:, :0:-1]
    assert np.abs(difference).max() <= 1
    renamed = placed[list(scheme.flip)]
    np.testing.assert_allclose(renamed[:, 0], 1.0 - ref_points[:, 0], atol=1e-5)
    np.testing.assert_allclose(renamed[:, 1], ref_points[:, 1], atol=1e-5)


def test_mirrored_face_keeps_subject_right_eye_on_image_left(afw: Cache, frontal: int) -> None:
    scheme = afw.scheme
    right, left = scheme.outer_eyes
    image, points, visibility = sample(afw, frontal)
    _, ref_points = model_input(image, points, visibility, SIZE)
    assert ref_points[right, 0] < ref_points[left, 0]
    augment = Augmenter(AugmentConfig(flip_p=1.0), SIZE)
    for seed in range(30):
        _, placed, _ = augment(image, points, visibility, scheme, np.random.default_rng(seed))
        assert placed[right, 0] < placed[left, 0], seed


def test_same_seed_same_output(afw: Cache, frontal: int) -> None:
    image, points, visibility = sample(afw, frontal)
    augment = Augmenter(AugmentConfig(occlusion_p=1.0, jpeg_p=1.0, blur_p=1.0), SIZE)

    def run(seed: int) -> tuple[np.ndarray, ...]:
        return augment(image, points, visibility, afw.scheme, np.random.default_rng(seed))

    first, again, other = run(7), run(7), run(8)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    assert first[0].shape == (SIZE, SIZE, 3) and first[0].dtype == np.uint8
    assert first[1].shape == (afw.scheme.num_points, 2) and first[1].dtype == np.float32
    assert first[2].dtype == np.uint8


def test_absent_points_stay_absent(afw: Cache, frontal: int) -> None:
    """An absent point keeps no location, and follows the flip order when mirrored."""
    scheme = afw.scheme
    image, points, visibility = sample(afw, frontal)
    visibility = visibility.copy()
    gone = [scheme.outer_eyes[0], 0]
    visibility[gone] = ABSENT
    points = points.copy()
    points[gone] = 0.0
    flipped = sorted(scheme.flip.index(i) for i in gone)
    augment = Augmenter(AugmentConfig(occlusion_p=1.0), SIZE)
    seen = set()
    for seed in range(20):
        _, placed, vis = augment(image, points, visibility, scheme, np.random.default_rng(seed))
        absent = sorted(np.flatnonzero(vis == ABSENT).tolist())
        assert absent in (sorted(gone), flipped)
        assert (placed[absent] == 0.0).all()
        seen.add(tuple(absent))
    assert len(seen) == 2, "both mirrored and plain samples were expected in 20 draws"


def test_occlusion_marks_covered_points_occluded(afw: Cache, frontal: int) -> None:
    image, points, visibility = sample(afw, frontal)
    augment = Augmenter(only(occlusion_p=1.0, occlusion_size=(0.4, 0.6)), SIZE)
    covered = 0
    for seed in range(10):
        _, _, vis = augment(image, points, visibility, afw.scheme, np.random.default_rng(seed))
        assert not (vis == ABSENT).any()
        covered += int((vis == OCCLUDED).sum())
    assert covered > 0


def test_model_input_is_the_model_frame(afw: Cache, frontal: int) -> None:
    image, points, visibility = sample(afw, frontal)
    crop, placed = model_input(image, points, visibility, SIZE)
    matrix = geometry.model_matrix(afw.size, SIZE)
    np.testing.assert_array_equal(crop, geometry.warp(image, matrix, SIZE))
    np.testing.assert_allclose(placed, geometry.transform_points(points, matrix) / SIZE,
                               atol=1e-5)


def _scale_about_mean(placed: np.ndarray, reference: np.ndarray) -> float:
    """The zoom that carries `reference` onto `placed` (both unrotated)."""
    a, b = placed - placed.mean(axis=0), reference - reference.mean(axis=0)
    return float(np.sqrt((a**2).sum() / (b**2).sum()))


def test_tight_framing_narrows_zoom_and_shift_only(afw: Cache, frontal: int) -> None:
    image, points, visibility = sample(afw, frontal)
    _, reference = model_input(image, points, visibility, SIZE)
    wide = Augmenter(only(rotation=0.0), SIZE)
    exact = Augmenter(only(rotation=0.0, tight_p=1.0, tight_scale=0.0), SIZE)
    half = Augmenter(only(rotation=0.0, tight_p=1.0, tight_scale=0.5), SIZE)
    for seed in range(10):
        _, p_wide, _ = wide(image, points, visibility, afw.scheme, np.random.default_rng(seed))
        _, p_exact, _ = exact(image, points, visibility, afw.scheme,
                              np.random.default_rng(seed))
        _, p_half, _ = half(image, points, visibility, afw.scheme, np.random.default_rng(seed))
        # Scale 0: framed exactly as validation frames the face, whatever was drawn.
        np.testing.assert_allclose(p_exact, reference, atol=1e-5)
        # Scale 0.5: the same draw's zoom deviation, halved.
        zoom = _scale_about_mean(p_wide, reference)
        assert abs(_scale_about_mean(p_half, reference) - (1 + (zoom - 1) / 2)) < 1e-4, seed
    # Rotation is the face's own roll, kept whole.
    rolled = Augmenter(only(rotation=30.0, tight_p=1.0, tight_scale=0.0), SIZE)
    _, p_rolled, _ = rolled(image, points, visibility, afw.scheme, np.random.default_rng(1))
    assert np.abs(p_rolled - reference).max() > 0.01


def test_config_round_trips_through_json() -> None:
    config = AugmentConfig(rotation=15.0, zoom=(0.9, 1.1), jpeg_quality=(50, 95))
    assert AugmentConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown augment setting"):
        AugmentConfig.from_dict({"rotate": 10})
    with pytest.raises(ValueError, match="flip_p"):
        AugmentConfig(flip_p=1.5)
    with pytest.raises(ValueError, match="tight_p"):
        AugmentConfig(tight_p=-0.1)
    with pytest.raises(ValueError, match="low is above high"):
        AugmentConfig(zoom=(1.2, 0.8))
    with pytest.raises(ValueError, match="odd"):
        AugmentConfig(blur_kernel=(3, 6))


def test_aligned_crops_level_the_eyes_of_every_face_and_keep_the_rotation_as_jitter(
        afw: Cache) -> None:
    """With `align`, validation framing levels the ground truth's eyes exactly and training
    adds at most `rotation` degrees; faces keep the same points, only rotated."""
    scheme = afw.scheme
    rolls = []
    for index in range(0, len(afw), 7):
        image, points, visibility = sample(afw, index)
        present = visibility != ABSENT
        roll = scheme.roll(points, present)
        if roll is None:
            continue
        rolls.append(abs(roll))
        _, level = model_input(image, points, visibility, SIZE, align=scheme)
        assert abs(scheme.roll(level, present)) < 1e-3, index
        _, plain = model_input(image, points, visibility, SIZE)
        distance = np.linalg.norm(plain[present] - plain[present].mean(axis=0), axis=1)
        turned = np.linalg.norm(level[present] - level[present].mean(axis=0), axis=1)
        np.testing.assert_allclose(turned, distance, atol=1e-4)
        _, jittered, _ = Augmenter(only(rotation=5.0), SIZE, align=True)(
            image, points, visibility, scheme, np.random.default_rng(index))
        assert abs(scheme.roll(jittered, present)) <= 5.0 + 1e-3, index
    assert max(rolls) > 10.0  # AFW has tilted heads, so levelling did something


def test_roll_is_unknown_without_an_eye_and_zero_rotation_then(afw: Cache) -> None:
    from face_keypoints.data.augment import level_angle

    scheme = afw.scheme
    _, points, visibility = sample(afw, 0)
    hidden = visibility.copy()
    hidden[list(scheme.pupils[1])] = ABSENT
    assert scheme.roll(points, hidden != ABSENT) is None
    assert level_angle(points, hidden, scheme) == 0.0
    assert level_angle(points, visibility, None) == 0.0
