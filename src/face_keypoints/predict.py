"""The `predict` verb: landmarks on photos, videos and a camera, as JSON and annotated copies.

Photos go through FaceLandmarker.detect; videos and the camera through
FaceLandmarker.track (landmarks of one frame place the next crop, One Euro smoothing).
Every input is processed on its own: one that fails is reported in one line and the rest
go on. All output names are settled before anything runs, so an --output that would
overwrite an input is refused before a file is touched.
"""

from __future__ import annotations

import errno
import itertools
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from face_keypoints import draw
from face_keypoints.errors import BadInput
from face_keypoints.fileio import write_atomic, write_json_atomic, write_text_atomic
from face_keypoints.resolve import resolve_model, with_precision
from face_keypoints.runtime.api import Face, FaceLandmarker, as_rgb, check_threads
from face_keypoints.runtime.cpu_precision import fastest
from face_keypoints.runtime.smoothing import OneEuroParams
from face_keypoints.runtime.tracker import MIN_TRACKING_CONFIDENCE
from face_keypoints.schemes import get_scheme
from face_keypoints.video import VideoError, VideoReader, VideoWriter, check_video

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp",
                            ".gif", ".ppm", ".pgm", ".pbm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg",
                            ".mpeg", ".wmv", ".flv"})
# Errors of an output folder that no later input can get past.
OUTPUT_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
# fileio.write_atomic's temporary files (mkstemp: 8 random characters) for our outputs.
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp\.(mp4|png|json)")


@dataclass(frozen=True)
class Item:
    """One input: a file (image or video) or a camera, and its output name in DIR."""

    source: Path | int
    kind: str  # "image", "video" or "camera"
    name: str  # output path in DIR without suffix, e.g. "photo" or "holiday/photo"

    @property
    def label(self) -> str:
        return f"camera {self.source}" if self.kind == "camera" else str(self.source)

    def outputs(self, directory: Path) -> list[Path]:
        picture = ".png" if self.kind == "image" else ".mp4"
        return [directory / f"{self.name}{picture}", directory / f"{self.name}.json"]


@dataclass
class PredictResult:
    """What `predict` did: one JSON object per input that worked, one line per failure."""

    results: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. why a video is not H.264


def predict(inputs: Sequence[str | Path] = (), model: str | Path | None = None,
            output: str | Path | None = None, threads: int | None = 1,
            camera: int | None = None, max_faces: int | None = None, smoothing: bool = True,
            min_cutoff: float = OneEuroParams.min_cutoff, beta: float = OneEuroParams.beta,
            scheme: str | None = None, precision: str | None = None,
            min_tracking_confidence: float = MIN_TRACKING_CONFIDENCE,
            on_result: Callable[[dict], None] | None = None,
            on_failure: Callable[[str], None] | None = None) -> PredictResult:
    """Landmarks of every face in `inputs` (image files, folders, videos) and `camera`.

    With `output`, writes DIR/<name>.png (photos) or .mp4 (videos, camera) with the points
    and contours drawn, and DIR/<name>.json. `on_result` gets each input's JSON object as
    soon as it is done, `on_failure` each failing input's line ("INPUT: reason").
    `model`: a .tflite (with its model.json) or .keras; None or `default` is the shipped
    model in the precision fastest on this CPU among those within 1 % of fp32's NME
    (timed at first use, cached per machine; each record's "precision" says which ran),
    `default:PRECISION` one file of it (`precision` says the same: `precision="int8"`).
    `scheme` picks the head of a model with several (default ibug68; each record's
    "scheme" says which). Faces carry "presence" and per-point "visible" where the model
    has those outputs (null otherwise), and "roll", the angle of the crop that read the
    points (an aligned model's crops turn by the face's roll); in videos, a tracked face
    is kept while its presence stays at least `min_tracking_confidence`.
    Videos are H.264 where imageio-ffmpeg is installed (the record's "codec"), read back
    before they replace anything. Temporary files a killed run left in `output` are
    removed first.
    """
    if not inputs and camera is None:
        raise BadInput("nothing to do: give image files, folders or videos, or --camera N")
    check_threads(threads)
    # A bad `default:...` fails before any input; the CPU's precision is timed once here.
    resolved = resolve_model(with_precision(model, precision),
                             choose=partial(fastest, threads=threads))
    directory = None if output is None else Path(output)
    if directory is not None and directory.exists() and not directory.is_dir():
        raise BadInput(f"--output {directory} is a file, not a folder")
    result = PredictResult()

    def fail(item_label: str, reason: str) -> None:
        line = f"{item_label}: {reason}"
        result.failures.append(line)
        if on_failure:
            on_failure(line)

    items = _plan(inputs, camera, directory, fail)
    if directory is not None:
        _refuse_overwrite(items, inputs, directory)
        _remove_temporaries(directory)
    if not items:
        return result
    landmarker = FaceLandmarker(resolved, threads=threads, max_faces=max_faces,
                                smoothing=smoothing, min_cutoff=min_cutoff, beta=beta,
                                scheme=scheme, min_tracking_confidence=min_tracking_confidence)
    _run_items(items, landmarker, directory, threads, result, fail, on_result)
    return result


def _run_items(items: list[Item], landmarker: FaceLandmarker, directory: Path | None,
               threads: int | None, result: PredictResult, fail: Callable[[str, str], None],
               on_result: Callable[[dict], None] | None) -> None:
    """Each input in turn; one that fails is reported and the rest go on, unless the
    output folder itself cannot take more (a full or read-only disk): that is said once,
    with the inputs it leaves undone, not once per input."""
    for done, item in enumerate(items):
        try:
            if item.kind == "image":
                record = _image(item, landmarker, directory)
            else:
                record, problem, note = _stream(item, landmarker, directory, threads)
                if problem:
                    fail(item.label, problem)
                if note and note not in result.notes:
                    result.notes.append(note)
        except (BadInput, VideoError) as err:
            fail(item.label, str(err).removeprefix(f"{item.source}: "))
            continue
        except OSError as err:  # the output could not be written (full disk, permissions)
            where = item.outputs(directory)[0] if directory is not None else err.filename
            fail(item.label, f"cannot write {where}: {err.strerror or err}")
            left = len(items) - done - 1
            if err.errno in OUTPUT_FULL and left:
                fail(f"--output {directory}", f"{err.strerror or err}; stopped, {left} "
                     f"input{'' if left == 1 else 's'} after {item.label} not processed")
                return
            continue
        if directory is not None:
            result.written.extend(item.outputs(directory))
        result.results.append(record)
        if on_result:
            on_result(record)


def _plan(inputs: Sequence[str | Path], camera: int | None, directory: Path | None,
          fail: Callable[[str, str], None]) -> list[Item]:
    """Expand folders into their images and videos and give every input a distinct name."""
    found: list[tuple[Path | int, str, str]] = []  # (source, kind, name)
    skip = None if directory is None else directory.resolve()
    for given in map(Path, inputs):
        if given.is_dir():
            named = [p for p in sorted(given.rglob("*")) if _wanted(p, given, skip)]
            files = [p for p in named if p.is_file()]
            for path in named:
                if not path.is_file():
                    fail(str(path), "not a regular file (a FIFO, socket or device)")
            if not named:
                fail(str(given), "no images or videos in this folder")
            for path in files:
                relative = path.relative_to(given).with_suffix("")
                found.append((path, _kind(path), relative.as_posix()))
        elif given.is_file():
            found.append((given, _kind(given), given.stem))
        elif given.exists():
            fail(str(given), "not a regular file (a FIFO, socket or device)")
        else:
            fail(str(given), "no such file or folder")
    if camera is not None:
        found.append((camera, "camera", f"camera{camera}"))
    items, used = [], set()
    for source, kind, name in found:
        unique = name
        for n in itertools.count(2):
            if unique.lower() not in used:
                break
            unique = f"{name}_{n}"
        used.add(unique.lower())
        items.append(Item(source, kind, unique))
    return items


def _wanted(path: Path, folder: Path, skip: Path | None) -> bool:
    """A name of an image or video in a folder (a FIFO so named too, which is reported);
    hidden files are not, nor files in an --output folder inside it (an earlier run's
    results)."""
    if path.is_dir() or path.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        return False
    if any(part.startswith(".") for part in path.relative_to(folder).parts):
        return False
    return (skip is None or skip == folder.resolve()
            or not path.resolve().is_relative_to(skip))


def _kind(path: Path) -> str:
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"


def _refuse_overwrite(items: list[Item], inputs: Sequence[str | Path], directory: Path) -> None:
    """BadInput when an output file would replace an input file."""
    sources = {Path(p).resolve() for p in inputs}
    sources |= {item.source.resolve() for item in items if isinstance(item.source, Path)}
    for item in items:
        for path in item.outputs(directory):
            if path.resolve() in sources:
                raise BadInput(f"--output {directory} would overwrite the input {path}; "
                               "choose another folder")


def _remove_temporaries(directory: Path) -> None:
    """Delete the hidden temporary files that a killed run left beside its outputs (a
    run in progress into the same folder would lose its own)."""
    if not directory.is_dir():
        return
    for path in directory.rglob(".*.tmp.*"):
        if _TEMPORARY.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)


# The annotated copy's PNG filter: "up" instead of OpenCV's "sub" encodes AFW photos in
# 7 % less time and 6 % fewer bytes (the sample photo upscaled to 12 MP: 19 % and 21 %),
# the same pixels.
PNG_OPTIONS = [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]


def _image(item: Item, landmarker: FaceLandmarker, directory: Path | None) -> dict:
    assert isinstance(item.source, Path)
    image = as_rgb(item.source)
    faces = landmarker.detect(image)
    record = {"image": str(item.source), "width": int(image.shape[1]),
              "height": int(image.shape[0]), "precision": landmarker.precision,
              "scheme": landmarker.scheme, "faces": [f.to_dict() for f in faces]}
    if directory is not None:
        picture, data = item.outputs(directory)
        annotated = annotate(image, faces)
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR),
                                   PNG_OPTIONS)
        if not ok:
            raise BadInput("the annotated image could not be encoded")
        write_atomic(picture, lambda tmp: tmp.write_bytes(encoded.tobytes()))
        write_json_atomic(data, record)
    return record


def _stream(item: Item, landmarker: FaceLandmarker, directory: Path | None,
            threads: int | None) -> tuple[dict, str | None, str | None]:
    """Track the faces of a video or camera; returns its JSON object, the reason when the
    stream stopped before its end (what was read is still written) and a note when the
    video written is not H.264. The video is read back before it replaces anything."""
    reader = VideoReader(item.source)
    writers: list[VideoWriter] = []
    landmarker.reset()
    frames: list[dict] = []
    camera = item.kind == "camera"
    start = time.monotonic()

    def run(writer: VideoWriter | None) -> None:
        bar = tqdm(total=reader.frame_count, unit="frame", desc=item.label, disable=None,
                   file=sys.stderr, leave=False)  # on a terminal only
        try:
            for index, frame in enumerate(reader):
                stamp = (time.monotonic() - start if camera
                         else index / (reader.fps or 30.0))
                faces = landmarker.track(frame, stamp)
                frames.append({"frame": index, "faces": [f.to_dict() for f in faces]})
                if writer is not None:
                    writer.write(annotate(frame, faces))
                bar.update(1)
        except KeyboardInterrupt:
            if not camera:
                raise  # a camera runs until interrupted; a file stops the whole verb
        finally:
            bar.close()

    try:
        if directory is None:
            run(None)
        else:
            def write_video(tmp: Path) -> None:
                writer = VideoWriter(tmp, reader.fps, reader.width, reader.height, threads)
                writers.append(writer)
                try:
                    run(writer)
                finally:
                    writer.close()
                check_video(tmp, writer.frames)

            write_atomic(item.outputs(directory)[0], write_video)
    finally:
        reader.close()
    fps = reader.fps or (len(frames) / max(time.monotonic() - start, 1e-9) if camera else 0.0)
    record = {"video": f"camera:{item.source}" if camera else str(item.source),
              "width": reader.width, "height": reader.height, "fps": round(fps, 3),
              "precision": landmarker.precision, "scheme": landmarker.scheme,
              "codec": writers[0].codec if writers else None, "frames": frames}
    if directory is not None:  # one line: a video's JSON is long
        write_text_atomic(item.outputs(directory)[1], dumps(record) + "\n")
    problem = None
    if reader.frame_count is not None and len(frames) < reader.frame_count:
        problem = (f"the video ended early: {len(frames)} of {reader.frame_count} frames "
                   "could be read (the frames read are kept)")
    return record, problem, writers[0].note if writers else None


def annotate(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of an RGB image with each face's contours and points drawn, sized to the face
    (points the model says are hidden hollow)."""
    canvas = np.ascontiguousarray(image, dtype=np.uint8).copy()
    for face in faces:
        size = float(max(face.box[2] - face.box[0], face.box[3] - face.box[1], 1.0))
        points = np.asarray(face.points, np.float64)
        draw.draw_landmarks(canvas, points, get_scheme(face.scheme),
                            np.isfinite(points).all(axis=1), thickness=max(1, round(size / 150)),
                            radius=max(1.0, size / 90), hidden=face.hidden)
    return canvas


def format_line(record: dict) -> str:
    """The one-line summary printed per input when --json is not given."""
    if "frames" in record:
        counts = [len(f["faces"]) for f in record["frames"]]
        return (f"{record['video']}: {len(counts)} frames, faces in {sum(c > 0 for c in counts)}"
                f" ({max(counts, default=0)} at most)")
    count = len(record["faces"])
    return f"{record['image']}: {count} face{'' if count == 1 else 's'}"


def dumps(record: dict) -> str:
    """One JSON object on one line, as --json prints it."""
    return json.dumps(record, separators=(",", ":"))

