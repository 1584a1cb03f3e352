"""Landmark accuracy as `evaluate` frames a face and as `predict` does, side by side.

    .venv/bin/python benchmarks/framing.py --model shipped=default:fp16 \\
        --model low_aug=runs/exp/ft_all_lowaug/best.keras --out configs/results/framing.md

`evaluate` crops every face around its annotated landmark box. `predict` crops around
BlazeFace's box, then again around its own first landmarks. A training choice that
narrows the framing augmentation lowers the first figure and can raise the second, so a
choice made on `evaluate` alone can make the product worse. For every --model this
prints:
- evaluate's inter-ocular NME on each --eval cache;
- on AFW's photos, the inter-ocular NME from the annotation crop and from BlazeFace's
  second pass;
- on MERL-RAV's test faces (AFLW crops scaled 2x into 640x480 frames, --per-bin a yaw
  bin), the box NME by yaw from both crops (detectors.py's measurements).
A model trained on levelled crops (its card's or run config's `align`) is measured as it
runs: evaluate's and the annotation crops turned by the ground truth's roll, BlazeFace's
first crop by its eye keypoints' roll and the second pass by the first pass's.
Writes the markdown table to --out (atomically) when given.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EVAL = ["caches/afw", "caches/youtube_test", "caches/merl68_test"]
BINS = ("yaw_0_30", "yaw_30_60", "yaw_60_90")


def measure(model: str, caches: list[str], per_bin: int) -> dict:
    """One model's row: evaluate per cache, then both crops through the detector."""
    from detectors import afw_crop_nme, merl_crop_nme

    from face_keypoints.evaluate import evaluate
    from face_keypoints.runtime.detector import BlazeFace

    row = {"evaluate": {cache: evaluate(model, cache, batch_size=64)["nme"]
                        for cache in caches}}
    detector = BlazeFace(threads=1)
    row["afw"] = afw_crop_nme(model, detector)
    row["merl"] = merl_crop_nme(model, detector, per_bin=per_bin)
    return row


def table(rows: dict[str, dict], caches: list[str]) -> str:
    names = [Path(c).name for c in caches]
    head = ([f"evaluate {n}" for n in names]
            + ["AFW photos: annotation / BlazeFace 2nd pass"]
            + [f"MERL {b.removeprefix('yaw_').replace('_', '-')}: annotation / 2nd pass"
               for b in BINS])
    lines = ["| model | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for label, row in rows.items():
        # evaluate reports None where no face has both outer eyes.
        cells = [f"{v:.2f}" if (v := row["evaluate"][c]) is not None else "n/a"
                 for c in caches]
        cells.append(f"{row['afw']['annotation']:.2f} / "
                     f"{row['afw']['detection_fit_second_pass']:.2f}")
        cells += [f"{row['merl'][b]['annotation']:.2f} / "
                  f"{row['merl'][b]['detection_fit_second_pass']:.2f}" for b in BINS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    faces = next(iter(rows.values()))
    lines += ["", f"NME in %: inter-ocular for evaluate and AFW ({faces['afw']['faces']} faces "
              "BlazeFace finds), box-normalised for MERL-RAV ("
              + ", ".join(f"{faces['merl'][b]['faces']}" for b in BINS)
              + " faces per yaw bin)."]
    return "\n".join(lines)


def labelled(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    """{label: model} of repeated `--model LABEL=MODEL` flags (also benchmarks/fit.py's)."""
    models = {}
    for item in items:
        label, sep, model = item.partition("=")
        if not sep or not label or not model:
            parser.error(f"--model {item}: give LABEL=MODEL")
        models[label] = model
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=MODEL",
                        help="a label and a model evaluate accepts (repeat)")
    parser.add_argument("--eval", nargs="+", default=EVAL, help="caches for evaluate")
    parser.add_argument("--per-bin", type=int, default=100, help="MERL-RAV faces per yaw bin")
    parser.add_argument("--out", type=Path, help="write the markdown table here")
    args = parser.parse_args(argv)
    models = labelled(parser, args.model)
    from detectors import SHARED

    from face_keypoints.errors import BadInput
    from face_keypoints.fileio import write_text_atomic

    if not SHARED.is_dir():
        print(f"{SHARED}: not found; AFW's photos and MERL-RAV's faces are read from it",
              file=sys.stderr)
        return 2
    rows = {}
    for label, model in models.items():
        try:
            rows[label] = measure(model, args.eval, args.per_bin)
        except BadInput as err:
            print(f"{label}: {err}", file=sys.stderr)
            continue
        print(f"{label}: measured", file=sys.stderr)
    if not rows:
        return 2
    text = "\n".join(["```", "$ python benchmarks/framing.py " + shlex.join(
        sys.argv[1:] if argv is None else argv), "```", "", table(rows, args.eval), ""])
    print(text)
    if args.out:
        write_text_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
