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

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_keypoints.errors import BadInput
from face_keypoints.export.gpu_ops import Graph, read_graph
from face_keypoints.peers import (
    DLIB,
    MEDIAPIPE,
    PeerMissing,
    dlib_landmarker,
    mediapipe_landmark_model,
)

STATS = ("count", "min_us", "max_us", "avg_us", "std_us", "median_us", "p90_us")


def count_macs(graph: Graph) -> int:
    """Multiply-accumulates of the convolutions and dense layers, from their tensor shapes.

    CONV_2D: output elements x kernel height x width x input channels per group (the
    filter is OHWI); DEPTHWISE_CONV_2D: output elements x kernel area (filter 1HWO);
    FULLY_CONNECTED: output elements x input features (weights are units x features).
    """
    total = 0
    for op in graph.ops:
        if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        out = math.prod(graph.tensors[op.outputs[0]].shape)
        weights = graph.tensors[op.inputs[1]].shape
        if op.name == "CONV_2D":
            total += out * weights[1] * weights[2] * weights[3]
        elif op.name == "DEPTHWISE_CONV_2D":
            total += out * weights[1] * weights[2]
        else:
            total += out * weights[-1]
    return total


def latency_stats(samples_us: list[float]) -> dict[str, float | int]:
    """benchmark_model's summary of timed runs (std over the runs, not a sample std)."""
    values = np.asarray(samples_us, np.float64)
    return {
        "count": int(values.size),
        "min_us": round(float(values.min()), 1),
        "max_us": round(float(values.max()), 1),
        "avg_us": round(float(values.mean()), 1),
        "std_us": round(float(values.std()), 1),
        "median_us": round(float(np.median(values)), 1),
        "p90_us": round(float(np.percentile(values, 90)), 1),
    }


@dataclass
class _Subject:
    """One model under measurement: how to run it once, and what is known about it."""

    name: str
    model: Path
    threads: int
    run: Callable[[], object]
    init_us: float
    size_bytes: int
    macs: int | None
    first_us: float = 0.0

    def timed(self) -> float:
        start = time.perf_counter_ns()
        self.run()
        return (time.perf_counter_ns() - start) / 1000.0


def _tflite_subject(name: str, path: Path, threads: int, graph: Graph) -> _Subject:
    """A LiteRT interpreter with its inputs filled once; init is open + allocate."""
    from face_keypoints.runtime.predictor import open_interpreter

    start = time.perf_counter_ns()
    interpreter = open_interpreter(path, threads)
    init_us = (time.perf_counter_ns() - start) / 1000.0
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, detail["shape"], dtype=dtype,
                                endpoint=True)
        else:
            data = rng.uniform(0.0, 1.0, detail["shape"]).astype(dtype)
        interpreter.set_tensor(detail["index"], data)
    return _Subject(name, path, threads, interpreter.invoke, init_us, path.stat().st_size,
                    count_macs(graph))


def _dlib_subject() -> _Subject:
    start = time.perf_counter_ns()
    run, path = dlib_landmarker()
    init_us = (time.perf_counter_ns() - start) / 1000.0
    return _Subject(DLIB, path, 1, run, init_us, path.stat().st_size, None)


def _peers(threads: int) -> tuple[list[_Subject], dict[str, str]]:
    """The peers that are installed, and why each missing one is missing."""
    subjects, missing = [], {}
    try:
        path = mediapipe_landmark_model()
        subjects.append(_tflite_subject(MEDIAPIPE, path, threads, read_graph(path)))
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
        ours.append(_tflite_subject(name, model, threads, graph))
    subjects = list(ours)
    missing: dict[str, str] = {}
    if compare:
        peers, missing = _peers(threads)
        subjects += peers

    for subject in subjects:
        subject.first_us = subject.timed()
    warm = _interleaved(subjects, warmup)
    timed = _interleaved(subjects, runs)

    def report(subject: _Subject) -> dict:
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


def _interleaved(subjects: list[_Subject], rounds: int) -> dict[str, list[float]]:
    """Time every subject once per round, starting each round one subject later."""
    times: dict[str, list[float]] = {s.name: [] for s in subjects}
    for r in range(rounds):
        for k in range(len(subjects)):
            subject = subjects[(r + k) % len(subjects)]
            times[subject.name].append(subject.timed())
    return times


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
