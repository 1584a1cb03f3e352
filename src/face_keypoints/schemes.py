"""Landmark schemes: the one place that knows what a point index means.

Every other module asks a `Scheme` for point counts, flip order, normalising points
and cross-scheme mappings, so an index never appears anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np


@dataclass(frozen=True)
class Scheme:
    """A landmark layout.

    `flip[i]` is the index that point i becomes after a horizontal mirror.
    `outer_eyes` are the two outer eye corners (inter-ocular NME); `pupils` are two
    groups of points whose means are the eye centres (inter-pupil NME).
    `contours` are polylines for drawing, `closed` marks the ones drawn as loops.
    """

    name: str
    names: tuple[str, ...]
    flip: tuple[int, ...]
    outer_eyes: tuple[int, int]
    pupils: tuple[tuple[int, ...], tuple[int, ...]]
    contours: tuple[tuple[int, ...], ...] = ()
    closed: tuple[bool, ...] = ()
    description: str = ""
    extras: dict = field(default_factory=dict)

    @property
    def num_points(self) -> int:
        return len(self.names)

    def flip_points(self, points: np.ndarray, width: float) -> np.ndarray:
        """Mirror (..., K, 2) points in an image of `width` pixels and permute them.

        Pixel centres sit at integer coordinates (as in OpenCV and in our crops), so the
        mirror is the one of np.fliplr / cv2.flip: x -> width - 1 - x.
        """
        mirrored = points.copy()
        mirrored[..., 0] = (width - 1) - points[..., 0]
        return mirrored[..., list(self.flip), :]

    def eye_centres(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two eye centres of (..., K, 2) points, for inter-pupil normalisation."""
        return (
            points[..., list(self.pupils[0]), :].mean(axis=-2),
            points[..., list(self.pupils[1]), :].mean(axis=-2),
        )

    def roll(self, points: np.ndarray, present: np.ndarray) -> float | None:
        """The face's roll in degrees (image axes, y down): the angle of the line from the
        subject's right eye centre to the left one, each the mean of its present pupil
        points; None when an eye has none (a profile's far eye)."""
        centres = []
        for group in self.pupils:
            seen = [i for i in group if present[i]]
            if not seen:
                return None
            centres.append(np.asarray(points, np.float64)[seen].mean(axis=0))
        dx, dy = centres[1] - centres[0]
        return float(np.degrees(np.arctan2(dy, dx)))


def _pairs_to_flip(n: int, pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    flip = list(range(n))
    for a, b in pairs:
        flip[a], flip[b] = b, a
    return tuple(flip)


def _range(a: int, b: int) -> tuple[int, ...]:
    return tuple(range(a, b + 1))


# --- iBUG 68 (300-W). "right" is the subject's right, on the image's left. -------------
_IBUG_NAMES = (
    [f"jaw_{i}" for i in range(17)]
    + [f"right_brow_{i}" for i in range(5)]
    + [f"left_brow_{i}" for i in range(5)]
    + [f"nose_bridge_{i}" for i in range(4)]
    + [f"nose_base_{i}" for i in range(5)]
    + [f"right_eye_{i}" for i in range(6)]
    + [f"left_eye_{i}" for i in range(6)]
    + [f"outer_lip_{i}" for i in range(12)]
    + [f"inner_lip_{i}" for i in range(8)]
)
IBUG68 = Scheme(
    name="ibug68",
    names=tuple(_IBUG_NAMES),
    flip=_pairs_to_flip(
        68,
        [(i, 16 - i) for i in range(8)]
        + [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22)]
        + [(31, 35), (32, 34)]
        + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
        + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]
        + [(60, 64), (61, 63), (65, 67)],
    ),
    outer_eyes=(36, 45),
    pupils=(_range(36, 41), _range(42, 47)),
    contours=(
        _range(0, 16), _range(17, 21), _range(22, 26), _range(27, 30), _range(31, 35),
        _range(36, 41), _range(42, 47), _range(48, 59), _range(60, 67),
    ),
    closed=(False, False, False, False, False, True, True, True, True),
    description="iBUG 68 points (300-W, 300-VW, MERL-RAV, YouTube-Faces keypoints)",
)

# --- WFLW 98 ------------------------------------------------------------------------
_WFLW_NAMES = (
    [f"jaw_{i}" for i in range(33)]
    + [f"right_brow_{i}" for i in range(9)]
    + [f"left_brow_{i}" for i in range(9)]
    + [f"nose_bridge_{i}" for i in range(4)]
    + [f"nose_base_{i}" for i in range(5)]
    + [f"right_eye_{i}" for i in range(8)]
    + [f"left_eye_{i}" for i in range(8)]
    + [f"outer_lip_{i}" for i in range(12)]
    + [f"inner_lip_{i}" for i in range(8)]
    + ["right_pupil", "left_pupil"]
)
WFLW98 = Scheme(
    name="wflw98",
    names=tuple(_WFLW_NAMES),
    flip=_pairs_to_flip(
        98,
        [(i, 32 - i) for i in range(16)]
        + [(33, 46), (34, 45), (35, 44), (36, 43), (37, 42)]
        + [(38, 50), (39, 49), (40, 48), (41, 47)]
        + [(55, 59), (56, 58)]
        + [(60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73)]
        + [(76, 82), (77, 81), (78, 80), (83, 87), (84, 86)]
        + [(88, 92), (89, 91), (93, 95), (96, 97)],
    ),
    outer_eyes=(60, 72),
    pupils=((96,), (97,)),
    contours=(
        _range(0, 32), _range(33, 41), _range(42, 50), _range(51, 54), _range(55, 59),
        _range(60, 67), _range(68, 75), _range(76, 87), _range(88, 95),
    ),
    closed=(False, True, True, False, False, True, True, True, True),
    description="WFLW 98 points",
)

# --- AFLW 21 (feature ids 1-21). AFLW's "Left" is the image's left, the subject's right.
_AFLW21_NAMES = (
    "LeftBrowLeftCorner", "LeftBrowCenter", "LeftBrowRightCorner",
    "RightBrowLeftCorner", "RightBrowCenter", "RightBrowRightCorner",
    "LeftEyeLeftCorner", "LeftEyeCenter", "LeftEyeRightCorner",
    "RightEyeLeftCorner", "RightEyeCenter", "RightEyeRightCorner",
    "LeftEar", "NoseLeft", "NoseCenter", "NoseRight", "RightEar",
    "MouthLeftCorner", "MouthCenter", "MouthRightCorner", "ChinCenter",
)
AFLW21 = Scheme(
    name="aflw21",
    names=_AFLW21_NAMES,
    flip=_pairs_to_flip(
        21, [(0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 16), (13, 15), (17, 19)]
    ),
    outer_eyes=(6, 11),
    pupils=((7,), (10,)),
    contours=((0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11), (13, 14, 15), (17, 18, 19)),
    closed=(False,) * 6,
    description="AFLW 21 points (original manual annotation)",
)

# --- AFLW 19: AFLW 21 without the ears, as mmpose and HRNet publish it. ----------------
_AFLW19_FROM_21 = tuple(i for i in range(21) if i not in (12, 16))
AFLW19 = Scheme(
    name="aflw19",
    names=tuple(_AFLW21_NAMES[i] for i in _AFLW19_FROM_21),
    flip=_pairs_to_flip(
        19, [(0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 14), (15, 17)]
    ),
    outer_eyes=(6, 11),
    pupils=((7,), (10,)),
    contours=((0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11), (12, 13, 14), (15, 16, 17)),
    closed=(False,) * 6,
    description="AFLW 19 points (AFLW 21 without the ears; mmpose/HRNet layout)",
)

# --- COFW 29 (Burgos-Artizzu et al.). Pairs are image-left first. ----------------------
_COFW_NAMES = (
    "right_brow_outer", "left_brow_outer", "right_brow_inner", "left_brow_inner",
    "right_brow_upper_mid", "right_brow_lower_mid", "left_brow_upper_mid",
    "left_brow_lower_mid",
    "right_eye_outer", "left_eye_outer", "right_eye_inner", "left_eye_inner",
    "right_eye_upper", "right_eye_lower", "left_eye_upper", "left_eye_lower",
    "right_pupil", "left_pupil", "nose_right", "nose_left", "nose_tip", "nose_base",
    "mouth_right", "mouth_left", "upper_lip_top", "upper_lip_bottom", "lower_lip_top",
    "lower_lip_bottom", "chin",
)
COFW29 = Scheme(
    name="cofw29",
    names=_COFW_NAMES,
    flip=_pairs_to_flip(
        29,
        [(0, 1), (2, 3), (4, 6), (5, 7), (8, 9), (10, 11), (12, 14), (13, 15), (16, 17),
         (18, 19), (22, 23)],
    ),
    outer_eyes=(8, 9),
    pupils=((16,), (17,)),
    contours=((0, 4, 2, 5, 0), (1, 6, 3, 7, 1), (8, 12, 10, 13, 8), (9, 14, 11, 15, 9),
              (18, 20, 19), (22, 24, 23, 27, 22)),
    closed=(False,) * 6,
    description="COFW 29 points",
)

SCHEMES: dict[str, Scheme] = {s.name: s for s in (WFLW98, IBUG68, AFLW21, AFLW19, COFW29)}


def get_scheme(name: str) -> Scheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise KeyError(f"unknown landmark scheme {name!r}; known: {', '.join(SCHEMES)}") from None


def scheme_for_count(count: int) -> Scheme:
    """The scheme with `count` points (used where a file states only a count)."""
    for scheme in SCHEMES.values():
        if scheme.num_points == count:
            return scheme
    raise KeyError(f"no landmark scheme has {count} points")


# --- Mappings between schemes ----------------------------------------------------------
# Each target point is the mean of a group of source points; None = no counterpart.
_WFLW_TO_IBUG: list[tuple[int, ...] | None] = (
    [(2 * i,) for i in range(17)]
    + [(i,) for i in range(33, 38)]
    + [(i,) for i in range(42, 47)]
    + [(i,) for i in range(51, 60)]
    + [(60,), (61,), (63,), (64,), (65,), (67,)]
    + [(68,), (69,), (71,), (72,), (73,), (75,)]
    + [(i,) for i in range(76, 96)]
)

_IBUG_TO_AFLW21: list[tuple[int, ...] | None] = [
    (17,), (19,), (21,), (22,), (24,), (26,),
    (36,), _range(36, 41), (39,), (42,), _range(42, 47), (45,),
    None, (31,), (30,), (35,), None,
    (48,), (62, 66), (54,), (8,),
]

_IBUG_TO_COFW: list[tuple[int, ...] | None] = [
    (17,), (26,), (21,), (22,), (19,), None, (24,), None,
    (36,), (45,), (39,), (42,), (37, 38), (40, 41), (43, 44), (46, 47),
    _range(36, 41), _range(42, 47), (31,), (35,), (30,), (33,),
    (48,), (54,), (51,), (62,), (66,), (57,), (8,),
]


def _groups_to_matrix(groups: list[tuple[int, ...] | None], n_src: int) -> np.ndarray:
    matrix = np.full((len(groups), n_src), np.nan, dtype=np.float32)
    for row, group in enumerate(groups):
        if group is not None:
            matrix[row] = 0.0
            matrix[row, list(group)] = 1.0 / len(group)
    return matrix


def _single_source_inverse(groups: list[tuple[int, ...] | None], n_dst: int) -> list:
    """Invert a mapping where a target point is exactly one source point."""
    inverse: list[tuple[int, ...] | None] = [None] * n_dst
    for row, group in enumerate(groups):
        if group is not None and len(group) == 1:
            inverse[group[0]] = (row,)
    return inverse


_MAPPINGS: dict[tuple[str, str], list[tuple[int, ...] | None]] = {
    ("wflw98", "ibug68"): _WFLW_TO_IBUG,
    ("ibug68", "aflw21"): _IBUG_TO_AFLW21,
    ("ibug68", "cofw29"): _IBUG_TO_COFW,
    ("aflw21", "aflw19"): [(i,) for i in _AFLW19_FROM_21],
}
_MAPPINGS[("aflw21", "ibug68")] = _single_source_inverse(_IBUG_TO_AFLW21, 68)
# The 68 WFLW points that are an iBUG point; the other 30 (the second jaw points, the
# brows' lower edges, the eyes' extra points and the pupils) have no iBUG counterpart.
_MAPPINGS[("ibug68", "wflw98")] = _single_source_inverse(_WFLW_TO_IBUG, 98)
_MAPPINGS[("aflw19", "aflw21")] = _single_source_inverse(_MAPPINGS[("aflw21", "aflw19")], 21)


def _route(src: str, dst: str) -> list[str]:
    """The shortest chain of listed mappings from `src` to `dst` (breadth first)."""
    previous: dict[str, str] = {src: src}
    frontier = [src]
    while frontier and dst not in previous:
        following = []
        for here in frontier:
            for a, b in _MAPPINGS:
                if a == here and b not in previous:
                    previous[b] = here
                    following.append(b)
        frontier = following
    if dst not in previous:
        raise KeyError(f"no mapping from {src} to {dst}")
    route = [dst]
    while route[-1] != src:
        route.append(previous[route[-1]])
    return route[::-1]


def _compose(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """`second` after `first`; a point is lacking when it uses a point `first` lacks."""
    lacking_via = np.isnan(first).any(axis=1)
    lacking = np.isnan(second).any(axis=1) | (
        np.nan_to_num(second)[:, lacking_via] > 0
    ).any(axis=1)
    composed = np.nan_to_num(second) @ np.nan_to_num(first)
    composed[lacking] = np.nan
    return composed


def mapping_matrix(src: str, dst: str) -> np.ndarray:
    """(K_dst, K_src) matrix M with dst = M @ src; rows of NaN are points `src` lacks.

    Where no direct mapping is listed, the shortest chain of listed ones is composed
    (WFLW 98 -> iBUG 68 -> AFLW 21, AFLW 19 -> AFLW 21 -> iBUG 68, ...).
    """
    get_scheme(src), get_scheme(dst)  # unknown names fail with the list of schemes
    if src == dst:
        return np.eye(get_scheme(src).num_points, dtype=np.float32)
    matrix: np.ndarray | None = None
    for a, b in pairwise(_route(src, dst)):
        step = _groups_to_matrix(_MAPPINGS[(a, b)], get_scheme(a).num_points)
        matrix = step if matrix is None else _compose(matrix, step)
    return matrix


def map_points(points: np.ndarray, src: str, dst: str) -> tuple[np.ndarray, np.ndarray]:
    """Map (..., K_src, 2) points to `dst`; returns points and a (K_dst,) defined mask."""
    matrix = mapping_matrix(src, dst)
    defined = ~np.isnan(matrix).any(axis=1)
    mapped = np.einsum("ds,...sc->...dc", np.nan_to_num(matrix, nan=0.0), points)
    return mapped.astype(np.float32), defined
