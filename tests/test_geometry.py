"""geometry.warp on a large photo: the crop of a face reads only the blocks it needs."""

from __future__ import annotations

import cv2
import numpy as np
from conftest import FIXTURES

from face_keypoints import geometry
from face_keypoints.data.images import read_rgb

PHOTO = sorted((FIXTURES / "300w" / "afw").glob("*.jpg"))[0]


def _whole_image_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The strong-downscaling crop the long way: every block of the photo averaged."""
    factor = int(1.0 / matrix[0, 0] // 2)
    height, width = image.shape[0] // factor, image.shape[1] // factor
    small = cv2.resize(image[: height * factor, : width * factor], (width, height),
                       interpolation=cv2.INTER_AREA)
    small_to_full = np.array([[factor, 0.0, (factor - 1) / 2.0],
                              [0.0, factor, (factor - 1) / 2.0]])
    return cv2.warpAffine(small, geometry.compose(matrix, small_to_full), (size, size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def test_a_strongly_downscaled_crop_is_the_crop_of_the_whole_averaged_image() -> None:
    """Upright crops of a 2,000 px photo, inside it, across its edges and a corner: each
    the same bit for bit as averaging the whole photo first."""
    image = read_rgb(PHOTO)
    image = cv2.resize(image, (2003, round(2003 * image.shape[0] / image.shape[1])),
                       interpolation=cv2.INTER_CUBIC)
    height, width = image.shape[:2]
    for cx, cy, side, size in ((1000.0, 700.0, 900.0, 128), (40.0, 300.0, 700.0, 128),
                               (width - 10.0, height - 5.0, 1200.0, 256),
                               (width / 2, height / 2, 2.5 * width, 128)):
        matrix = geometry.crop_matrix(geometry.Square(cx, cy, side), size)
        assert side / size >= 4.0  # the averaged path
        np.testing.assert_array_equal(geometry.warp(image, matrix, size),
                                      _whole_image_crop(image, matrix, size))
