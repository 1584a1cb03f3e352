"""The prepared cache: memory-mapped arrays plus manifest.json, published atomically.

Layout of a cache folder:
    images.npy      (N, S, S, 3) uint8 crops
    points.npy      (N, K, 2) float32, crop pixels (0 where a point is absent)
    visibility.npy  (N, K) uint8, face.ABSENT / VISIBLE / OCCLUDED
    faces.jsonl     one JSON object a face: source file and line, image, split, box...
    manifest.json   written last; a folder without it is not a cache
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_keypoints.errors import BadInput
from face_keypoints.schemes import Scheme, get_scheme

MANIFEST = "manifest.json"
CACHE_VERSION = 1
ARRAYS = ("images", "points", "visibility")
HELD_OUT = ("val", "test")  # in the order "val" looks for them


def read_manifest(path: Path) -> dict | None:
    """The manifest of a cache folder, or None when the folder holds no finished cache."""
    try:
        return json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as err:
        raise BadInput(f"{path / MANIFEST}: unreadable manifest: {err}") from None


def publish(staged: Path, final: Path) -> None:
    """Move a finished cache folder into place in one rename."""
    if final.exists():
        if any(final.iterdir()):
            raise BadInput(f"{final}: exists and is not empty; choose another --output")
        final.rmdir()
    os.replace(staged, final)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class Cache:
    """A prepared cache opened for reading: arrays are memory-mapped, not loaded."""

    path: Path
    manifest: dict
    images: np.ndarray
    points: np.ndarray
    visibility: np.ndarray
    faces: list[dict]

    @property
    def scheme(self) -> Scheme:
        return get_scheme(self.manifest["scheme"])

    @property
    def size(self) -> int:
        return int(self.manifest["size"])

    def __len__(self) -> int:
        return len(self.faces)

    def indices(self, role: str) -> np.ndarray:
        """Faces for a role, so held-out faces never reach training by accident.

        "train": every face outside the held-out splits ("val" from --val-fraction, and a
        published "test"), or every face when the cache holds nothing else;
        "val": the "val" split, else the published "test" split, else every face;
        "all": every face.
        """
        splits = np.array([f["split"] for f in self.faces])
        held_out = np.isin(splits, HELD_OUT)
        if role == "train" and not held_out.all():
            return np.flatnonzero(~held_out)
        if role == "val":
            for name in HELD_OUT:
                if (splits == name).any():
                    return np.flatnonzero(splits == name)
        return np.arange(len(self.faces))


def open_cache(path: Path) -> Cache:
    """Open a cache written by `prepare`; a clear error when `path` is not one."""
    path = Path(path)
    if not path.is_dir():
        raise BadInput(f"{path}: no such cache folder (make one with face-keypoints prepare)")
    manifest = read_manifest(path)
    if manifest is None:
        raise BadInput(f"{path}: not a finished cache (no {MANIFEST}); run prepare again")
    try:
        arrays = [np.load(path / f"{name}.npy", mmap_mode="r") for name in ARRAYS]
        faces = [json.loads(line) for line in
                 (path / "faces.jsonl").read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError) as err:
        raise BadInput(f"{path}: damaged cache: {err}") from None
    images, points, visibility = arrays
    count = int(manifest.get("count", -1))
    if not (len(images) == len(points) == len(visibility) == len(faces) == count):
        raise BadInput(f"{path}: damaged cache: array lengths disagree with the manifest")
    return Cache(path, manifest, images, points, visibility, faces)
