"""Pictures: landmarks and contour lines on a crop, picture grids, the CED plot.

Points come in normalised crop coordinates (pixel / crop size), the model's output
convention, so a crop can be enlarged for legibility without touching the points.
Files are written whole or not at all (fileio.write_atomic).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from face_keypoints.fileio import write_atomic
from face_keypoints.schemes import Scheme

POINT_COLOUR = (255, 64, 64)
HIDDEN_COLOUR = (255, 214, 64)  # the ring of a point the model says is hidden
LINE_COLOUR = (64, 224, 96)
TILE = 192  # a 96-160 px model crop is enlarged to this so the contours can be read
_SHIFT = 4


def draw_face(crop: np.ndarray, points: np.ndarray, scheme: Scheme,
              present: np.ndarray | None = None, size: int = TILE) -> np.ndarray:
    """A `size` px RGB copy of `crop` with `scheme`'s contours and (K, 2) normalised points.

    Absent (present False) or non-finite points are not drawn, nor any contour segment
    touching them.
    """
    image = cv2.resize(np.ascontiguousarray(crop, dtype=np.uint8), (size, size),
                       interpolation=cv2.INTER_LINEAR)
    # Pixel centres are integers in both images; cv2.resize keeps their half-pixel offset.
    xy = np.asarray(points, np.float64) * size + 0.5 * (size / crop.shape[1] - 1.0)
    shown = np.isfinite(xy).all(axis=1)  # a diverged model can predict NaN
    if present is not None:
        shown &= np.asarray(present, bool)
    draw_landmarks(image, xy, scheme, shown, thickness=max(1, size // 160),
                   radius=max(1, size // 100))
    return image


def draw_landmarks(image: np.ndarray, xy: np.ndarray, scheme: Scheme, shown: np.ndarray,
                   thickness: int, radius: float, hidden: np.ndarray | None = None) -> None:
    """Draw `scheme`'s contours and the shown points (pixel coordinates) into `image`;
    points the model says are `hidden` (occluded) are drawn as rings, so what it saw and
    what it guessed can be told apart."""
    for contour, closed in zip(scheme.contours, scheme.closed, strict=True):
        path = [*contour, contour[0]] if closed else list(contour)
        for a, b in itertools.pairwise(path):
            if shown[a] and shown[b]:
                cv2.line(image, _fixed(xy[a]), _fixed(xy[b]), LINE_COLOUR, thickness,
                         cv2.LINE_AA, _SHIFT)
    hollow = np.zeros(len(xy), bool) if hidden is None else np.asarray(hidden, bool)
    for point, empty in zip(xy[shown], hollow[shown], strict=True):
        if empty:  # a ring, wider than a point, so that it reads as one at any size
            cv2.circle(image, _fixed(point), round(max(2.5, 1.6 * radius) * (1 << _SHIFT)),
                       HIDDEN_COLOUR, max(1, thickness), cv2.LINE_AA, _SHIFT)
        else:
            cv2.circle(image, _fixed(point), round(radius * (1 << _SHIFT)), POINT_COLOUR, -1,
                       cv2.LINE_AA, _SHIFT)


def grid(tiles: Sequence[np.ndarray], columns: int = 4, gap: int = 2) -> np.ndarray:
    """Equal-sized RGB tiles laid out row by row on a white background."""
    if not tiles:
        raise ValueError("a grid needs at least one tile")
    height, width = tiles[0].shape[:2]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    canvas = np.full((rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap,
                      3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        y, x = (i // columns) * (height + gap), (i % columns) * (width + gap)
        canvas[y : y + height, x : x + width] = tile
    return canvas


def save_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB image as PNG."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    write_atomic(Path(path), lambda tmp: tmp.write_bytes(encoded.tobytes()))


def save_ced(path: Path, curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
             title: str = "") -> None:
    """Plot CED curves {label: (thresholds as fractions, fraction of faces)} as PNG."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, no display needed

    figure = Figure(figsize=(5.0, 4.0), dpi=120, layout="tight")
    axes = figure.add_subplot()
    for label, (x, y) in curves.items():
        axes.step(100.0 * np.asarray(x), y, where="post", label=label)
    axes.set_xlabel("NME (%)")
    axes.set_ylabel("fraction of faces")
    axes.set_xlim(0.0, 100.0 * max((float(np.max(x)) for x, _ in curves.values()),
                                   default=0.10))
    axes.set_ylim(0.0, 1.0)
    axes.grid(alpha=0.3)
    if curves:
        axes.legend(loc="lower right")
    if title:
        axes.set_title(title, fontsize=9)
    write_atomic(Path(path), lambda tmp: figure.savefig(tmp, format="png"))


def _fixed(point: np.ndarray) -> tuple[int, int]:
    """OpenCV's fixed-point coordinates (`_SHIFT` fractional bits): sub-pixel drawing."""
    scale = 1 << _SHIFT
    return round(float(point[0]) * scale), round(float(point[1]) * scale)
