"""How well a model's extra heads answer: face presence and per-point visibility.

    .venv/bin/python benchmarks/presence.py --model runs/RUN/best.keras \\
        --out configs/results/RUN/presence

Presence: the faces of --faces (held-out, framed as `evaluate` frames them) are the
positives; crops of the same faces that frame none, made by the training negatives'
generator (augment.Augmenter.negative) with a fixed seed, --negatives per face, are the
negatives. Prints the false-accept and false-reject rates at --threshold and the
threshold where they are equal. Visibility: on --visibility (a cache whose format marks
each point, MERL-RAV's test split), the average precision of hidden points, scored by
1 - the visible probability, beside the share of hidden points (a guess's AP).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FACES = "caches/afw"
VISIBILITY = "caches/merl68_test"


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve of `labels` (1 = positive) ranked by
    `scores`, as the mean precision at each positive."""
    order = np.argsort(-scores, kind="stable")
    hits = labels[order].astype(bool)
    if not hits.any():
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def rates(positive: np.ndarray, negative: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false accepts, false rejects) in percent at `threshold`."""
    return (100.0 * float((negative >= threshold).mean()),
            100.0 * float((positive < threshold).mean()))


def equal_error(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """The threshold where false accepts and false rejects are closest, and their mean."""
    candidates = np.unique(np.concatenate([positive, negative]))
    gaps = [abs(np.subtract(*rates(positive, negative, t))) for t in candidates]
    best = float(candidates[int(np.argmin(gaps))])
    return best, float(np.mean(rates(positive, negative, best)))


def _framed(cache, input_size: int, align: bool):
    from face_keypoints.data.pipeline import BatchStream

    stream = BatchStream([(cache, cache.indices("val"))], [cache.scheme.name], 64, input_size,
                         augment=None, seed=0, shuffle=False, align=align)
    with stream:
        return list(stream.epoch(0))


def presence_scores(model, cache, negatives: int, align: bool) -> tuple[np.ndarray, np.ndarray]:
    from face_keypoints.data.augment import AugmentConfig, Augmenter

    size = int(model.input_shape[1])
    positive = np.concatenate([np.asarray(model(images, training=False)["presence"])
                               for images, _, _ in _framed(cache, size, align)]).reshape(-1)
    maker = Augmenter(AugmentConfig(), size)
    rng = np.random.default_rng(0)
    crops = np.stack([maker.negative(cache.images[i], rng) for i in cache.indices("val")
                      for _ in range(negatives)]).astype(np.float32)
    negative = np.concatenate([np.asarray(model(crops[i : i + 64], training=False)["presence"])
                               for i in range(0, len(crops), 64)]).reshape(-1)
    return positive, negative


def visibility_ap(model, cache, align: bool) -> tuple[float, float]:
    """(AP of hidden points, share of hidden points) on the cache's evaluated faces."""
    from face_keypoints.data.face import VISIBLE

    size = int(model.input_shape[1])
    key = f"visible_{cache.scheme.name}"
    seen = np.concatenate([np.asarray(model(images, training=False)[key])
                           for images, _, _ in _framed(cache, size, align)])
    hidden = cache.visibility[cache.indices("val")] != VISIBLE
    return average_precision(1.0 - seen.reshape(-1), hidden.reshape(-1)), float(hidden.mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a .keras model with extra heads")
    parser.add_argument("--faces", default=FACES, help="held-out faces (default %(default)s)")
    parser.add_argument("--visibility", default=VISIBILITY,
                        help="a cache that marks visibility (default %(default)s)")
    parser.add_argument("--negatives", type=int, default=3, help="negatives per face")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--out", type=Path, help="write the figures (.md and .json)")
    args = parser.parse_args(argv)

    from face_keypoints.data.cache import open_cache
    from face_keypoints.errors import FaceKeypointsError
    from face_keypoints.fileio import write_json_atomic, write_text_atomic
    from face_keypoints.resolve import resolve_model
    from face_keypoints.runtime.predictor import load_predictor

    try:
        resolved = resolve_model(args.model)
        model = load_predictor(resolved).model
        align = resolved.aligned  # faces framed as the model trained (its card or config)
        positive, negative = presence_scores(model, open_cache(Path(args.faces)),
                                             args.negatives, align)
        ap, share = visibility_ap(model, open_cache(Path(args.visibility)), align)
    except (FaceKeypointsError, KeyError) as err:
        print(f"presence.py: {args.model}: {err}", file=sys.stderr)
        return 2
    accepts, rejects = rates(positive, negative, args.threshold)
    equal, equal_rate = equal_error(positive, negative)
    figures = {"model": args.model, "faces": args.faces, "positives": len(positive),
               "negatives": len(negative), "threshold": args.threshold,
               "false_accept_pct": accepts, "false_reject_pct": rejects,
               "equal_error_threshold": equal, "equal_error_pct": equal_rate,
               "visibility_cache": args.visibility, "hidden_ap": ap, "hidden_share": share}
    text = (f"presence on {args.faces}: {len(positive)} faces, {len(negative)} negatives; "
            f"at {args.threshold}: false accepts {accepts:.2f} %, false rejects "
            f"{rejects:.2f} %; equal error {equal_rate:.2f} % at {equal:.3f}\n"
            f"visibility on {args.visibility}: AP of hidden points {ap:.3f} "
            f"(hidden share {share:.3f}, a guess's AP)\n")
    print(text, end="")
    if args.out:
        write_text_atomic(args.out.with_suffix(".md"), text)
        write_json_atomic(args.out.with_suffix(".json"), figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
