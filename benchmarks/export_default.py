"""Export the default network in every precision and measure what the export issue asks:
GPU-op check, fp16 file size, int8 NME against fp32, and fp32 one-thread latency beside
MediaPipe's face_landmark.tflite and dlib's 68 points in the same run.

    .venv/bin/python benchmarks/export_default.py --model RUN_DIR/best.keras \\
        --representative /work/caches/afw --val /work/caches/helen --output /tmp/export

Without --model it builds the default ModelSpec (alpha 0.25, 112 px, flatten head, depth
13) on the ImageNet backbone with an untrained head: latency, size and the GPU check are
those of the real network, the NMEs are meaningless. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO.parent / "shared" / "weights" / "mobilenet_2_5_224_tf_no_top.h5"
FP16_TARGET_BYTES = 2 * 1024 * 1024
INT8_TOLERANCE = 0.05


def _default_model(folder: Path) -> Path:
    """The default ModelSpec, ImageNet backbone, saved as a run's best.keras."""
    from face_keypoints.model.network import ModelSpec, build_model

    weights = str(WEIGHTS) if WEIGHTS.is_file() else None
    path = folder / "best.keras"
    build_model(ModelSpec(), backbone_weights=weights).save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="RUN_DIR/best.keras (default: build one)")
    parser.add_argument("--representative", type=Path, required=True,
                        help="cache to calibrate int8 on")
    parser.add_argument("--val", type=Path, help="cache for parity (default: representative)")
    parser.add_argument("--output", type=Path, required=True, help="export folder (replaced)")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from face_keypoints.benchmark import benchmark
    from face_keypoints.export.export import export

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or _default_model(Path(scratch))
        result = export(model, args.output, precisions=("fp32", "fp16", "int8"),
                        representative=args.representative, val=args.val,
                        allow_cpu_fallback=True, overwrite=True)
    files = {f.precision: f for f in result.files}
    latency = {p: benchmark(f.path, threads=args.threads, runs=args.runs,
                            warmup=args.warmup, compare=p == "fp32")
               for p, f in files.items()}
    fp32_nme, int8_nme = files["fp32"].nme, files["int8"].nme
    report = {
        "model": str(args.model or "default ModelSpec, untrained head"),
        "parity_data": str(result.parity_data),
        "keras_nme": result.keras_nme,
        "files": {p: {"path": str(f.path), "size_bytes": f.size_bytes,
                      "gpu": f.gpu.describe(), "gpu_ok": f.gpu.ok, "nme": f.nme}
                  for p, f in files.items()},
        "fp16_within_2mb": files["fp16"].size_bytes <= FP16_TARGET_BYTES,
        "int8_vs_fp32": (None if not fp32_nme or int8_nme is None
                         else round(int8_nme / fp32_nme - 1.0, 4)),
        "latency": latency,
        "warnings": result.warnings,
    }
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
