"""AFLW 21-point crops: landmarks21.csv (image, yaw, 21 x,y pairs; empty = invisible)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from face_keypoints.data.face import AnnotatedFace, Skip
from face_keypoints.data.readers._common import ImageFinder, csv_rows, optional_float, parse_row
from face_keypoints.errors import BadInput
from face_keypoints.schemes import AFLW21


def locate_csv(root: Path, annotations: Path | None, default_name: str) -> Path:
    """The annotation CSV: --annotations, else `default_name` inside --input."""
    if annotations is not None:
        return annotations
    if root.is_file():
        return root
    candidate = root / default_name
    if not candidate.exists():
        raise BadInput(f"{root}: no {default_name} in it; pass --annotations FILE")
    return candidate


def read(root: Path, annotations: Path | None, split: str | None) -> Iterator[AnnotatedFace | Skip]:
    del split  # AFLW publishes no split of these crops
    path = locate_csv(root, annotations, "landmarks21.csv")
    base = root if root.is_dir() else path.parent
    find = ImageFinder([base / "images", base, path.parent / "images"])
    yield from read_points_csv(path, find, AFLW21.name, AFLW21.num_points)


def read_points_csv(
    path: Path, find: ImageFinder, scheme: str, count: int
) -> Iterator[AnnotatedFace | Skip]:
    """Rows of `image,yaw_degrees,x,y,...`: the AFLW-21 layout."""
    source = str(path)
    seen: dict[str, int] = {}
    for line, fields, reason in csv_rows(path):
        if fields is None:
            yield Skip(source, line, reason)
            continue
        if line == 1 and fields[0].strip().lower() == "image":
            if len(fields) != 2 + 2 * count or fields[2].strip() != "x1":
                raise BadInput(f"{path}: header has {len(fields)} columns from "
                               f"{fields[2] if len(fields) > 2 else '?'}; an AFLW-21 file has "
                               f"image,yaw_degrees,x1,y1,...,x{count},y{count}")
            continue
        row = parse_row(fields, source, line, seen, 2, count, allow_empty=True)
        if isinstance(row, Skip):
            yield row
            continue
        name, points, visibility = row
        yield AnnotatedFace(
            image=find(name),
            points=points,
            visibility=visibility,
            scheme=scheme,
            source=source,
            line=line,
            identity=name,
            yaw=optional_float(fields[1]),
        )
