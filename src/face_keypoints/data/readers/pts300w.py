"""300-W folders: NAME.jpg / NAME.png beside NAME.pts, searched recursively."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from face_keypoints.data.face import VISIBLE, AnnotatedFace, Skip
from face_keypoints.data.readers._common import check_points, text_lines
from face_keypoints.errors import BadInput
from face_keypoints.schemes import scheme_for_count

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def parse_pts(path: Path) -> tuple[np.ndarray, str] | Skip:
    """Points of a .pts file and its scheme name, or a Skip naming the bad line."""
    try:
        return _parse_pts(path)
    except BadInput as err:  # unreadable: one face lost, not the whole data set
        return Skip(str(path), 0, str(err).removeprefix(f"{path}: "))


def _parse_pts(path: Path) -> tuple[np.ndarray, str] | Skip:
    source = str(path)
    declared: int | None = None
    declared_line = closing_line = last_line = 0
    values: list[tuple[float, float]] = []
    state = "header"
    for line, text, reason in text_lines(path):
        last_line = line
        if text is None:
            return Skip(source, line, reason)
        text = text.strip()
        if not text:
            continue
        if state == "header":
            if text.startswith("n_points"):
                try:
                    declared = int(text.split(":", 1)[1])
                except (IndexError, ValueError):
                    return Skip(source, line, f"bad n_points line: {text!r}")
                declared_line = line
            elif text == "{":
                state = "points"
            elif not text.startswith("version"):
                return Skip(source, line, f"unexpected header line: {text!r}")
        elif state == "points":
            if text == "}":
                state = "end"
                closing_line = line
                continue
            parts = text.split()
            if len(parts) != 2:
                return Skip(source, line, f"expected 'x y', found {text!r}")
            try:
                x, y = float(parts[0]), float(parts[1])
            except ValueError:
                return Skip(source, line, f"not a number: {text!r}")
            if not (math.isfinite(x) and math.isfinite(y)):
                return Skip(source, line, f"NaN or infinite coordinate: {text!r}")
            values.append((x, y))
    if state != "end":
        if state == "points":
            return Skip(source, last_line, "no closing '}' (truncated .pts file)")
        return Skip(source, 0, "no '{' (not a .pts file)")
    if declared is not None and declared != len(values):
        return Skip(source, declared_line,
                    f"n_points says {declared} but the file has {len(values)} points")
    try:
        scheme = scheme_for_count(len(values)).name
    except KeyError:
        return Skip(source, declared_line or closing_line,
                    f"{len(values)} points: no landmark scheme has that many")
    return np.array(values, dtype=np.float32), scheme


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of what `path` leads to, or None when it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def read(root: Path, annotations: Path | None, split: str | None) -> Iterator[AnnotatedFace | Skip]:
    del split  # folders of .pts have no published split
    if annotations is not None:
        raise BadInput(f"{annotations}: the 300w format reads .pts files beside the images; "
                       "pass the folder as --input and no --annotations")
    if not root.is_dir():
        raise BadInput(f"{root}: not a folder of images and .pts files")
    # One walk of the tree: .pts files, and the images beside them by folder and stem.
    # Symlinked folders are followed, each real folder and file once: a link back up the
    # tree (`ln -s . loop`) would otherwise repeat every face without end.
    pts_files: list[Path] = []
    beside: dict[tuple[str, str], list[Path]] = {}
    folders_seen: set[tuple[int, int]] = set()
    pts_seen: set[tuple[int, int]] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        key = _identity(Path(folder))
        if key is None or key in folders_seen:
            subfolders.clear()
            continue
        folders_seen.add(key)
        for name in names:
            path = Path(folder) / name
            suffix = path.suffix.lower()
            if suffix == ".pts":
                file_key = _identity(path)
                if file_key is None or file_key not in pts_seen:
                    if file_key is not None:
                        pts_seen.add(file_key)
                    pts_files.append(path)
            elif suffix in IMAGE_SUFFIXES:
                beside.setdefault((folder, path.stem), []).append(path)
    if not pts_files:
        raise BadInput(f"{root}: no .pts files found under it")
    for pts in sorted(pts_files):
        images = sorted(beside.get((str(pts.parent), pts.stem), []))
        if not images:
            yield Skip(str(pts), 0, "no image beside it (.jpg, .jpeg, .png or .bmp)")
            continue
        if len(images) > 1:
            names = ", ".join(p.name for p in images)
            yield Skip(str(pts), 0, f"duplicate names: several images for one .pts ({names})")
            continue
        parsed = parse_pts(pts)
        if isinstance(parsed, Skip):
            yield parsed
            continue
        points, scheme = parsed
        visibility = np.full(len(points), VISIBLE, dtype=np.uint8)
        problem = check_points(points, visibility)
        if problem:
            yield Skip(str(pts), 0, problem)
            continue
        relative = pts.relative_to(root).with_suffix("")
        yield AnnotatedFace(
            image=images[0],
            points=points,
            visibility=visibility,
            scheme=scheme,
            source=str(pts),
            line=0,
            # 300-W names faces PHOTO_N: faces of one photo stay on one side of a split.
            identity=re.sub(r"_\d+$", "", str(relative)),
        )
