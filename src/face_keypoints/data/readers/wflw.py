"""WFLW as published: list_98pt_rect_attr_{train,test}.txt beside WFLW_images/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from face_keypoints.data.face import VISIBLE, AnnotatedFace, Skip
from face_keypoints.data.readers._common import ImageFinder, check_points, text_lines
from face_keypoints.errors import BadInput
from face_keypoints.schemes import WFLW98

SPLITS = ("train", "test")
ATTRIBUTES = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")
_N = WFLW98.num_points
_FIELDS = 2 * _N + 4 + len(ATTRIBUTES) + 1


def annotation_files(root: Path, split: str | None) -> list[tuple[Path, str]]:
    """The list files for `split` (both when None), searched under `root` as unpacked."""
    found = []
    for name in (split,) if split else SPLITS:
        hits = sorted(root.rglob(f"list_98pt_rect_attr_{name}.txt")) if root.is_dir() else []
        if not hits:
            if split:
                raise BadInput(f"{root}: no list_98pt_rect_attr_{name}.txt found under it")
            continue
        found.append((hits[0], name))
    if not found:
        raise BadInput(f"{root}: no WFLW annotation list (list_98pt_rect_attr_*.txt) under it")
    return found


def photo(image_name: str) -> str:
    """The photo a face comes from, the group a validation split holds out together.

    Published WFLW names are WIDER FACE photos (`<event>_<words>_<event>_<photo>.jpg`),
    and the faces of one photo share the name. Where each face was cut into its own image,
    `<photo>_<k>.jpg` (three numbers at the end), the `_<k>` is dropped so that faces of
    one photo never straddle a split.
    """
    stem, dot, _ = image_name.rpartition(".")
    base = stem if dot else image_name
    parts = base.rsplit("_", 3)
    if len(parts) == 4 and all(p.isdigit() for p in parts[1:]):
        return base.rpartition("_")[0]
    return image_name


def read(root: Path, annotations: Path | None, split: str | None) -> Iterator[AnnotatedFace | Skip]:
    if annotations is not None:
        name = annotations.name
        # list_98pt_rect_attr_test.txt, list_98pt_test_blur.txt (the test subsets), ...
        found = re.search(r"(?<![a-z])(train|test)(?![a-z])", name)
        named = found.group(1) if found else None
        if split and named and named != split:
            raise BadInput(f"{annotations}: is the {named} list, but --split {split} was asked")
        files = [(annotations, named or split or "all")]
    else:
        files = annotation_files(root, split)
    find = ImageFinder([root / "WFLW_images", root])
    for path, file_split in files:
        seen: dict[str, int] = {}
        for line, text, reason in text_lines(path):
            source = str(path)
            if text is None:
                yield Skip(source, line, reason)
                continue
            if not text.strip():
                continue
            fields = text.split()
            if len(fields) < _FIELDS:
                yield Skip(source, line, f"expected {_FIELDS} fields (196 coordinates, 4 box, "
                           f"6 attributes, image path), found {len(fields)}")
                continue
            if len(fields) > _FIELDS:
                yield Skip(source, line, f"expected {_FIELDS} fields, found {len(fields)}")
                continue
            try:
                numbers = np.array([float(v) for v in fields[: 2 * _N + 4]], dtype=np.float64)
                flags = [int(v) for v in fields[2 * _N + 4 : 2 * _N + 10]]
            except ValueError as err:
                yield Skip(source, line, f"not a number: {str(err).split(': ')[-1]}")
                continue
            if any(f not in (0, 1) for f in flags):
                yield Skip(source, line, f"attribute flags must be 0 or 1, found {flags}")
                continue
            key = " ".join(fields)
            if key in seen:
                yield Skip(source, line, f"duplicate of line {seen[key]}")
                continue
            seen[key] = line
            points = numbers[: 2 * _N].reshape(_N, 2).astype(np.float32)
            visibility = np.full(_N, VISIBLE, dtype=np.uint8)
            box = numbers[2 * _N : 2 * _N + 4]
            problem = check_points(points, visibility)
            if problem is None and not np.isfinite(box).all():
                problem = "NaN or infinite face box"
            if problem is None and (box[2] <= box[0] or box[3] <= box[1]):
                problem = f"face box has no area: {box.tolist()}"
            if problem:
                yield Skip(source, line, problem)
                continue
            image_name = fields[-1]
            yield AnnotatedFace(
                image=find(image_name),
                points=points,
                visibility=visibility,
                scheme=WFLW98.name,
                source=source,
                line=line,
                identity=photo(image_name),
                box=box,
                split=file_split,
                attributes=dict(zip(ATTRIBUTES, flags, strict=True)),
            )
