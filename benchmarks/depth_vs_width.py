"""Does cutting depth or cutting width buy more speed? One-thread fp32 latency, MACs and
parameters of the landmark network over a grid of widths (alpha) and depths (blocks kept).

    .venv/bin/python benchmarks/depth_vs_width.py [--input-size 112] [--head flatten]

Latency does not depend on the weights, so the networks are untrained. Each model is
timed in several rounds, the rounds interleaved across models so machine load affects
all alike; the table gives the lowest round median.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=112)
    parser.add_argument("--head", default="flatten")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--depths", type=int, nargs="+", default=[13, 11, 9, 7])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()

    from face_keypoints.benchmark import benchmark
    from face_keypoints.export.tflite import convert, write_model_json
    from face_keypoints.model.network import ModelSpec, build_model

    work = Path(tempfile.mkdtemp(prefix="depth_width_"))
    files = {}
    for alpha in args.alphas:
        for depth in args.depths:
            model = build_model(ModelSpec(alpha=alpha, depth=depth, input_size=args.input_size,
                                          head=args.head))
            folder = work / f"a{alpha}_d{depth}"
            folder.mkdir()
            convert(model, folder / "fp32.tflite")
            write_model_json(folder, model, {"fp32": "fp32.tflite"}, source_run=None)
            files[(alpha, depth)] = (folder / "fp32.tflite", model.count_params())
    best: dict[tuple[float, int], dict] = {}
    for _ in range(args.rounds):
        for key, (path, _) in files.items():
            result = benchmark(path, threads=1, runs=args.runs, warmup=10)
            if key not in best or result["median_us"] < best[key]["median_us"]:
                best[key] = result
    base = best[(args.alphas[0], args.depths[0])]["median_us"]
    print(f"input {args.input_size} px, head {args.head}, one thread, fp32 "
          f"(lowest of {args.rounds} interleaved round medians, {args.runs} runs each)")
    print("| alpha | depth | params | MMACs | median latency (us) | vs first row |")
    print("|---|---|---|---|---|---|")
    for (alpha, depth), (_, params) in files.items():
        r = best[(alpha, depth)]
        print(f"| {alpha} | {depth} | {params:,} | {r['macs'] / 1e6:.1f} | "
              f"{r['median_us']:.0f} | {r['median_us'] / base:.2f}x |")


if __name__ == "__main__":
    main()
