"""COCO-style keypoint JSON (what mmpose exports for WFLW, 300-W, COFW, AFLW, 300-VW)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from face_keypoints.data.face import ABSENT, OCCLUDED, VISIBLE, AnnotatedFace, Skip
from face_keypoints.data.readers._common import ImageFinder, check_points
from face_keypoints.errors import BadInput
from face_keypoints.schemes import scheme_for_count


def locate_json(root: Path, annotations: Path | None) -> Path:
    if annotations is not None:
        return annotations
    if root.is_file():
        return root
    found = sorted(root.glob("*.json")) if root.is_dir() else []
    if len(found) != 1:
        raise BadInput(f"{root}: pass --annotations FILE.json (found {len(found)} .json files)")
    return found[0]


def load_json(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: annotation file not found") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a folder, an annotation file was expected") from None
    except OSError as err:
        raise BadInput(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        # JSON's syntax is ASCII: bytes that are not UTF-8 can only sit inside strings, so
        # they are kept (as surrogates) and only the faces whose strings hold them skipped.
        data = json.loads(raw.decode("utf-8", errors="surrogateescape"))
    except json.JSONDecodeError as err:
        raise BadInput(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) \
            or not isinstance(data.get("images"), list):
        raise BadInput(f"{path}: not COCO keypoint JSON (needs 'images' and 'annotations')")
    return data


def _id(value: object) -> int | str | None:
    """A COCO id as a dictionary key: a whole number or text (None for anything else)."""
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def _has_bad_bytes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read(root: Path, annotations: Path | None, split: str | None) -> Iterator[AnnotatedFace | Skip]:
    del split  # one JSON file is one split
    path = locate_json(root, annotations)
    data = load_json(path)
    source = str(path)
    folder = root if root.is_dir() else path.parent
    find = ImageFinder([folder, folder / "images", path.parent])
    images: dict[object, dict] = {}
    conflicting: set[object] = set()  # one id listed with two different file names
    for entry in data["images"]:
        if isinstance(entry, dict) and _id(entry.get("id")) is not None \
                and "file_name" in entry:
            first = images.setdefault(entry["id"], entry)
            if first["file_name"] != entry["file_name"]:
                conflicting.add(entry["id"])
    # COCO says 2 = visible, 1 = labelled but hidden; face exports that write only 0/1
    # (mmpose's WFLW, 300-W, AFLW) mean 1 = present.
    hidden_flag = 1 if any(v == 2 for a in data["annotations"]
                           if isinstance(a, dict) and isinstance(a.get("keypoints"), list)
                           for v in a["keypoints"][2::3]) else None
    seen: set[object] = set()
    for number, ann in enumerate(data["annotations"], start=1):
        where = f"annotation {number}"
        if not isinstance(ann, dict) or not isinstance(ann.get("keypoints"), list):
            yield Skip(source, 0, f"{where}: no keypoints list")
            continue
        ann_id, image_id = _id(ann.get("id", number)), _id(ann.get("image_id"))
        if ann_id is None or image_id is None:
            yield Skip(source, 0, f"{where}: its id {ann.get('id')!r} or image_id "
                                  f"{ann.get('image_id')!r} is not a number or text")
            continue
        if ann_id in seen:
            yield Skip(source, 0, f"{where}: duplicate annotation id {ann_id}")
            continue
        seen.add(ann_id)
        image = images.get(image_id)
        if image is None:
            yield Skip(source, 0, f"{where}: image_id {image_id!r} not in images")
            continue
        if ann.get("image_id") in conflicting:
            yield Skip(source, 0, f"{where}: duplicate image id {ann.get('image_id')!r} "
                                  "names different files")
            continue
        values = ann["keypoints"]
        if len(values) % 3 or not values:
            yield Skip(source, 0, f"{where}: keypoints length {len(values)} is not 3 x K")
            continue
        try:
            triples = np.array([float(v) for v in values], dtype=np.float64).reshape(-1, 3)
            scheme = scheme_for_count(len(triples)).name
        except (TypeError, ValueError):
            yield Skip(source, 0, f"{where}: keypoints hold a value that is not a number")
            continue
        except KeyError as err:
            yield Skip(source, 0, f"{where}: {err.args[0]}")
            continue
        flag = triples[:, 2]
        visibility = np.where(flag <= 0, ABSENT,
                              np.where(flag == hidden_flag, OCCLUDED, VISIBLE)).astype(np.uint8)
        points = triples[:, :2].astype(np.float32)
        problem = check_points(points, visibility)
        if problem:
            yield Skip(source, 0, f"{where}: {problem}")
            continue
        name = str(image["file_name"])
        if _has_bad_bytes(name):
            yield Skip(source, 0, f"{where}: image file_name has bytes that are not UTF-8: "
                                  f"{name.encode('utf-8', 'surrogateescape')!r}")
            continue
        yield AnnotatedFace(
            image=find(name),
            points=points,
            visibility=visibility,
            scheme=scheme,
            source=source,
            line=0,
            identity=name,
        )
