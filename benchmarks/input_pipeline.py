"""Images per second of the training input pipeline alone (augmentation on).

The trainer needs about 70 images/s at input 128 on this machine's CPU; the pipeline
should make at least 1.5x that on ONE core while the other trains, so pin it:

    taskset -c 0 .venv/bin/python benchmarks/input_pipeline.py
    .venv/bin/python benchmarks/input_pipeline.py --workers 2

Default cache: /work/caches/helen; make one with
    .venv/bin/face-keypoints prepare --format 300w \
        --input /work/shared/data/300w/helen_trainset --output /tmp/helen
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from face_keypoints.data.augment import AugmentConfig
from face_keypoints.data.cache import open_cache
from face_keypoints.data.pipeline import BatchStream

DEFAULT_CACHE = Path("/work/caches/helen")
TARGET = 1.5 * 70  # images/s at input 128


def measure(stream: BatchStream, batches: int) -> float:
    """Images/s over `batches` batches, after one warm-up batch (threads, page cache)."""
    done, images, start, epoch = 0, 0, 0.0, 0
    while done <= batches:
        for batch, _, _ in stream.epoch(epoch):
            if done == 0:
                start = time.perf_counter()
            else:
                images += len(batch)
            done += 1
            if done > batches:
                break
        epoch += 1
    return images / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 112])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=100, help="batches timed per size")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.cache / "manifest.json").exists():
        print(f"{args.cache}: no cache; pass --cache PATH (see this script's docstring)",
              file=sys.stderr)
        return 1
    cache = open_cache(args.cache)
    cores = sorted(os.sched_getaffinity(0))
    print(f"cache {args.cache} ({len(cache)} faces, {cache.scheme.name}), batch {args.batch}, "
          f"workers {args.workers}, cores {cores}")
    for size in args.sizes:
        with BatchStream([(cache, cache.indices("train"))], [cache.scheme.name], args.batch,
                         size, AugmentConfig(), seed=args.seed,
                         workers=args.workers) as stream:
            rate = measure(stream, args.batches)
        verdict = f" (target >= {TARGET:.0f}: {'ok' if rate >= TARGET else 'TOO SLOW'})"
        print(f"input {size}: {rate:7.0f} images/s{verdict if size == 128 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
