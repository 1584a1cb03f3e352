"""YouTube-Faces 68 keypoints: {training,test}_frames_keypoints.csv beside the frames."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from face_keypoints.data.face import AnnotatedFace, Skip
from face_keypoints.data.readers._common import ImageFinder, csv_rows, parse_row
from face_keypoints.errors import BadInput
from face_keypoints.schemes import IBUG68

SPLITS = ("train", "test")
_FOLDERS = {"train": "training", "test": "test"}
_N = IBUG68.num_points


def person(frame_name: str) -> str:
    """The person a frame shows: its name before the last _NN (frames of one video)."""
    return re.sub(r"_\d+$", "", Path(frame_name).stem)


def read(root: Path, annotations: Path | None, split: str | None) -> Iterator[AnnotatedFace | Skip]:
    if annotations is not None:
        named = next((s for s, f in _FOLDERS.items() if annotations.name.startswith(f)), None)
        if split and named and named != split:
            raise BadInput(f"{annotations}: is the {named} part, but --split {split} was asked")
        parts = [(annotations, named or split or "all")]
    else:
        parts = []
        for name in (split,) if split else SPLITS:
            csv_path = root / f"{_FOLDERS[name]}_frames_keypoints.csv"
            if csv_path.exists():
                parts.append((csv_path, name))
            elif split:
                raise BadInput(f"{root}: no {csv_path.name} in it")
        if not parts:
            raise BadInput(f"{root}: no *_frames_keypoints.csv in it; pass --annotations FILE")
    for path, part in parts:
        source = str(path)
        folder = _FOLDERS.get(part, "")
        find = ImageFinder([root / folder, path.parent / folder, root, path.parent])
        seen: dict[str, int] = {}
        for line, fields, reason in csv_rows(path):
            if fields is None:
                yield Skip(source, line, reason)
                continue
            if line == 1 and fields[0].strip() == "":
                continue  # the pandas index header
            row = parse_row(fields, source, line, seen, 1, _N, allow_empty=False)
            if isinstance(row, Skip):
                yield row
                continue
            name, points, visibility = row
            yield AnnotatedFace(
                image=find(name),
                points=points,
                visibility=visibility,
                scheme=IBUG68.name,
                source=source,
                line=line,
                identity=person(name),
                split=part,
            )
