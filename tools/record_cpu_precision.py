"""Measure an export folder's .tflite files on this CPU and record the CPU pick in its
model.json, as `export` does after its parity check, without converting anything again.

    .venv/bin/python tools/record_cpu_precision.py src/face_keypoints/shipped/default \\
        --val caches/afw

Each .tflite that model.json lists is scored by evaluate on --val (inter-ocular NME, %)
and timed, interleaved, with one thread (runtime/timing.py); model.json's "cpu"
gets each file's NME, its drift against fp32 and its median latency, and the fastest
file within 1 % of fp32's NME (export/tflite.record_cpu_precision). The model files are
only read. Prints the "cpu" entry.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an export folder (it holds model.json)")
    parser.add_argument("--val", type=Path, required=True, help="cache to score NME on")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from face_keypoints.card import ModelCard
    from face_keypoints.evaluate import evaluate
    from face_keypoints.export.tflite import record_cpu_precision

    card = ModelCard.read(args.folder)
    files = {p: args.folder / name for p, name in card.own_files().items()
             if name.endswith(".tflite")}
    nme = {p: evaluate(str(path), str(args.val))["nme"] for p, path in files.items()}
    entry = record_cpu_precision(card.path, files, nme, args.val, threads=args.threads)
    print(json.dumps(entry, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
