"""The `prepare` verb: a published landmark data set in, a verified training cache out.

Faces are read by the format's reader, cropped square around their box with the cache
margin (geometry.CACHE_SCALE) and resized to `size`. Work is done in chunks that are
saved as they finish, beside the output, so a killed run picks up where it stopped; the
finished cache is moved into place in one rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from face_keypoints import geometry
from face_keypoints.data import cache as cache_io
from face_keypoints.data.face import ABSENT, AnnotatedFace, Skip
from face_keypoints.data.images import ImageError, read_rgb
from face_keypoints.data.readers import FORMATS
from face_keypoints.errors import BadInput, FaceKeypointsError
from face_keypoints.fileio import owned, write_atomic, write_json_atomic
from face_keypoints.schemes import get_scheme

CHUNK = 256
MIN_SIZE = 64
# Crops are kept in memory a chunk at a time (CHUNK x size^2 x 3 bytes: 200 MB at 512 px);
# the largest model input is 224 px, so bigger crops would only cost memory and disk.
MAX_SIZE = 512


class StrictFailure(FaceKeypointsError):
    code = 2


@dataclass
class PrepareResult:
    output: Path
    count: int
    skipped: list[str]
    splits: dict[str, int]
    resumed: bool = False
    already_done: bool = False


def assign_splits(faces: list[AnnotatedFace], val_fraction: float) -> None:
    """Hold out `val_fraction` of the identities (never single rows) as split "val".

    Identities are ordered by a hash of their name, so the choice is stable across runs
    and does not depend on the order of the annotation file. Faces of a published test
    split stay "test": a validation split is carved from training faces only.
    """
    pool = [f for f in faces if f.split != "test"]
    identities = sorted({f.identity for f in pool},
                        key=lambda s: hashlib.sha1(s.encode("utf-8", "surrogatepass"))
                        .hexdigest())
    n_val = round(val_fraction * len(identities))
    if val_fraction > 0 and len(identities) >= 2:
        n_val = min(max(n_val, 1), len(identities) - 1)
    held_out = set(identities[:n_val])
    for face in pool:
        face.split = "val" if face.identity in held_out else "train"


def _inside(box: np.ndarray, width: int, height: int) -> float:
    """Fraction of the box's area that lies inside the image."""
    x0, y0, x1, y1 = box
    area = max(x1 - x0, 1e-6) * max(y1 - y0, 1e-6)
    ix = max(0.0, min(x1, width) - max(x0, 0.0))
    iy = max(0.0, min(y1, height) - max(y0, 0.0))
    return ix * iy / area


class _Cropper:
    """Loads each image once (faces of one photo are adjacent) and crops faces."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._path: Path | None = None
        self._image: np.ndarray | ImageError | None = None

    def __call__(self, face: AnnotatedFace) -> tuple[np.ndarray, np.ndarray, dict] | str:
        if face.image != self._path:
            self._path = face.image
            try:
                self._image = read_rgb(face.image)
            except ImageError as err:
                self._image = err
        if isinstance(self._image, ImageError):
            return f"{face.image}: {self._image}"
        image = self._image
        height, width = image.shape[:2]
        present = face.visibility != ABSENT
        box = face.box if face.box is not None else geometry.landmark_box(face.points, present)
        if _inside(box, width, height) < 0.5:
            return (f"face box {np.round(box, 1).tolist()} lies mostly outside the "
                    f"{width}x{height} image")
        marks = geometry.landmark_box(face.points, present)
        if face.box is not None and _inside(marks, width, height) < 0.5:
            return (f"points {np.round(marks, 1).tolist()} lie mostly outside the "
                    f"{width}x{height} image, though the face box is inside")
        crop, matrix, square = geometry.crop_face(image, box, self.size, geometry.CACHE_SCALE)
        points = np.where(present[:, None], geometry.transform_points(face.points, matrix), 0.0)
        meta = {
            "image": str(face.image),
            "source": face.source,
            "line": face.line,
            "identity": face.identity,
            "split": face.split,
            "image_size": [width, height],
            "box": [round(float(v), 3) for v in box],
            "crop": square.as_list(),
            "yaw": face.yaw,
            "attributes": face.attributes,
        }
        return crop, points.astype(np.float32), meta


def _save_chunk(path: Path, crops, points, visibility, metas, skips) -> None:
    meta = np.array(json.dumps({"faces": metas, "skips": skips}))
    write_atomic(path, lambda tmp: np.savez(tmp, images=crops, points=points,
                                            visibility=visibility, meta=meta))


def _saved_skips(path: Path) -> list[str] | None:
    """The skip lines of a finished chunk, or None when it is missing or unreadable."""
    try:
        with np.load(path) as saved:
            # Reading every array checks the chunk is whole before it is trusted.
            whole = [saved[name].shape for name in ("images", "points", "visibility")]
            skips = list(json.loads(str(saved["meta"]))["skips"])
        return skips if whole else None
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        path.unlink(missing_ok=True)
        return None


def _fingerprint(settings: dict, items: list[AnnotatedFace | Skip]) -> str:
    """What the cache is made from: settings plus every face's origin, points and box,
    so an annotation edited between a killed run and its rerun is not mixed in."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for item in items:
        key = (item.source, item.line, str(getattr(item, "image", "")),
               getattr(item, "split", ""), getattr(item, "reason", ""))
        digest.update(repr(key).encode())
        if isinstance(item, AnnotatedFace):
            digest.update(np.ascontiguousarray(item.points, dtype=np.float32).tobytes())
            digest.update(np.ascontiguousarray(item.visibility, dtype=np.uint8).tobytes())
            if item.box is not None:
                digest.update(np.asarray(item.box, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _is_within(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def prepare(
    format: str,
    input: str | Path,
    output: str | Path,
    annotations: str | Path | None = None,
    size: int = 160,
    split: str | None = None,
    val_fraction: float = 0.0,
    strict: bool = False,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
) -> PrepareResult:
    """Read a data set in `format` and write a training cache to `output`.

    Skipped faces are reported through `log` (stderr by default) as they are found;
    with `strict`, any skip fails the run (StrictFailure, exit code 2) and no cache
    is written.
    """
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    # abspath: "." or "out/.." have no name to put the staging folder beside.
    source, target = Path(input), Path(os.path.abspath(output))
    ann = Path(annotations) if annotations is not None else None
    if format not in FORMATS:
        raise BadInput(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")
    reader, splits = FORMATS[format]
    if split is not None and split not in splits:
        offered = ", ".join(splits) if splits else "none (it has no published split)"
        raise BadInput(f"--split {split}: format {format} offers {offered}")
    if not source.exists():
        raise BadInput(f"{source}: no such file or folder")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise BadInput(f"--size {size}: must be {MIN_SIZE} to {MAX_SIZE} px (the model's "
                       "input is at most 224 px)")
    if not 0.0 <= val_fraction < 1.0:
        raise BadInput(f"--val-fraction {val_fraction}: must be in [0, 1)")
    if source.is_dir() and _is_within(target, source):
        raise BadInput(f"{output}: lies inside --input {source}; nothing is written there")

    items = list(reader(source, ann, split))
    faces = [i for i in items if isinstance(i, AnnotatedFace)]
    if not faces:  # nothing to crop: report why, and leave nothing behind
        for item in items:
            log(str(item))
        raise BadInput(f"{source}: no usable face (skipped {len(items)})")
    schemes = sorted({f.scheme for f in faces})
    if len(schemes) > 1:
        raise BadInput(f"{source}: faces of several schemes ({', '.join(schemes)}); "
                       "prepare each scheme into its own cache")
    if val_fraction > 0:
        assign_splits(faces, val_fraction)
    settings = {
        "cache_version": cache_io.CACHE_VERSION, "format": format,
        "input": str(source.resolve()), "annotations": str(ann.resolve()) if ann else None,
        "size": size, "split": split, "val_fraction": val_fraction,
        "crop_scale": geometry.CACHE_SCALE,
    }
    fingerprint = _fingerprint(settings, items)
    staging = target.with_name(f".{target.name}.partial")
    try:
        with owned(target):
            return _write(items, schemes, staging, target, size, format, source, settings,
                          fingerprint, strict, log, progress)
    except OSError as err:
        where = err.filename or target
        raise BadInput(f"{where}: cannot write the cache: {err.strerror or err}") from None


def _write(items: list[AnnotatedFace | Skip], schemes: list[str], staging: Path, target: Path,
           size: int, format: str, source: Path, settings: dict, fingerprint: str,
           strict: bool, log: Callable[[str], None], progress: bool) -> PrepareResult:
    """Crop the faces into chunks beside `target`, then publish the cache (resumable)."""
    done = _already_prepared(target, staging, fingerprint, strict, log)
    if done is not None:
        return done
    job = staging / "job.json"
    resumed = False
    if staging.exists():
        try:
            resumed = json.loads(job.read_text())["fingerprint"] == fingerprint
        except (OSError, ValueError, KeyError):
            resumed = False
        if not resumed:
            cache_io.remove_tree(staging)
    (staging / "chunks").mkdir(parents=True, exist_ok=True)
    write_json_atomic(job, {"fingerprint": fingerprint, "settings": settings})

    crop = _Cropper(size)
    n_chunks = (len(items) + CHUNK - 1) // CHUNK
    chunk_paths = [staging / "chunks" / f"{i:06d}.npz" for i in range(n_chunks)]
    skipped: list[str] = []
    with tqdm(total=len(items), unit="face", desc="prepare", disable=None if progress else True,
              file=sys.stderr) as bar:
        for index, path in enumerate(chunk_paths):
            chunk = items[index * CHUNK : (index + 1) * CHUNK]
            saved_skips = _saved_skips(path)
            if saved_skips is not None:
                for line in saved_skips:
                    log(line)
                skipped.extend(saved_skips)
                bar.update(len(chunk))
                continue
            crops, points, visibility, metas, skips = [], [], [], [], []
            for item in chunk:
                result = crop(item) if isinstance(item, AnnotatedFace) else str(item)
                if isinstance(result, str):
                    if isinstance(item, AnnotatedFace):
                        where = f"{item.source}:{item.line}" if item.line else item.source
                        result = f"skipped {where}: {result}"
                    skips.append(result)
                    log(result)
                else:
                    crops.append(result[0])
                    points.append(result[1])
                    visibility.append(item.visibility)
                    metas.append(result[2] | {"scheme": item.scheme})
                bar.update(1)
            k = get_scheme(schemes[0]).num_points if schemes else 0
            _save_chunk(
                path,
                np.array(crops, dtype=np.uint8).reshape(-1, size, size, 3),
                np.array(points, dtype=np.float32).reshape(-1, k, 2),
                np.array(visibility, dtype=np.uint8).reshape(-1, k),
                metas,
                skips,
            )
            skipped.extend(skips)

    if strict and skipped:
        cache_io.remove_tree(staging)
        raise StrictFailure(f"--strict: {len(skipped)} face(s) skipped; no cache written")
    count = _assemble(staging, chunk_paths, target, size, schemes, format, source, settings,
                      fingerprint, skipped)
    manifest = cache_io.read_manifest(target) or {}
    return PrepareResult(target, count, skipped, manifest.get("splits", {}), resumed=resumed)


def _already_prepared(target: Path, staging: Path, fingerprint: str, strict: bool,
                      log: Callable[[str], None]) -> PrepareResult | None:
    """The result of the same command run before into `target` (its skips told again), or
    None when `target` is free; BadInput when it holds something else."""
    done = cache_io.read_manifest(target)
    if done is not None:
        if done.get("fingerprint") != fingerprint:
            raise BadInput(f"{target}: already holds a different cache; choose another "
                           "--output or remove it")
        # A run killed after publishing may have left its staging folder behind.
        cache_io.remove_tree(staging)
        skipped = list(done.get("skipped", []))
        for line in skipped:
            log(line)
        if strict and skipped:
            raise StrictFailure(f"--strict: {len(skipped)} face(s) skipped (the cache in "
                                f"{target} was prepared without --strict)")
        return PrepareResult(target, done["count"], skipped, done.get("splits", {}),
                             already_done=True)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BadInput(f"{target}: exists and is not a cache; choose another --output")
    return None


def _fsync_files(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def _assemble(staging: Path, chunk_paths: list[Path], target: Path, size: int,
              schemes: list[str], format: str, source: Path, settings: dict,
              fingerprint: str, skipped: list[str]) -> int:
    """Join the chunks into one cache folder and rename it into place."""
    if not schemes:
        cache_io.remove_tree(staging)
        raise BadInput(f"{source}: no usable face (skipped {len(skipped)})")
    scheme = get_scheme(schemes[0])
    counts = []
    for path in chunk_paths:
        with np.load(path) as saved:
            counts.append(len(saved["points"]))
    total = sum(counts)
    if total == 0:
        cache_io.remove_tree(staging)
        raise BadInput(f"{source}: no usable face (skipped {len(skipped)})")
    folder = staging / "cache"
    cache_io.remove_tree(folder)
    folder.mkdir()
    images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8,
                                       shape=(total, size, size, 3))
    points = np.zeros((total, scheme.num_points, 2), dtype=np.float32)
    visibility = np.zeros((total, scheme.num_points), dtype=np.uint8)
    metas: list[dict] = []
    start = 0
    for path, n in zip(chunk_paths, counts, strict=True):
        with np.load(path) as saved:
            images[start : start + n] = saved["images"]
            points[start : start + n] = saved["points"]
            visibility[start : start + n] = saved["visibility"]
            metas.extend(json.loads(str(saved["meta"]))["faces"])
        start += n
    images.flush()
    del images
    np.save(folder / "points.npy", points)
    np.save(folder / "visibility.npy", visibility)
    with open(folder / "faces.jsonl", "w", encoding="utf-8") as handle:
        for meta in metas:
            handle.write(json.dumps(meta) + "\n")
    splits: dict[str, int] = {}
    for meta in metas:
        splits[meta["split"]] = splits.get(meta["split"], 0) + 1
    manifest = {
        "scheme": scheme.name,
        "count": total,
        "size": size,
        "format": format,
        "source": str(source.resolve()),
        "crop": {"rule": "square around the face box, side = scale x longer box side",
                 "box": "WFLW rect" if format == "wflw" else "landmark box",
                 "scale": geometry.CACHE_SCALE},
        "points": "crop pixels",
        "num_points": scheme.num_points,
        "splits": splits,
        "skipped": skipped,
        "settings": settings,
        "fingerprint": fingerprint,
        "cache_version": cache_io.CACHE_VERSION,
    }
    _fsync_files(folder)  # the arrays reach the disk before the manifest says they are there
    write_json_atomic(folder / cache_io.MANIFEST, manifest)
    cache_io.publish(folder, target)
    cache_io.remove_tree(staging)
    return total
