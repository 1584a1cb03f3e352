"""The square-crop-with-margin rule and the affine maps between image and crop.

prepare, augment, evaluate and predict all crop through this file, so a face is framed
the same way at training and at run time. A crop is a square centred on the face box;
its side is the box's longer side times a scale:

* the cache keeps `CACHE_SCALE` so that rotation, scale and shift augmentation have real
  pixels to draw from;
* the model sees `MODEL_SCALE`, the frame a landmark model is trained and run on.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CACHE_SCALE = 1.75
MODEL_SCALE = 1.25


@dataclass(frozen=True)
class Square:
    """A square region of an image: centre and side in image pixels, and the roll it
    levels (`angle`, degrees, image axes y down): its crop is turned by `angle` about the
    centre so that a line at `angle` through the face comes out horizontal (an aligned
    model's framing; 0 for an upright crop)."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    def as_list(self) -> list[float]:
        """Centre and side (the angle is not part of it: prepare's crops are upright)."""
        return [round(self.cx, 3), round(self.cy, 3), round(self.side, 3)]

    def rolled(self, angle: float) -> Square:
        """The same square turned to level `angle`."""
        return Square(self.cx, self.cy, self.side, float(angle))


def landmark_box(points: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """(x0, y0, x1, y1) of the points that are present."""
    pts = points if present is None else points[present.astype(bool)]
    return np.array([*pts.min(axis=0), *pts.max(axis=0)], dtype=np.float64)


def square_around(box: np.ndarray, scale: float) -> Square:
    """The square of side scale * longer box side, centred on the box."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return Square((x0 + x1) / 2.0, (y0 + y1) / 2.0, max(x1 - x0, y1 - y0) * scale)


def crop_matrix(square: Square, size: int) -> np.ndarray:
    """2x3 affine that maps image pixels into a size x size crop of `square` (turned by
    its angle, as `model_matrix` turns a training crop)."""
    return _frame(square.cx, square.cy, size / square.side, square.angle, size)


def _frame(cx: float, cy: float, scale: float, angle: float, size: int,
           mirror: bool = False) -> np.ndarray:
    """2x3 affine taking (cx, cy) to the centre of a size x size crop, scaled by `scale`
    and rotated by -`angle` degrees about it, so that a line at `angle` through the
    centre comes out horizontal; `mirror` flips the crop's x. Training (`model_matrix`)
    and run time (`crop_matrix`) share it, so an aligned crop is turned the same way in
    both; at angle 0 it is the plain scale-and-shift, bit for bit."""
    theta = np.deg2rad(angle)
    cos, sin = np.cos(theta) * scale, np.sin(theta) * scale
    linear = np.array([[cos, sin], [-sin, cos]])
    if mirror:
        linear[0] *= -1.0
    offset = np.array([size / 2.0, size / 2.0]) - linear @ np.array([cx, cy])
    return np.hstack([linear, offset[:, None]])


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix.astype(np.float64))


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine that applies `inner` first, then `outer`."""
    a = np.vstack([outer, [0.0, 0.0, 1.0]])
    b = np.vstack([inner, [0.0, 0.0, 1.0]])
    return (a @ b)[:2]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (..., 2) points."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample `image` into a size x size crop; outside the image is black."""
    shrink = 1.0 / max(float(np.hypot(matrix[0, 0], matrix[1, 0])), 1e-9)
    if shrink >= 4.0:
        # Strong downscaling: average blocks first so the crop does not alias. Only the
        # blocks the crop reads are averaged (a face's crop of a large photo is a small
        # part of it); each block's mean is its own, so an upright crop is the same bit
        # for bit (a turned one within a grey level: warpAffine rounds its sample
        # positions to 1/32 px from the shifted matrix).
        factor = int(shrink // 2)
        height, width = image.shape[0] // factor, image.shape[1] // factor
        x0, y0, x1, y1 = _blocks_read(matrix, size, factor, width, height)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            image = cv2.resize(image[y0 * factor: y1 * factor, x0 * factor: x1 * factor],
                               (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
            # Pixel centre i of the small image lies at factor * i + (factor - 1) / 2.
            small_to_full = np.array([[factor, 0.0, factor * x0 + (factor - 1) / 2.0],
                                      [0.0, factor, factor * y0 + (factor - 1) / 2.0]])
            matrix = compose(matrix, small_to_full)
        elif height >= 2 and width >= 2:  # the crop lies (almost) wholly off the image
            image = cv2.resize(image[: height * factor, : width * factor], (width, height),
                               interpolation=cv2.INTER_AREA)
            small_to_full = np.array([[factor, 0.0, (factor - 1) / 2.0],
                                      [0.0, factor, (factor - 1) / 2.0]])
            matrix = compose(matrix, small_to_full)
    return cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def _blocks_read(matrix: np.ndarray, size: int, factor: int, width: int,
                 height: int) -> tuple[int, int, int, int]:
    """The blocks (x0, y0, x1, y1, end exclusive) of a `factor`-averaged image of
    width x height blocks that a size x size crop through `matrix` samples, with a block
    of margin for bilinear interpolation."""
    centres = np.array([[0.0, 0.0], [size - 1.0, 0.0], [0.0, size - 1.0],
                        [size - 1.0, size - 1.0]])
    corners = (transform_points(centres, invert(matrix)) - (factor - 1) / 2.0) / factor
    low = np.floor(corners.min(axis=0)).astype(int) - 1
    high = np.ceil(corners.max(axis=0)).astype(int) + 2
    return (max(int(low[0]), 0), max(int(low[1]), 0),
            min(int(high[0]), width), min(int(high[1]), height))


def crop_face(
    image: np.ndarray, box: np.ndarray, size: int, scale: float
) -> tuple[np.ndarray, np.ndarray, Square]:
    """Crop the square around `box`; returns the crop, the image->crop affine, the square."""
    square = square_around(box, scale)
    matrix = crop_matrix(square, size)
    return warp(image, matrix, size), matrix, square


def model_square(cache_size: int) -> Square:
    """The model's frame inside a cache crop: same centre, MODEL_SCALE / CACHE_SCALE of it."""
    half = cache_size / 2.0
    return Square(half, half, cache_size * MODEL_SCALE / CACHE_SCALE)


def model_matrix(
    cache_size: int,
    input_size: int,
    angle: float = 0.0,
    zoom: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
    mirror: bool = False,
) -> np.ndarray:
    """2x3 affine from cache-crop pixels to model-input pixels.

    With the defaults it is the model frame (`model_square`) resized to `input_size`;
    augmentation rotates it by `angle` degrees about its centre, zooms by `zoom` (>1 makes
    the face larger), moves its centre by `shift` x frame side, and mirrors it. Image and
    points go through the same matrix, so they cannot disagree; a mirrored sample's points
    must then be permuted with the scheme's flip order.
    """
    frame = model_square(cache_size)
    return _frame(frame.cx + shift[0] * frame.side, frame.cy + shift[1] * frame.side,
                  zoom * input_size / frame.side, angle, input_size, mirror)
