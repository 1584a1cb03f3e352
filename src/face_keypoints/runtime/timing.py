"""Timing LiteRT models the way TFLite's benchmark_model does, several at once, interleaved.

Every round runs each subject once, in a rotating order, so a change of machine load falls
on all of them alike. `benchmark` (benchmark.py) times one export and the peers with it;
export times every precision of one export for its CPU pick (export/tflite.py), and the
runtime times them again at first use on the machine that runs them (cpu_precision.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_keypoints.runtime.flatbuffer import Graph, count_macs


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
class Subject:
    """One model under measurement: how to run it once, and what is known about it."""

    name: str
    model: Path
    threads: int | None
    run: Callable[[], object]
    init_us: float
    size_bytes: int
    macs: int | None
    first_us: float = 0.0

    def timed(self) -> float:
        start = time.perf_counter_ns()
        self.run()
        return (time.perf_counter_ns() - start) / 1000.0


def tflite_subject(name: str, path: Path, threads: int | None, graph: Graph) -> Subject:
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
    return Subject(name, path, threads, interpreter.invoke, init_us, path.stat().st_size,
                    count_macs(graph))


def interleaved(subjects: list[Subject], rounds: int, budget_s: float | None = None,
                min_rounds: int = 1) -> dict[str, list[float]]:
    """Time every subject once per round, starting each round one subject later. With
    `budget_s`, stop after the first round that ends past that many seconds, once
    `min_rounds` are done: a timing at first use must not hold the user up."""
    times: dict[str, list[float]] = {s.name: [] for s in subjects}
    start = time.perf_counter()
    for r in range(rounds):
        for k in range(len(subjects)):
            subject = subjects[(r + k) % len(subjects)]
            times[subject.name].append(subject.timed())
        if (budget_s is not None and r + 1 >= min_rounds
                and time.perf_counter() - start > budget_s):
            break
    return times
