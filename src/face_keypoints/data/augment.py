"""Image + points together, seeded: the training-time augmentation of a cache crop.

Geometry (rotation, zoom, shift, mirror) is one `geometry.model_matrix` applied to both
the pixels and the points, so the two cannot disagree; validation goes through the same
placement step with the identity frame (`model_input`). Photometric changes come after the
warp, on the small model-input image, where they are cheapest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from face_keypoints import geometry
from face_keypoints.data.face import ABSENT, OCCLUDED, VISIBLE
from face_keypoints.schemes import Scheme

# ITU-R BT.601 luma weights (RGB order): the grey that saturation and grayscale blend to.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


@dataclass
class AugmentConfig:
    """Augmentation ranges; lives in a run's config file through `to_dict`/`from_dict`.

    Ranges are (low, high) drawn uniformly; `*_p` fields are probabilities per sample.
    Zoom > 1 makes the face larger; shift is a fraction of the model frame's side;
    brightness, contrast and saturation are factors drawn from 1 +/- the value.
    Blur kernels are odd sizes; occlusion sizes are fractions of the input side.
    With probability `tight_p` a sample's zoom and shift deviations are scaled by
    `tight_scale`, so that share is framed as tightly as a crop around the face's own
    landmarks (a tracked video frame). Rotation is the face's own roll, not a framing
    error, and keeps its range. Tight framing buys precision on tight crops and costs
    robustness to a detector's loose box: configs/results/framing_augmentation/.
    """

    rotation: float = 30.0
    zoom: tuple[float, float] = (0.85, 1.15)
    shift: float = 0.08
    flip_p: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    grayscale_p: float = 0.05
    blur_p: float = 0.15
    blur_kernel: tuple[int, int] = (3, 7)
    occlusion_p: float = 0.3
    occlusion_size: tuple[float, float] = (0.1, 0.4)
    jpeg_p: float = 0.2
    jpeg_quality: tuple[int, int] = (30, 90)
    tight_p: float = 0.0
    tight_scale: float = 0.2
    negative_p: float = 0.15  # share of crops that frame no face, for a presence head

    def __post_init__(self) -> None:
        self.zoom = _pair(self.zoom, float)
        self.blur_kernel = _pair(self.blur_kernel, int)
        self.occlusion_size = _pair(self.occlusion_size, float)
        self.jpeg_quality = _pair(self.jpeg_quality, int)
        for name in ("flip_p", "grayscale_p", "blur_p", "occlusion_p", "jpeg_p", "tight_p",
                     "tight_scale", "negative_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment {name}={getattr(self, name)}: must be in [0, 1]")
        for name in ("rotation", "shift", "brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ValueError(f"augment {name}={getattr(self, name)}: must be >= 0")
        if self.zoom[0] <= 0:
            raise ValueError(f"augment zoom={self.zoom}: must be > 0")
        if self.blur_kernel[0] < 1 or not all(k % 2 for k in self.blur_kernel):
            raise ValueError(f"augment blur_kernel={self.blur_kernel}: odd sizes >= 1")
        if not 0.0 < self.occlusion_size[1] <= 1.0:
            raise ValueError(f"augment occlusion_size={self.occlusion_size}: must be in (0, 1]")
        if self.jpeg_quality[0] < 1 or self.jpeg_quality[1] > 100:
            raise ValueError(f"augment jpeg_quality={self.jpeg_quality}: must be in [1, 100]")

    def to_dict(self) -> dict:
        """Plain JSON types (tuples as lists), for a run's config file."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> AugmentConfig:
        """The inverse of `to_dict`; an unknown key is an error, not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown augment setting(s): {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        return cls(**data)


def _pair(value: tuple | list, kind: type) -> tuple:
    low, high = (kind(v) for v in value)
    if low > high:
        raise ValueError(f"augment range ({low}, {high}): low is above high")
    return (low, high)


def _place(
    image: np.ndarray, points: np.ndarray, visibility: np.ndarray, matrix: np.ndarray,
    input_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp pixels and points with the same matrix; points normalised, absent ones at 0."""
    crop = geometry.warp(np.asarray(image), matrix, input_size)
    placed = geometry.transform_points(np.asarray(points, dtype=np.float64), matrix) / input_size
    placed[visibility == ABSENT] = 0.0
    return crop, placed.astype(np.float32)


def level_angle(points: np.ndarray, visibility: np.ndarray, scheme: Scheme | None) -> float:
    """The rotation that levels the eyes of an aligned crop (the ground truth's roll),
    0 without a scheme (crops not aligned) or where an eye is not annotated."""
    if scheme is None:
        return 0.0
    roll = scheme.roll(points, np.asarray(visibility) != ABSENT)
    return 0.0 if roll is None else roll


def model_input(
    image: np.ndarray, points: np.ndarray, visibility: np.ndarray, input_size: int,
    align: Scheme | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A cache crop framed as the model sees it, with no augmentation (validation); with
    `align` (the points' scheme), rotated so that the eyes are level."""
    matrix = geometry.model_matrix(image.shape[0], input_size,
                                   angle=level_angle(points, visibility, align))
    return _place(image, points, visibility, matrix, input_size)


class Augmenter:
    """Draws one augmentation per call from `config`; all randomness comes from `rng`.

    With `align`, every crop is first rotated so that the ground truth's eyes are level
    (as a runtime that estimates the roll frames faces), and `config.rotation` is the
    error of that estimate rather than the range of rolls faces have.
    """

    def __init__(self, config: AugmentConfig, input_size: int, align: bool = False) -> None:
        self.config = config
        self.input_size = input_size
        self.align = align

    def __call__(
        self,
        image: np.ndarray,
        points: np.ndarray,
        visibility: np.ndarray,
        scheme: Scheme,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(S,S,3) uint8 image, (K,2) float32 normalised points, (K,) uint8 visibility."""
        c, size = self.config, self.input_size
        mirror = bool(rng.random() < c.flip_p)
        angle = float(rng.uniform(-c.rotation, c.rotation))
        if self.align:
            angle += level_angle(points, visibility, scheme)
        zoom = float(rng.uniform(*c.zoom))
        shift = np.array([rng.uniform(-c.shift, c.shift), rng.uniform(-c.shift, c.shift)])
        # Drawn only when used, so runs without it keep their random stream.
        if c.tight_p > 0.0 and rng.random() < c.tight_p:
            zoom, shift = 1.0 + (zoom - 1.0) * c.tight_scale, shift * c.tight_scale
        matrix = geometry.model_matrix(image.shape[0], size, angle=angle, zoom=zoom,
                                       shift=(float(shift[0]), float(shift[1])), mirror=mirror)
        visibility = np.asarray(visibility, dtype=np.uint8)
        crop, placed = _place(image, points, visibility, matrix, size)
        if mirror:
            # The matrix moved every point to its mirror position; the flip order renames
            # them, so "subject's right eye" is still the subject's right eye.
            order = list(scheme.flip)
            placed, visibility = placed[order], visibility[order]
        else:
            visibility = visibility.copy()
        if rng.random() < c.occlusion_p:
            crop = _occlude(crop, placed, visibility, c.occlusion_size, rng)
        return self._photometric(crop, rng), placed, visibility

    def negative(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A crop of the same photo that frames no face as training frames one, with the
        usual photometric changes: a part of the face or its surroundings seen close up
        (zoom 2.5-5x), the frame moved 0.6-1 of its side off the face (what a tracker's
        crop holds once the face has left it), or a face under 40 % of the frame."""
        c, size = self.config, self.input_size
        kind = int(rng.integers(3))
        if kind == 0:
            zoom, shift = rng.uniform(2.5, 5.0), rng.uniform(-0.35, 0.35, 2)
        elif kind == 1:
            direction = rng.uniform(0.0, 2.0 * np.pi)
            zoom = rng.uniform(0.8, 1.25)
            shift = rng.uniform(0.6, 1.0) * np.array([np.cos(direction), np.sin(direction)])
        else:
            zoom, shift = rng.uniform(0.25, 0.4), rng.uniform(-0.2, 0.2, 2)
        matrix = geometry.model_matrix(image.shape[0], size,
                                       angle=float(rng.uniform(-c.rotation, c.rotation)),
                                       zoom=float(zoom), shift=(float(shift[0]), float(shift[1])))
        return self._photometric(geometry.warp(np.asarray(image), matrix, size), rng)

    def _photometric(self, crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Colour, blur and JPEG changes, after the warp."""
        c = self.config
        crop = _colour(crop, c, rng)
        if rng.random() < c.blur_p:
            k = 2 * int(rng.integers(c.blur_kernel[0] // 2, c.blur_kernel[1] // 2 + 1)) + 1
            crop = cv2.GaussianBlur(crop, (k, k), 0)
        if rng.random() < c.jpeg_p:
            crop = _jpeg(crop, int(rng.integers(c.jpeg_quality[0], c.jpeg_quality[1] + 1)))
        return crop


def _occlude(
    crop: np.ndarray, placed: np.ndarray, visibility: np.ndarray,
    size_range: tuple[float, float], rng: np.random.Generator,
) -> np.ndarray:
    """Paint a random-colour or noise rectangle; visible points under it become OCCLUDED
    (their positions are still known, so they keep counting in the loss)."""
    side = crop.shape[0]
    w, h = (max(1, round(side * rng.uniform(*size_range))) for _ in range(2))
    x0, y0 = int(rng.integers(0, side - w + 1)), int(rng.integers(0, side - h + 1))
    crop = crop.copy()
    if rng.random() < 0.5:
        crop[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, 3, dtype=np.uint8)
    else:
        crop[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    px = placed * side
    under = ((px[:, 0] >= x0) & (px[:, 0] < x0 + w) & (px[:, 1] >= y0) & (px[:, 1] < y0 + h))
    visibility[under & (visibility == VISIBLE)] = OCCLUDED
    return crop


def _colour(crop: np.ndarray, c: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness, saturation, contrast and grayscale folded into one 3x4 colour matrix,
    applied in a single cv2.transform pass (saturating to uint8)."""
    brightness = rng.uniform(1.0 - c.brightness, 1.0 + c.brightness)
    saturation = rng.uniform(1.0 - c.saturation, 1.0 + c.saturation)
    contrast = rng.uniform(1.0 - c.contrast, 1.0 + c.contrast)
    grey = np.outer(np.ones(3), _LUMA)  # every channel becomes the luma
    linear = brightness * (saturation * np.eye(3) + (1.0 - saturation) * grey)
    mean_luma = _LUMA @ linear @ np.asarray(cv2.mean(crop)[:3])
    linear = contrast * linear
    offset = np.full(3, (1.0 - contrast) * mean_luma)
    if rng.random() < c.grayscale_p:
        linear, offset = grey @ linear, grey @ offset
    return cv2.transform(crop, np.hstack([linear, offset[:, None]]))


def _jpeg(crop: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG; cv2 codes BGR, so swap channels for true chroma artefacts."""
    _, data = cv2.imencode(".jpg", crop[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
