"""The 98-point figures: models on the held-out WFLW faces, by attribute subset.

    .venv/bin/python benchmarks/wflw98.py --model default=default:fp16 --model lite=lite:fp16 \\
        --model previous_68=OLD.tflite --data caches/wflw_partial --out FILE.md

Each --model is scored by evaluate on the cache's held-out faces (split "val" of
`prepare --val-fraction`): a model with a 98-point head on WFLW's 98 points, a 68-point
model on the 68 points WFLW's annotation maps onto (evaluate says which head it scored).
The mean shape of --baseline-data caches is scored the same way. NME is inter-ocular
(outer eye corners: WFLW points 60 and 72, iBUG 36 and 45, the same two points), in %;
FR and AUC at 10 %. Writes the markdown table to --out (atomically) when given.

These are WFLW *test*-split faces (../shared/data/wflw_partial): no published WFLW-test
figure may be compared with them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ATTRIBUTES = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")
BASELINE = ["caches/helen", "caches/lfpw", "caches/merl68_train", "caches/youtube_train",
            "caches/wflw_partial"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=MODEL")
    parser.add_argument("--data", default="caches/wflw_partial", help="a WFLW cache")
    parser.add_argument("--baseline-data", nargs="+", default=BASELINE, metavar="CACHE",
                        help="training caches of the mean shape (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the markdown table here")
    args = parser.parse_args(argv)

    from face_keypoints.baseline import MeanShapePredictor
    from face_keypoints.data.cache import open_cache
    from face_keypoints.evaluate import evaluate
    from face_keypoints.fileio import write_text_atomic
    from face_keypoints.resolve import resolve_model
    from face_keypoints.runtime.predictor import load_predictor

    models = dict(item.split("=", 1) for item in args.model)
    caches = [open_cache(Path(c)) for c in args.baseline_data]
    # The mean shape is framed as the first model frames faces.
    size = load_predictor(resolve_model(next(iter(models.values())))).input_size
    models["mean shape"] = MeanShapePredictor(caches, size, ["wflw98"])
    head = ["model", "head scored", "faces", "NME io %", "FR@10% %", "AUC@10%",
            *[f"{a} NME % (faces)" for a in ATTRIBUTES]]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for label, model in models.items():
        result = evaluate(model, args.data, batch_size=64)
        subsets = result["subsets"]
        cells = [f"{_pct(subsets[a]['nme'])} ({subsets[a]['n']})" if a in subsets else "-"
                 for a in ATTRIBUTES]
        lines.append(f"| {label} | {result.get('head', result.get('scheme'))} "
                     f"| {result['n_nme']} | {_pct(result['nme'])} | {_pct(result['fr10'])} "
                     f"| {result['auc10']:.3f} | " + " | ".join(cells) + " |")
        print(lines[-1], file=sys.stderr, flush=True)
    command = shlex.join(["python", "benchmarks/wflw98.py", *(argv or sys.argv[1:])])
    text = f"```\n$ {command}\n```\n\n" + "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_text_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
