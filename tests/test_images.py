"""read_rgb on real photos: pixels as stored, or turned upright by a camera's EXIF tag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import FIXTURES
from PIL import Image

from face_keypoints.data.images import read_rgb

PHOTO = sorted((FIXTURES / "300w" / "afw").glob("*.jpg"))[0]
ORIENTATION = 0x0112  # the EXIF tag; 6 means "turn 90 degrees clockwise to view"


def _with_orientation(path: Path, value: int) -> np.ndarray:
    """Saves the fixture photo as a PNG (lossless) with an EXIF orientation; its pixels."""
    with Image.open(PHOTO) as image:
        stored = image.convert("RGB")
    exif = Image.Exif()
    exif[ORIENTATION] = value
    stored.save(path, exif=exif)
    return np.asarray(stored)


def test_exif_rotate_turns_a_camera_photo_upright(tmp_path: Path) -> None:
    stored = _with_orientation(tmp_path / "turned.png", 6)
    upright = read_rgb(tmp_path / "turned.png", exif_rotate=True)
    np.testing.assert_array_equal(upright, np.rot90(stored, k=-1))
    assert upright.flags["C_CONTIGUOUS"] and upright.dtype == np.uint8


def test_without_exif_rotate_or_a_tag_the_stored_pixels_come_back(tmp_path: Path) -> None:
    stored = _with_orientation(tmp_path / "turned.png", 6)
    np.testing.assert_array_equal(read_rgb(tmp_path / "turned.png"), stored)
    plain = _with_orientation(tmp_path / "upright.png", 1)
    np.testing.assert_array_equal(read_rgb(tmp_path / "upright.png", exif_rotate=True), plain)
    with Image.open(PHOTO) as image:
        np.testing.assert_array_equal(read_rgb(PHOTO, exif_rotate=True),
                                      np.asarray(image.convert("RGB")))
