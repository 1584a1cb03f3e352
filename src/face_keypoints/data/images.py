"""Reading any image a user has into 8-bit RGB, or a one-line reason why not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = 20000 * 20000


class ImageError(Exception):
    """An image that cannot be read; the message is the reason, for a Skip or an error."""


def _to_rgb8(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        wide = np.asarray(image, dtype=np.float64)
        # 16-bit modes span 0-65535 however dark the picture; only the 32-bit "I" mode
        # (old Pillow's 16-bit PNGs, some TIFFs) has to guess its range from the values.
        sixteen = image.mode.startswith("I;16") or wide.max(initial=0) > 255
        top = 65535.0 if sixteen else 255.0
        gray = np.clip(wide / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "F":
        wide = np.asarray(image, dtype=np.float64)
        top = 1.0 if wide.max(initial=0) <= 1.0 else 255.0
        gray = np.clip(wide / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def read_rgb(path: Path, *, exif_rotate: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 RGB; grayscale, palette, RGBA and 16-bit images are converted.

    `exif_rotate` turns camera photos upright; annotation data sets are labelled on the
    stored pixels, so readers of data sets leave it off.
    """
    try:
        if path.stat().st_size == 0:
            raise ImageError("empty image file (0 bytes)")
    except FileNotFoundError:
        raise ImageError(f"image file not found: {path}") from None
    except OSError as err:
        raise ImageError(f"cannot read image file: {err.strerror or err}") from None
    try:
        with Image.open(path) as image:
            image.load()
            if exif_rotate:  # in place: no copy of a photo that is upright already
                ImageOps.exif_transpose(image, in_place=True)
            array = _to_rgb8(image)
    except UnidentifiedImageError:
        raise ImageError("not an image file, or an image format that cannot be read") from None
    except (OSError, SyntaxError, ValueError) as err:
        text = str(err)
        if "truncated" in text:
            text = "truncated image file"
        raise ImageError(f"corrupt image: {text}") from None
    except Image.DecompressionBombError:
        raise ImageError("image too large to decode") from None
    if array.ndim != 3 or array.shape[0] < 2 or array.shape[1] < 2:
        raise ImageError(f"image has an unusable shape {array.shape}")
    return np.ascontiguousarray(array)
