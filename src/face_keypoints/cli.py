"""`face-keypoints`: argument parsing only; each verb calls one function of the package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from face_keypoints.errors import FaceKeypointsError


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    from face_keypoints.data.readers import FORMATS

    p = sub.add_parser("prepare", help="turn a landmark data set into a training cache",
                       description="Crop every face of a data set square around its box and "
                                   "write a memory-mapped training cache.")
    p.add_argument("--format", required=True, choices=list(FORMATS))
    p.add_argument("--input", required=True, help="the data set's folder (or file)")
    p.add_argument("--annotations", help="annotation file, when not found inside --input")
    p.add_argument("--output", required=True, help="cache folder to create")
    p.add_argument("--size", type=int, default=160, help="crop size in pixels (default 160)")
    p.add_argument("--split", help="published split to read (wflw, merl68, youtube68: "
                                   "train or test; default both)")
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="hold out this fraction of identities as split 'val'")
    p.add_argument("--strict", action="store_true", help="fail (exit 2) if any face is skipped")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from face_keypoints.prepare import prepare

    result = prepare(
        format=args.format, input=args.input, output=args.output,
        annotations=args.annotations, size=args.size, split=args.split,
        val_fraction=args.val_fraction, strict=args.strict, progress=not args.no_progress,
    )
    if result.already_done:
        print(f"{result.output}: already prepared by the same command")
    splits = ", ".join(f"{k} {v}" for k, v in sorted(result.splits.items()))
    print(f"prepared {result.count} faces, skipped {len(result.skipped)}"
          + (f" ({splits})" if len(result.splits) > 1 else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from face_keypoints import __version__

    parser = argparse.ArgumentParser(
        prog="face-keypoints",
        description="Facial landmark detection for mobile GPUs: prepare data sets, "
                    "train, evaluate, export and run MobileNetV1 landmark models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    _add_prepare(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except FaceKeypointsError as err:
        print(f"face-keypoints {args.verb}: error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print(f"face-keypoints {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
