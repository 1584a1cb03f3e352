"""The `benchmark` verb: latency of an exported .tflite the way TFLite's benchmark_model
measures it, its size and multiply-accumulates, and optionally the peers beside it.

Like benchmark_model: the time to open the model and allocate its tensors (init), the
first inference, a warm-up, then `runs` timed inferences summarised as count, min, max,
avg, std, median and p90 in microseconds. Inputs are filled once; only `invoke` is timed.

With `compare`, MediaPipe's face_landmark.tflite (on the same LiteRT interpreter and
thread count) and dlib's 68-point predictor (single-threaded by design) are measured in
the same process, interleaved with ours: every round runs each model once, in a rotating
order, so a change of machine load falls on all of them alike. `benchmark_models` does the
same for several of our files at once (e.g. every precision of one export).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from face_keypoints.errors import BadInput
from face_keypoints.peers import (
    DLIB,
    MEDIAPIPE,
    PeerMissing,
    dlib_landmarker,
    mediapipe_landmark_model,
)
from face_keypoints.runtime.flatbuffer import read_graph
from face_keypoints.runtime.timing import Subject, interleaved, latency_stats, tflite_subject

STATS = ("count", "min_us", "max_us", "avg_us", "std_us", "median_us", "p90_us")


def _dlib_subject() -> Subject:
    start = time.perf_counter_ns()
    run, path = dlib_landmarker()
    init_us = (time.perf_counter_ns() - start) / 1000.0
    return Subject(DLIB, path, 1, run, init_us, path.stat().st_size, None)


def _peers(threads: int) -> tuple[list[Subject], dict[str, str]]:
    """The peers that are installed, and why each missing one is missing."""
    subjects, missing = [], {}
    try:
        path = mediapipe_landmark_model()
        subjects.append(tflite_subject(MEDIAPIPE, path, threads, read_graph(path)))
    except PeerMissing as err:
        missing[MEDIAPIPE] = str(err)
    try:
        subjects.append(_dlib_subject())
    except PeerMissing as err:
        missing[DLIB] = str(err)
    return subjects, missing


def benchmark(model: str | Path, threads: int = 1, runs: int = 50, warmup: int = 5,
              compare: bool = False) -> dict:
    """Measure the exported .tflite at `model` (and the peers with `compare`).

    `model` may be `default` or `default:fp32|fp16|int8`, the shipped model. It goes
    through the same checks as evaluate and predict (model.json beside it, input size as
    it says), so a figure here is for a file those verbs accept.
    """
    both = benchmark_models({"model": model}, threads, runs, warmup, compare)
    result = both["models"]["model"]
    if compare:
        result["peers"] = both["peers"]
    return result


def benchmark_models(models: dict[str, str | Path], threads: int = 1, runs: int = 50,
                     warmup: int = 5, compare: bool = False) -> dict:
    """Measure several exported .tflite files (and the peers with `compare`) in one
    interleaved run, so that they share whatever load the machine is under.

    Returns {"models": {name: report}, "peers": {name: report or {"missing": why}}}; every
    peer's report also has its avg and median time as a ratio of the first model's.
    """
    from face_keypoints.resolve import is_default, resolve_model
    from face_keypoints.runtime.predictor import load_predictor

    if not models:
        raise BadInput("nothing to benchmark")
    if set(models) & {MEDIAPIPE, DLIB}:
        raise BadInput(f"{MEDIAPIPE} and {DLIB} name the peers; call the models otherwise")
    if threads < 1 or runs < 1 or warmup < 0:
        raise BadInput("--threads and --runs must be >= 1 and --warmup >= 0")
    ours = []
    for name, named in models.items():
        resolved = resolve_model(named)
        model = resolved.path
        if model.suffix != ".tflite":
            if is_default(named):
                raise BadInput(f"{named}: benchmark measures .tflite files only; use "
                               "default, default:fp32, default:fp16 or default:int8")
            raise BadInput(f"{model}: benchmark takes an exported .tflite file")
        graph = read_graph(model)
        load_predictor(resolved, threads)
        ours.append(tflite_subject(name, model, threads, graph))
    subjects = list(ours)
    missing: dict[str, str] = {}
    if compare:
        peers, missing = _peers(threads)
        subjects += peers

    for subject in subjects:
        subject.first_us = subject.timed()
    warm = interleaved(subjects, warmup)
    timed = interleaved(subjects, runs)

    def report(subject: Subject) -> dict:
        stats = latency_stats(timed[subject.name])
        return {
            "model": str(subject.model),
            "threads": subject.threads,
            "runs": runs,
            "warmup": warmup,
            "init_us": round(subject.init_us, 1),
            "first_us": round(subject.first_us, 1),
            "warmup_avg_us": (round(float(np.mean(warm[subject.name])), 1)
                              if warmup else None),
            **stats,
            "fps": round(1e6 / stats["avg_us"], 1),
            "size_bytes": subject.size_bytes,
            "macs": subject.macs,
        }

    result: dict = {"models": {s.name: report(s) for s in ours}, "peers": {}}
    first = result["models"][ours[0].name]
    for subject in subjects[len(ours):]:
        peer = report(subject)
        peer["avg_ratio"] = round(peer["avg_us"] / first["avg_us"], 3)
        peer["median_ratio"] = round(peer["median_us"] / first["median_us"], 3)
        result["peers"][subject.name] = peer
    for name, reason in missing.items():
        result["peers"][name] = {"missing": reason}
    return result


def format_report(result: dict) -> str:
    """benchmark_model-style lines for people; --json prints `result` itself."""

    def block(name: str, r: dict) -> list[str]:
        macs = "-" if r["macs"] is None else f"{r['macs'] / 1e6:.1f} M"
        warm = "-" if r["warmup_avg_us"] is None else f"{r['warmup_avg_us']:.0f} us"
        return [
            f"{name}: {r['model']}",
            f"  size {r['size_bytes']:,} bytes, MACs {macs}, threads {r['threads']}",
            f"  init {r['init_us']:.0f} us, first run {r['first_us']:.0f} us, "
            f"warm-up ({r['warmup']} runs) avg {warm}",
            "  " + " ".join(f"{k.removesuffix('_us')}={r[k]:.0f}" if k != "count"
                            else f"count={r[k]}" for k in STATS) + " (us)",
            f"  {r['fps']:.1f} inferences/s",
        ]

    lines = block("model", result)
    for name, peer in result.get("peers", {}).items():
        if "missing" in peer:
            lines.append(f"{name}: not measured: {peer['missing']}")
            continue
        lines += block(name, peer)
        lines.append(f"  {peer['avg_ratio']:.2f}x our average time, "
                     f"{peer['median_ratio']:.2f}x our median")
    return "\n".join(lines)
