"""Parsing helpers shared by the readers: text lines, numbers, point checks."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from face_keypoints.data.face import ABSENT, VISIBLE, Skip
from face_keypoints.errors import BadInput


def text_lines(path: Path) -> Iterator[tuple[int, str | None, str]]:
    """(line number, text or None, reason) for each line; None marks non-UTF-8 bytes."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: annotation file not found") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a folder, an annotation file was expected") from None
    except OSError as err:
        raise BadInput(f"{path}: cannot read: {err.strerror or err}") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for number, chunk in enumerate(raw.splitlines(), start=1):
        try:
            yield number, chunk.decode("utf-8"), ""
        except UnicodeDecodeError as err:
            yield number, None, f"bytes that are not UTF-8 at column {err.start + 1}"


def check_points(points: np.ndarray, visibility: np.ndarray) -> str | None:
    """Reason the points are unusable, or None."""
    present = visibility != ABSENT
    if not np.isfinite(points[present]).all():
        return "NaN or infinite coordinate"
    if present.sum() < 3:
        return f"only {int(present.sum())} points have a location"
    box = points[present]
    if (box.max(axis=0) - box.min(axis=0)).min() < 1.0:
        return "points have no extent (all on one line or one spot)"
    return None


def pairs_to_points(
    fields: list[str], count: int, source: str, line: int, allow_empty: bool
) -> tuple[np.ndarray, np.ndarray] | Skip:
    """Parse `count` x,y pairs; an empty pair (when allowed) is an absent point."""
    if len(fields) < 2 * count:
        return Skip(source, line, f"expected {2 * count} coordinates, found {len(fields)}")
    points = np.zeros((count, 2), dtype=np.float32)
    visibility = np.full(count, VISIBLE, dtype=np.uint8)
    for i in range(count):
        xs, ys = fields[2 * i].strip(), fields[2 * i + 1].strip()
        if allow_empty and xs == "" and ys == "":
            visibility[i] = ABSENT
            continue
        try:
            points[i] = (float(xs), float(ys))
        except ValueError:
            return Skip(source, line, f"point {i}: not a number: {xs!r}, {ys!r}")
    return points, visibility


class ImageFinder:
    """Resolves an annotation's image name against the folders it may live in."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = [f for f in folders if f.is_dir()] or folders[:1]

    def __call__(self, name: str) -> Path:
        for folder in self.folders:
            candidate = folder / name
            if candidate.exists():
                return candidate
        return self.folders[0] / name


def duplicate_skip(seen: dict[str, int], key: str, source: str, line: int) -> Skip | None:
    """A Skip for the second appearance of `key`, remembering the first."""
    if key in seen:
        return Skip(source, line, f"duplicate of line {seen[key]} ({key})")
    seen[key] = line
    return None


def parse_row(fields: list[str], source: str, line: int, seen: dict[str, int],
              first: int, count: int, allow_empty: bool
              ) -> tuple[str, np.ndarray, np.ndarray] | Skip:
    """A one-face CSV row `image, ..., x, y, ...` (coordinates from column `first`):
    its image name, points and visibility, or the Skip that says what is wrong."""
    expected = first + 2 * count
    if len(fields) != expected:
        return Skip(source, line, f"expected {expected} fields, found {len(fields)}")
    name = fields[0].strip()
    duplicate = duplicate_skip(seen, name, source, line)
    if duplicate:
        return duplicate
    parsed = pairs_to_points(fields[first:expected], count, source, line, allow_empty)
    if isinstance(parsed, Skip):
        return parsed
    problem = check_points(*parsed)
    return Skip(source, line, problem) if problem else (name, *parsed)


def csv_rows(path: Path) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line number, fields or None, reason) for each non-empty CSV line, header included.

    A first line that is one field holding ';' or a tab is a file of another separator:
    BadInput, rather than every row skipped for its field count.
    """
    first = True
    for line, text, reason in text_lines(path):
        if text is None:
            yield line, None, reason
        elif text.strip():
            fields = next(csv.reader([text]))
            if first and len(fields) == 1:
                for name, separator in (("';'", ";"), ("tabs", "\t")):
                    if separator in text:
                        raise BadInput(f"{path}:{line}: fields separated by {name}; this "
                                       "format's files are comma-separated")
            first = False
            yield line, fields, ""


def optional_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
