"""Fit beside validation: each model's error on faces it trained on and on held-out faces.

    .venv/bin/python benchmarks/fit.py --model control=runs/i20_control_gap/best.keras \\
        --model pip=runs/i20_pip/best.keras --out configs/results/issue20/fit.md

Both columns come from `evaluate` (faces framed from their landmarks, no augmentation),
so they differ only in whether the model saw the faces. The pair decides which lever is
worth a run: a model whose training-face error is close to its validation error
underfits (more capacity, a better representation), one far below it overfits (more
data, augmentation, regularisation). `gap` is the mean validation NME of the 300-W-style
--val caches minus the mean training NME. Writes the markdown table to --out and the
numbers beside it as JSON (atomically), when given.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TRAIN = ["caches/helen", "caches/lfpw"]
VAL = ["caches/afw", "caches/youtube_test", "caches/merl68_test"]


def measure(model: str, caches: list[str]) -> dict[str, float]:
    """Inter-ocular NME (%) of `model` on each cache's evaluated faces (with level eyes
    for a model trained on aligned crops, as its card or run config says)."""
    from face_keypoints.evaluate import evaluate

    return {cache: evaluate(model, cache)["nme"] for cache in caches}


def table(rows: dict[str, dict[str, float]], train: list[str], val: list[str]) -> str:
    names = [f"train {Path(c).name}" for c in train] + [f"val {Path(c).name}" for c in val]
    lines = ["| model | " + " | ".join(names) + " | val AFW - mean train |",
             "|---|" + "---|" * (len(names) + 1)]
    for label, row in rows.items():
        cells = [f"{row[c]:.2f}" for c in train + val]
        gap = row[val[0]] - sum(row[c] for c in train) / len(train)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {gap:+.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=MODEL",
                        help="a model to score (repeatable): .keras, .tflite, run folder "
                             "model or a shipped name")
    parser.add_argument("--train", nargs="+", default=TRAIN, metavar="CACHE",
                        help="caches of faces the models trained on (default: %(default)s)")
    parser.add_argument("--val", nargs="+", default=VAL, metavar="CACHE",
                        help="held-out caches; the first is the one `gap` compares "
                             "(default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the table (.md) and numbers (.json)")
    args = parser.parse_args(argv)
    from framing import labelled

    models = labelled(parser, args.model)

    from face_keypoints.errors import FaceKeypointsError
    from face_keypoints.fileio import write_json_atomic, write_text_atomic
    from face_keypoints.resolve import resolve_model

    rows = {}
    try:
        for label, model in models.items():
            rows[label] = measure(model, args.train + args.val)
            print(f"{label}: " + ", ".join(f"{Path(c).name} {v:.2f}"
                                           for c, v in rows[label].items()), file=sys.stderr)
    except FaceKeypointsError as err:
        print(f"fit.py: {err}", file=sys.stderr)
        return 2
    command = "$ python benchmarks/fit.py " + shlex.join(argv if argv is not None
                                                          else sys.argv[1:])
    text = f"```\n{command}\n```\n\nInter-ocular NME (%), faces framed as `evaluate` " \
           f"frames them.\n\n{table(rows, args.train, args.val)}"
    print(text)
    if args.out:
        write_text_atomic(args.out.with_suffix(".md"), text)
        write_json_atomic(args.out.with_suffix(".json"),
                          {"models": models, "nme": rows, "train": args.train,
                           "val": args.val,
                           "aligned": [label for label, model in models.items()
                                       if resolve_model(model).aligned]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
