"""Tracking speed and jitter of `predict` on a 640x480 clip with one face, beside MediaPipe.

    taskset -c 0 .venv/bin/python benchmarks/predict_speed.py [--model FILE.tflite]
        [--mediapipe-python /tmp/mp-venv/bin/python]

The clip is the sample photo examples/astronaut.jpg (cropped to the upper body) filmed as
a still face: sub-pixel camera shake (0.5 px) and sensor noise (2 grey levels), made by
testing.shaken_clip and saved as PNG frames. Every frame is decoded before timing starts,
so times are end to end per frame without decoding: FaceLandmarker.track (crop from the
last landmarks, landmark model, smoothing; BlazeFace on the crop only for a model without
a face-presence output), one thread. Each of our rows says which path ran ("path": the
model file, its precision, and "track_check": "presence" or "detector_on_crop").

MediaPipe Face Mesh (mediapipe==0.10.21, `mp.solutions.face_mesh`, 468 points, tracking
mode, one face) pins numpy<2, so it runs in its own venv (`python3 -m venv /tmp/mp-venv
&& /tmp/mp-venv/bin/pip install mediapipe==0.10.21`) as a subprocess on the same PNG
frames, in the same run; rounds alternate between the two so that background load hits
both. Without that venv its figures are reported missing.

Jitter: mean frame-to-frame movement of the points, as % of the inter-ocular distance
(outer eye corners), over the frames after the first 10 (the smoothing filter's start).
Targets: >= 150 fps on one core; jitter with smoothing <= half of jitter without.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from face_keypoints.data.images import read_rgb
from face_keypoints.runtime.api import FaceLandmarker
from face_keypoints.schemes import get_scheme
from face_keypoints.testing import shaken_clip

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "examples" / "astronaut.jpg"
SETTLE = 10  # frames left out of the jitter while the filter starts
TARGET_FPS = 150.0
MEDIAPIPE_EYES = (33, 263)  # outer eye corners of the 468-point face mesh

# Run by the MediaPipe venv's python: argv = frame folder; prints one JSON object.
_MEDIAPIPE = """
import json, sys, time
from pathlib import Path
import cv2
import numpy as np
import mediapipe as mp

frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
          for p in sorted(Path(sys.argv[1]).glob("*.png"))]
times, points = [], []
with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                     refine_landmarks=False) as mesh:
    for frame in frames:
        start = time.perf_counter()
        result = mesh.process(frame)
        times.append(time.perf_counter() - start)
        faces = result.multi_face_landmarks
        points.append([[p.x * frame.shape[1], p.y * frame.shape[0]]
                       for p in faces[0].landmark] if faces else None)
print(json.dumps({"times": times, "points": points}))
"""


def make_clip(folder: Path, count: int) -> list[np.ndarray]:
    """The still-face clip, written as PNG frames into `folder` and returned."""
    photo = read_rgb(PHOTO)[0:320, 66:386]  # the upper body: a 140 px face in 640x480
    frames = [frame for frame, _ in shaken_clip(photo, count, shake=0.5, noise=2.0, seed=0)]
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return frames


def jitter(tracks: list[np.ndarray | None], eyes: tuple[int, int]) -> float | None:
    """Mean frame-to-frame movement as % of the inter-ocular distance; None if the face
    was ever missed (the figure would mix in a re-detection)."""
    if any(t is None for t in tracks):
        return None
    points = np.array(tracks, np.float64)[SETTLE:]
    ocular = np.linalg.norm(points[:, eyes[0]] - points[:, eyes[1]], axis=1).mean()
    return float(np.linalg.norm(np.diff(points, axis=0), axis=2).mean() / ocular * 100.0)


def ours(frames: list[np.ndarray], model: str | None, smoothing: bool) -> dict:
    landmarker = FaceLandmarker(model, threads=1, max_faces=1, smoothing=smoothing)
    landmarker.track(frames[0])  # warm-up: interpreters allocate on their first run
    landmarker.reset()
    times, tracks = [], []
    for frame in frames:
        start = time.perf_counter()
        faces = landmarker.track(frame)
        times.append(time.perf_counter() - start)
        tracks.append(faces[0].points if faces else None)
    eyes = get_scheme(landmarker.scheme).outer_eyes
    return {"times": times, "jitter": jitter(tracks, eyes),
            "frames_with_face": sum(t is not None for t in tracks),
            "path": tracking_path(landmarker)}


def tracking_path(landmarker: FaceLandmarker) -> dict:
    """What ran on a tracked frame: the model file and whether the model's own presence
    output kept the track or BlazeFace ran on the crop (a model without that output)."""
    model = landmarker.landmarker
    return {"model": str(model.path), "precision": model.precision,
            "track_check": "presence" if model.has_presence else "detector_on_crop"}


def mediapipe(folder: Path, python: Path) -> dict | None:
    if not python.is_file():
        return None
    run = subprocess.run([str(python), "-c", _MEDIAPIPE, str(folder)], capture_output=True,
                         text=True, check=False)
    if run.returncode != 0:
        tail = run.stderr.strip().splitlines()[-1:] or ["(no message)"]
        raise RuntimeError(f"MediaPipe run failed: {tail[0]}")
    out = json.loads(run.stdout.strip().splitlines()[-1])
    tracks = [None if p is None else np.array(p) for p in out["points"]]
    return {"times": out["times"], "jitter": jitter(tracks, MEDIAPIPE_EYES),
            "frames_with_face": sum(t is not None for t in tracks)}


def summary(runs: list[dict]) -> dict:
    """Per-frame time over all rounds (the first frame of a round, which sets up tracking
    with a whole-frame detection, included), jitter of the last round. fps is from the
    median: on a shared machine the mean also counts the moments another process held
    the core (fps_from_mean)."""
    ms = np.concatenate([np.asarray(r["times"]) for r in runs]) * 1e3
    return {"ms_per_frame_median": round(float(np.median(ms)), 3),
            "ms_per_frame_mean": round(float(ms.mean()), 3),
            "ms_per_frame_p90": round(float(np.percentile(ms, 90)), 3),
            "fps": round(1000.0 / float(np.median(ms)), 1),
            "fps_from_mean": round(1000.0 / float(ms.mean()), 1),
            "jitter_pct_iod": None if runs[-1]["jitter"] is None
            else round(runs[-1]["jitter"], 4),
            "frames_with_face": runs[-1]["frames_with_face"], "frames": len(runs[-1]["times"]),
            **({"path": runs[-1]["path"]} if "path" in runs[-1] else {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="landmark .tflite (default: the shipped model)")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mediapipe-python", type=Path,
                        default=Path("/tmp/mp-venv/bin/python"))
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {"ours_smoothed": [], "ours_raw": [], "mediapipe": []}
    with tempfile.TemporaryDirectory() as scratch:
        frames = make_clip(Path(scratch), args.frames)
        for _ in range(args.rounds):
            runs["ours_smoothed"].append(ours(frames, args.model, smoothing=True))
            runs["ours_raw"].append(ours(frames, args.model, smoothing=False))
            peer = mediapipe(Path(scratch), args.mediapipe_python)
            if peer is not None:
                runs["mediapipe"].append(peer)
    result = {name: summary(r) if r else None for name, r in runs.items()}
    smoothed, raw = result["ours_smoothed"]["jitter_pct_iod"], result["ours_raw"]["jitter_pct_iod"]
    result["targets"] = {
        "fps_at_least_150": result["ours_smoothed"]["fps"] >= TARGET_FPS,
        "smoothed_jitter_at_most_half": (smoothed is not None and raw is not None
                                         and smoothed <= 0.5 * raw)}
    result["clip"] = {"frames": args.frames, "size": [640, 480], "photo": PHOTO.name,
                      "shake_px": 0.5, "noise": 2.0, "rounds": args.rounds}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
