"""Landmark schemes checked on real faces: flip orders, sides, and cross-scheme mappings.

A flip order is right when a frontal face, mirrored and renamed by it, lands back on the
face's own shape (frontal faces are nearly symmetric). The shapes are compared after a
similarity alignment (centre, scale, rotation; never a reflection), so head roll does not
count, and errors are in units of the inter-ocular distance.
"""

from __future__ import annotations

import re
from functools import cache
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, needs_shared, shared_path
from PIL import Image

from face_keypoints import schemes
from face_keypoints.data.face import ABSENT, AnnotatedFace
from face_keypoints.data.readers import FORMATS
from face_keypoints.schemes import SCHEMES, Scheme, get_scheme, map_points, mapping_matrix


def read_faces(format: str, root: Path, split: str | None = None) -> list[AnnotatedFace]:
    return [f for f in FORMATS[format][0](root, None, split) if isinstance(f, AnnotatedFace)]


@cache
def fixture_faces(format: str, folder: str) -> tuple[AnnotatedFace, ...]:
    return tuple(read_faces(format, FIXTURES / folder))


def pick(format: str, folder: str, names: tuple[str, ...], index: tuple[int, ...] = ()
         ) -> list[AnnotatedFace]:
    faces = fixture_faces(format, folder)
    return [f for i, f in enumerate(faces) if f.image.name in names or i in index]


def frontal_faces(scheme: str) -> list[AnnotatedFace]:
    """Real frontal faces of each scheme, from the fixtures (chosen by eye and by yaw)."""
    if scheme == "wflw98":  # the Football face and the third face of the Cheering photo
        return pick("wflw", "wflw", (), (0, 3))
    if scheme == "ibug68":
        return (pick("300w", "300w/afw", ("261068_1.jpg", "45092961_1.jpg"))
                + pick("merl68", "aflw_merl68",
                       ("image04522.jpg", "image04561.jpg", "image04991.jpg")))
    if scheme == "aflw21":  # |yaw| < 3 degrees
        return pick("aflw21", "aflw21", ("image04522.jpg", "image04561.jpg", "image04991.jpg"))
    if scheme == "aflw19":
        return pick("coco", "coco/aflw", ("image22568.jpg",))
    if scheme == "cofw29":
        return list(fixture_faces("coco", "coco/cofw"))
    raise KeyError(scheme)


def mirror(points: np.ndarray, width: int) -> np.ndarray:
    """Points of the image mirrored left-right (np.fliplr): pixel x goes to width-1-x."""
    out = points.astype(np.float64).copy()
    out[:, 0] = width - 1 - out[:, 0]
    return out


def image_width(face: AnnotatedFace) -> int:
    return _width(face.image)


@cache
def _width(path: Path) -> int:
    with Image.open(path) as image:
        return image.width


def align(target: np.ndarray, moving: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre both; scale and rotate `moving` onto `target` (least squares, no reflection)."""
    a = target - target.mean(axis=0)
    b = moving - moving.mean(axis=0)
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = float((s * np.diag(d)).sum() / (b**2).sum())
    return a, scale * b @ rotation


def inter_ocular(face: AnnotatedFace, scheme: Scheme) -> float:
    a, b = scheme.outer_eyes
    return float(np.linalg.norm(face.points[a] - face.points[b]))


def flip_errors(face: AnnotatedFace, scheme: Scheme,
                order: list[int] | tuple[int, ...]) -> np.ndarray:
    """Per-point distance (inter-ocular units) between the face and its mirror renamed by
    `order`, aligned on the points both have; NaN where a point is absent."""
    order = list(order)
    present = face.visibility != ABSENT
    both = present & present[order]
    mirrored = mirror(face.points, image_width(face))[order]
    a, b = align(face.points[both].astype(np.float64), mirrored[both])
    errors = np.full(len(order), np.nan)
    errors[both] = np.linalg.norm(a - b, axis=1) / inter_ocular(face, scheme)
    return errors


def mean_flip_error(scheme: Scheme, order) -> float:
    return float(np.mean([np.nanmean(flip_errors(f, scheme, order))
                          for f in frontal_faces(scheme.name)]))


def pair_list(scheme: Scheme) -> list[tuple[int, int]]:
    return [(a, b) for a, b in enumerate(scheme.flip) if a < b]


FLIP_SCHEMES = ["wflw98", "ibug68", "aflw21", "aflw19", "cofw29"]


# --- Structure ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SCHEMES))
def test_flip_is_a_permutation_that_undoes_itself(name: str) -> None:
    scheme = get_scheme(name)
    assert sorted(scheme.flip) == list(range(scheme.num_points))
    assert all(scheme.flip[scheme.flip[i]] == i for i in range(scheme.num_points))
    a, b = scheme.outer_eyes
    assert scheme.flip[a] == b
    assert tuple(sorted(scheme.flip[i] for i in scheme.pupils[0])) == tuple(
        sorted(scheme.pupils[1]))
    assert len(scheme.contours) == len(scheme.closed)
    assert all(0 <= i < scheme.num_points for contour in scheme.contours for i in contour)


def _side(name: str) -> str | None:
    """'right' / 'left': the first side word of a point name (snake or AFLW CamelCase)."""
    found = re.search(r"right|left", name, flags=re.IGNORECASE)
    return found.group(0).lower() if found else None


def _swap_sides(name: str) -> str:
    table = {"right": "left", "left": "right", "Right": "Left", "Left": "Right"}
    return re.sub(r"right|left|Right|Left", lambda m: table[m.group(0)], name)


@pytest.mark.parametrize("name", list(SCHEMES))
def test_flip_pairs_agree_with_point_names(name: str) -> None:
    scheme = get_scheme(name)
    for i, j in enumerate(scheme.flip):
        a, b = scheme.names[i], scheme.names[j]
        if name in ("ibug68", "wflw98"):
            # Numbered parts ("right_eye_0" <-> "left_eye_3"): the part must swap sides.
            a, b = re.sub(r"_\d+$", "", a), re.sub(r"_\d+$", "", b)
        assert _swap_sides(a) == b, (i, scheme.names[i], j, scheme.names[j])
        if i == j:
            assert _side(a) is None, (i, a)


# --- Flip orders on real frontal faces --------------------------------------------------

def test_flip_points_mirrors_like_fliplr_on_a_real_image() -> None:
    """flip_points matches np.fliplr of the image, pixel for pixel."""
    face = pick("300w", "300w/afw", ("45092961_1.jpg",))[0]
    image = np.asarray(Image.open(face.image).convert("RGB"))
    height, width = image.shape[:2]
    mirrored = np.fliplr(image)
    points = np.round(face.points).astype(np.int64)
    points = np.clip(points, 0, [width - 1, height - 1])
    flipped = schemes.IBUG68.flip_points(points.astype(np.float32), width)
    for j in range(68):
        x, y = points[schemes.IBUG68.flip[j]]
        fx, fy = np.round(flipped[j]).astype(int)
        np.testing.assert_array_equal(mirrored[fy, fx], image[y, x])
    # Mirroring twice gives the points back.
    twice = schemes.IBUG68.flip_points(flipped, width)
    np.testing.assert_allclose(twice, points, atol=1e-4)


@pytest.mark.parametrize("name", FLIP_SCHEMES)
def test_flip_maps_frontal_faces_onto_their_own_shape(name: str) -> None:
    scheme = get_scheme(name)
    for face in frontal_faces(name):
        right = np.nanmean(flip_errors(face, scheme, scheme.flip))
        none = np.nanmean(flip_errors(face, scheme, range(scheme.num_points)))
        assert right < 0.15, (face.image.name, right)
        assert none > 3 * right and none > 0.35, (face.image.name, right, none)


@pytest.mark.parametrize("name", FLIP_SCHEMES)
def test_flip_every_pair_is_needed(name: str) -> None:
    """Leaving any one pair unswapped moves those two points far off the face's shape."""
    scheme = get_scheme(name)
    faces = frontal_faces(name)
    for a, b in pair_list(scheme):
        broken = list(scheme.flip)
        broken[a], broken[b] = a, b
        right = np.nanmean([flip_errors(f, scheme, scheme.flip)[[a, b]] for f in faces])
        wrong = np.nanmean([flip_errors(f, scheme, broken)[[a, b]] for f in faces])
        assert wrong > 1.5 * right, (scheme.names[a], scheme.names[b], right, wrong)


@pytest.mark.parametrize("name", FLIP_SCHEMES)
def test_flip_beats_every_exchange_of_partners_between_two_pairs(name: str) -> None:
    """(a,b),(c,d) -> (a,d),(c,b): the published pairing always fits the face better."""
    scheme = get_scheme(name)
    faces = frontal_faces(name)
    right = [flip_errors(f, scheme, scheme.flip) for f in faces]
    for (a, b), (c, d) in combinations(pair_list(scheme), 2):
        wrong_order = list(scheme.flip)
        wrong_order[a], wrong_order[d], wrong_order[c], wrong_order[b] = d, a, b, c
        wrong = [flip_errors(f, scheme, wrong_order) for f in faces]
        idx = [a, b, c, d]
        assert np.nanmean([w[idx] for w in wrong]) > np.nanmean([r[idx] for r in right]), (
            scheme.names[a], scheme.names[b], scheme.names[c], scheme.names[d])


@pytest.mark.parametrize("name", FLIP_SCHEMES)
def test_subject_right_side_lies_at_smaller_image_x_on_frontal_faces(name: str) -> None:
    """iBUG, WFLW and COFW name the subject's right (on the image's left); AFLW's 'Left'
    is the image's left, which is also the subject's right."""
    scheme = get_scheme(name)
    image_left = "left" if name.startswith("aflw") else "right"
    for face in frontal_faces(name):
        x = face.points[:, 0]
        a, b = scheme.outer_eyes
        assert x[a] < x[b], face.image.name
        first, second = scheme.eye_centres(face.points)
        assert first[0] < second[0], face.image.name
        present = face.visibility != ABSENT
        for i, j in enumerate(scheme.flip):
            if _side(scheme.names[i]) == image_left and present[i] and present[j]:
                assert x[i] < x[j], (face.image.name, scheme.names[i], scheme.names[j])


def test_cofw_names_sit_on_the_features_they_name() -> None:
    """COFW's 29 names, checked on the two mmpose faces (verified by eye on the photos)."""
    scheme = schemes.COFW29
    for face in fixture_faces("coco", "coco/cofw"):
        p = {n: face.points[i] for i, n in enumerate(scheme.names)}
        # Brows above eyes above nose above mouth above chin.
        assert p["right_brow_outer"][1] < p["right_eye_outer"][1] < p["nose_tip"][1]
        assert p["nose_tip"][1] < p["nose_base"][1] < p["upper_lip_top"][1]
        assert (p["upper_lip_top"][1] < p["upper_lip_bottom"][1] <= p["lower_lip_top"][1]
                < p["lower_lip_bottom"][1] < p["chin"][1])
        # Outer corners farther from the face's midline than inner ones; pupils between.
        for side in ("right", "left"):
            outer, inner = p[f"{side}_eye_outer"], p[f"{side}_eye_inner"]
            pupil = p[f"{side}_pupil"]
            assert min(outer[0], inner[0]) < pupil[0] < max(outer[0], inner[0])
            assert p[f"{side}_eye_upper"][1] < p[f"{side}_eye_lower"][1]
            assert p[f"{side}_brow_upper_mid"][1] < p[f"{side}_brow_lower_mid"][1]
        mid = (p["right_eye_inner"][0] + p["left_eye_inner"][0]) / 2
        assert abs(p["right_eye_outer"][0] - mid) > abs(p["right_eye_inner"][0] - mid)
        assert abs(p["right_brow_outer"][0] - mid) > abs(p["right_brow_inner"][0] - mid)


# --- Mappings ----------------------------------------------------------------------------

MAPPINGS = [("wflw98", "ibug68"), ("ibug68", "aflw21"), ("ibug68", "cofw29"),
            ("aflw21", "aflw19"), ("aflw21", "ibug68"), ("aflw19", "aflw21"),
            ("wflw98", "aflw21"), ("wflw98", "cofw29"), ("wflw98", "aflw19"),
            ("aflw19", "ibug68"), ("ibug68", "aflw19"), ("ibug68", "wflw98")]


@pytest.mark.parametrize(("src", "dst"), MAPPINGS)
def test_mapping_commutes_with_the_flip_on_real_faces(src: str, dst: str) -> None:
    """Mirroring then mapping = mapping then mirroring, exactly: the mapping and both flip
    orders agree on what left and right mean."""
    source = {"wflw98": fixture_faces("wflw", "wflw"),
              "ibug68": fixture_faces("300w", "300w/afw"),
              "aflw21": fixture_faces("aflw21", "aflw21")}.get(src)
    if source is None:
        source = fixture_faces("coco", "coco/aflw")
    s, d = get_scheme(src), get_scheme(dst)
    for face in source:
        width = image_width(face)
        mapped, defined = map_points(face.points, src, dst)
        mirrored_first, _ = map_points(s.flip_points(face.points, width), src, dst)
        mirrored_after = d.flip_points(mapped, width)
        assert (defined == defined[list(d.flip)]).all()
        np.testing.assert_allclose(mirrored_first[defined], mirrored_after[defined], atol=1e-3)


@pytest.mark.parametrize(("src", "dst"), MAPPINGS)
def test_mapping_rows_are_averages(src: str, dst: str) -> None:
    matrix = mapping_matrix(src, dst)
    assert matrix.shape == (get_scheme(dst).num_points, get_scheme(src).num_points)
    defined = ~np.isnan(matrix).any(axis=1)
    assert defined.sum() >= 10
    np.testing.assert_allclose(matrix[defined].sum(axis=1), 1.0, atol=1e-6)
    assert (matrix[defined] >= 0).all()


def test_ibug_to_wflw_gives_back_the_68_wflw_points_that_are_ibug_points() -> None:
    """A 68-point label supervises exactly the WFLW points that are an iBUG point, at
    their own positions; the other 30 stay undefined."""
    for face in fixture_faces("wflw", "wflw"):
        ibug, _ = map_points(face.points, "wflw98", "ibug68")
        back, defined = map_points(ibug, "ibug68", "wflw98")
        assert defined.sum() == 68
        np.testing.assert_allclose(back[defined], face.points[defined], atol=1e-4)
        assert not defined[[1, 3, 38, 50, 62, 66, 70, 74, 96, 97]].any()


def test_wflw_to_ibug_keeps_wflw_eye_corners_and_jaw_ends() -> None:
    for face in fixture_faces("wflw", "wflw"):
        mapped, defined = map_points(face.points, "wflw98", "ibug68")
        assert defined.all()
        w = face.points
        for ibug, wflw in {36: 60, 39: 64, 42: 68, 45: 72, 0: 0, 8: 16, 16: 32, 30: 54,
                           48: 76, 54: 82, 17: 33, 26: 46}.items():
            np.testing.assert_allclose(mapped[ibug], w[wflw], atol=1e-4)


def test_wflw_to_ibug_gives_a_plausible_68_point_shape() -> None:
    """Mapped WFLW faces lie near real 68-point faces (AFW, MERL) after alignment, and a
    left/right-swapped mapping does not."""
    references = [f for f in (*fixture_faces("300w", "300w/afw"),
                              *frontal_faces("ibug68")) if (f.visibility != ABSENT).all()]

    def distance(shape: np.ndarray) -> float:
        errors = []
        for ref in references:
            a, b = align(ref.points.astype(np.float64), shape.astype(np.float64))
            errors.append(np.linalg.norm(a - b, axis=1).mean() / np.linalg.norm(a[36] - a[45]))
        return float(np.mean(errors))

    for face in fixture_faces("wflw", "wflw"):
        mapped, _ = map_points(face.points, "wflw98", "ibug68")
        assert distance(mapped) < 0.15, face.line
        # Rename the mapped points as the other side's: the shape stops looking like a face.
        assert distance(mapped[list(schemes.IBUG68.flip)]) > 0.3


def _mapped_presence(visibility: np.ndarray, src: str, dst: str) -> np.ndarray:
    matrix = np.nan_to_num(mapping_matrix(src, dst))
    defined = ~np.isnan(mapping_matrix(src, dst)).any(axis=1)
    absent_used = (matrix[:, visibility == ABSENT] > 0).any(axis=1)
    return defined & ~absent_used


def _merl_vs_aflw(merl: list[AnnotatedFace], aflw: list[AnnotatedFace],
                  swap: bool = False) -> list[float]:
    """Mean distance (inter-ocular units) of MERL points mapped to AFLW-21 from the AFLW-21
    human annotation of the same crop, for each face with both eye corners."""
    by_image = {f.image.name: f for f in aflw}
    errors = []
    for m in merl:
        a = by_image[m.image.name]
        mapped, _ = map_points(m.points, "ibug68", "aflw21")
        ok = _mapped_presence(m.visibility, "ibug68", "aflw21") & (a.visibility != ABSENT)
        if swap:
            mapped = mapped[list(schemes.AFLW21.flip)]
            ok = ok[list(schemes.AFLW21.flip)] & (a.visibility != ABSENT)
        if not (a.visibility[[6, 11]] != ABSENT).all():
            continue
        iod = inter_ocular(a, schemes.AFLW21)
        errors.append(float(np.linalg.norm(mapped[ok] - a.points[ok], axis=1).mean() / iod))
    return errors


def test_ibug_to_aflw21_on_merl_faces_lands_on_aflw_annotations_of_the_same_crop() -> None:
    merl = [f for f in fixture_faces("merl68", "aflw_merl68") if abs(f.yaw) < 30]
    aflw = list(fixture_faces("aflw21", "aflw21"))
    errors = _merl_vs_aflw(merl, aflw)
    assert len(errors) == 5
    assert max(errors) < 0.12, errors
    # AFLW's Left read as the subject's left would put every point on the other side.
    assert min(_merl_vs_aflw(merl, aflw, swap=True)) > 0.3


@needs_shared("aflw_merl68", "landmarks68.csv")
def test_ibug_to_aflw21_agrees_with_aflw_on_thousands_of_merl_faces(tmp_path: Path) -> None:
    # The first 2000 MERL faces with |yaw| < 30 and their AFLW-21 rows, read by the readers.
    merl_lines = shared_path("aflw_merl68", "landmarks68.csv").read_text().splitlines()
    header, rows = merl_lines[0], merl_lines[1:]
    chosen = [r for r in rows if abs(float(r.split(",")[1])) < 30][:2000]
    names = {r.split(",", 1)[0] for r in chosen}
    aflw_lines = shared_path("aflw21", "landmarks21.csv").read_text().splitlines()
    (tmp_path / "landmarks68.csv").write_text("\n".join([header, *chosen]) + "\n")
    (tmp_path / "landmarks21.csv").write_text(
        "\n".join([aflw_lines[0], *(r for r in aflw_lines[1:] if r.split(",", 1)[0] in names)])
        + "\n")
    merl = read_faces("merl68", tmp_path)
    aflw = read_faces("aflw21", tmp_path)
    errors = np.array(_merl_vs_aflw(merl, aflw))
    assert len(errors) > 1500
    assert np.median(errors) < 0.08
    assert np.percentile(errors, 90) < 0.12


def test_aflw21_to_aflw19_drops_the_ears() -> None:
    face = fixture_faces("aflw21", "aflw21")[2]
    mapped, defined = map_points(face.points, "aflw21", "aflw19")
    assert defined.all()
    keep = [i for i in range(21) if schemes.AFLW21.names[i] not in ("LeftEar", "RightEar")]
    np.testing.assert_allclose(mapped, face.points[keep])
    assert list(schemes.AFLW19.names) == [schemes.AFLW21.names[i] for i in keep]
    back, back_defined = map_points(mapped, "aflw19", "aflw21")
    assert np.flatnonzero(~back_defined).tolist() == [12, 16]
    np.testing.assert_allclose(back[back_defined], face.points[back_defined])


def test_ibug_to_cofw_gives_a_shape_like_real_cofw_faces() -> None:
    cofw = fixture_faces("coco", "coco/cofw")
    for face in frontal_faces("ibug68"):
        mapped, _ = map_points(face.points, "ibug68", "cofw29")
        ok = _mapped_presence(face.visibility, "ibug68", "cofw29")
        errors = []
        for c in cofw:
            a, b = align(c.points[ok].astype(np.float64), mapped[ok].astype(np.float64))
            errors.append(np.linalg.norm(a - b, axis=1).mean() / inter_ocular(c, schemes.COFW29))
        assert min(errors) < 0.15, (face.image.name, errors)


def test_chained_mapping_equals_mapping_step_by_step() -> None:
    face = fixture_faces("wflw", "wflw")[0]
    direct, defined = map_points(face.points, "wflw98", "aflw21")
    via, _ = map_points(face.points, "wflw98", "ibug68")
    twice, _ = map_points(via, "ibug68", "aflw21")
    np.testing.assert_allclose(direct[defined], twice[defined], atol=1e-4)
    assert np.flatnonzero(~defined).tolist() == [12, 16]  # no ears in WFLW
    to19, defined19 = map_points(face.points, "wflw98", "aflw19")
    thrice, _ = map_points(twice, "aflw21", "aflw19")
    assert defined19.all()
    np.testing.assert_allclose(to19, thrice, atol=1e-4)


def test_a_scheme_without_a_route_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no mapping from cofw29 to ibug68"):
        mapping_matrix("cofw29", "ibug68")
    with pytest.raises(KeyError, match="unknown landmark scheme"):
        mapping_matrix("ibug86", "ibug68")
