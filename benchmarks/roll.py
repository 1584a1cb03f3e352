"""How far BlazeFace's roll (the line through its two eye keypoints) is from the ground
truth's (the line through the eye centres), on 300-W photos: the error a runtime that
levels the eyes from the detection has to absorb, and so the rotation augmentation an
aligned model (train `align: true`) needs.

    .venv/bin/python benchmarks/roll.py --photos ../shared/data/300w/afw \\
        --out configs/results/issue20/roll_blazeface_afw.md
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def roll_errors(photos: Path) -> np.ndarray:
    """|estimated - true| roll in degrees for every annotated face BlazeFace finds (the
    detection whose box centre is nearest the landmarks' mean)."""
    from face_keypoints.data.face import ABSENT, AnnotatedFace
    from face_keypoints.data.images import read_rgb
    from face_keypoints.data.readers.pts300w import read
    from face_keypoints.runtime.detector import BlazeFace, eye_roll
    from face_keypoints.schemes import get_scheme

    scheme = get_scheme("ibug68")
    detector = BlazeFace(threads=1)
    errors = []
    for face in read(photos, None, None):
        if not isinstance(face, AnnotatedFace):
            continue
        truth = scheme.roll(face.points, face.visibility != ABSENT)
        detections = detector.detect_photo(read_rgb(face.image))
        if truth is None or not detections:
            continue
        centre = face.points.mean(axis=0)
        nearest = min(detections, key=lambda d: float(np.linalg.norm(
            (d.box[:2] + d.box[2:]) / 2 - centre)))
        errors.append(abs((eye_roll(nearest) - truth + 180.0) % 360.0 - 180.0))
    return np.asarray(errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/300w/afw"),
                        help="a folder of 300-W photos and .pts (default %(default)s)")
    parser.add_argument("--out", type=Path, help="write the line here (atomically)")
    args = parser.parse_args(argv)
    from face_keypoints.errors import FaceKeypointsError
    from face_keypoints.fileio import write_text_atomic

    try:
        errors = roll_errors(args.photos)
    except FaceKeypointsError as err:
        print(f"roll.py: {err}", file=sys.stderr)
        return 2
    if not len(errors):
        print(f"roll.py: {args.photos}: no face found", file=sys.stderr)
        return 2
    line = (f"{args.photos}: {len(errors)} faces, |roll error| of BlazeFace's eye keypoints: "
            f"median {np.median(errors):.1f}, p90 {np.percentile(errors, 90):.1f}, p99 "
            f"{np.percentile(errors, 99):.1f}, max {errors.max():.1f} degrees; within 10 "
            f"degrees: {100.0 * float((errors <= 10.0).mean()):.1f} %\n")
    print(line, end="")
    if args.out:
        write_text_atomic(args.out, line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
