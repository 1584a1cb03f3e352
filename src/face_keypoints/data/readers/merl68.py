"""MERL-RAV 68 points on the AFLW crops: landmarks68.csv with a per-point visibility."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from face_keypoints.data.face import ABSENT, OCCLUDED, VISIBLE, AnnotatedFace, Skip
from face_keypoints.data.readers._common import (
    ImageFinder,
    check_points,
    csv_rows,
    duplicate_skip,
    optional_float,
    pairs_to_points,
)
from face_keypoints.data.readers.aflw21 import locate_csv
from face_keypoints.errors import BadInput
from face_keypoints.schemes import IBUG68

SPLITS = ("train", "test")
_N = IBUG68.num_points
_STATES = {"0": ABSENT, "1": VISIBLE, "2": OCCLUDED}


def read(root: Path, annotations: Path | None, split: str | None) -> Iterator[AnnotatedFace | Skip]:
    path = locate_csv(root, annotations, "landmarks68.csv")
    base = root if root.is_dir() else path.parent
    find = ImageFinder([base / "images", base, path.parent.parent / "aflw21" / "images"])
    source = str(path)
    header: list[str] | None = None
    seen: dict[str, int] = {}
    for line, fields, reason in csv_rows(path):
        if fields is None:
            yield Skip(source, line, reason)
            continue
        if header is None:
            header = [f.strip() for f in fields]
            missing = {"image", "vis", "merl_split"} - set(header)
            if missing or "x0" not in header:
                lacking = sorted(missing | ({"x0"} - set(header)))
                raise BadInput(f"{path}:{line}: the header lacks the columns "
                               f"{', '.join(lacking)} (is the header line missing?)")
            continue
        if len(fields) != len(header):
            yield Skip(source, line, f"expected {len(header)} fields, found {len(fields)}")
            continue
        row = dict(zip(header, fields, strict=True))
        face_split = {"trainset": "train", "testset": "test"}.get(row["merl_split"].strip())
        if face_split is None:
            yield Skip(source, line, f"unknown merl_split {row['merl_split']!r}")
            continue
        if split is not None and face_split != split:
            continue
        duplicate = duplicate_skip(seen, row["image"].strip(), source, line)
        if duplicate:
            yield duplicate
            continue
        first = header.index("x0")
        parsed = pairs_to_points(fields[first : first + 2 * _N], _N, source, line, True)
        if isinstance(parsed, Skip):
            yield parsed
            continue
        points, visibility = parsed
        vis = row["vis"].strip()
        if len(vis) != _N or set(vis) - set(_STATES):
            yield Skip(source, line, f"vis must be {_N} characters of 0, 1, 2; found {vis!r}")
            continue
        states = np.array([_STATES[c] for c in vis], dtype=np.uint8)
        # A point with a location is visible or covered as vis says; without one, absent.
        # vis 0 means "no location", so a stray location under it is dropped.
        located = (visibility != ABSENT) & (states != ABSENT)
        visibility = np.where(located, np.where(states == OCCLUDED, OCCLUDED, VISIBLE), ABSENT)
        points[~located] = 0.0
        problem = check_points(points, visibility)
        if problem:
            yield Skip(source, line, problem)
            continue
        yield AnnotatedFace(
            image=find(row["image"].strip()),
            points=points,
            visibility=visibility.astype(np.uint8),
            scheme=IBUG68.name,
            source=source,
            line=line,
            identity=row["image"].strip(),
            split=face_split,
            yaw=optional_float(row.get("yaw_degrees", "")),
        )
