"""Which precision a CPU runs: timed at first use on the machine that runs it, and cached.

An export times its files where it is exported (model.json's "cpu"), but which file is
fastest depends on the CPU: int8 runs in half fp32's time on one, and is the slowest file
on another (an AMD EPYC, issue 23). What the export's record is good for everywhere is
each file's NME, which no machine changes: the files within 1 % of fp32's
(ModelCard.cpu_candidates) are timed here, interleaved, with the thread count they will
run with, for well under a second, and the fastest runs. The pick is cached per machine
(CPU model and flags), model files (their sha256) and thread count in a small JSON file
under the user's cache folder, so a machine times a model once. A damaged cache file is
ignored and rewritten; one that cannot be written only means timing again next time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_keypoints.card import ModelCard
from face_keypoints.fileio import write_json_atomic
from face_keypoints.quiet import native_stderr_silenced

CACHE_FILE = "cpu_precision.json"
CACHE_VERSION = 1
CACHE_ENTRIES = 64  # the most recent picks kept; older ones are timed again if needed
WARMUP_ROUNDS = 3
MIN_ROUNDS = 12  # timed runs of each file at least,
ROUNDS = 40  # at most,
BUDGET_S = 0.6  # and no more rounds once this many seconds have been spent timing
_CPU_FIELDS = ("model name", "flags", "Features", "CPU implementer", "CPU part")


@dataclass(frozen=True)
class Choice:
    """The precision to run, each candidate's median latency in µs, and whether the pick
    came from the cache (no timing this time)."""

    precision: str
    median_us: dict[str, float]
    cached: bool


def cache_path() -> Path:
    """The cache file: $XDG_CACHE_HOME/face-keypoints/cpu_precision.json (~/.cache)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "face-keypoints" / CACHE_FILE


def machine() -> str:
    """What makes one CPU's timing worth another's: its model and feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in _CPU_FIELDS and key not in fields:
            fields[key] = " ".join(sorted(value.split())) if key in ("flags", "Features") \
                else value.strip()
    described = [f"{key}={fields[key]}" for key in _CPU_FIELDS if key in fields]
    return "; ".join([platform.machine(), platform.processor(), *described])


def fastest(card: ModelCard, threads: int | None = 1) -> str | None:
    """The precision of `card`'s model to run on this CPU with `threads` (resolve_model's
    `choose`); None when the card records no file's NME, so the caller's default runs."""
    choice = choose(card, threads)
    return None if choice is None else choice.precision


def choose(card: ModelCard, threads: int | None = 1,
           cache: Path | None = None) -> Choice | None:
    """The fastest of `card`'s candidate files on this CPU, from the cache file `cache`
    (default cache_path()) or timed now and written there."""
    files = {p: card.folder / name for p in card.cpu_candidates()
             if (name := card.files.get(p)) and name.endswith(".tflite")
             and (card.folder / name).is_file()}
    if not files:
        return None
    if len(files) == 1:
        (only,) = files
        return Choice(only, {}, cached=False)
    cache = cache_path() if cache is None else Path(cache)
    key = _key(files, threads)
    entries = _read_entries(cache)
    known = entries.get(key)
    if isinstance(known, dict) and known.get("precision") in files:
        return Choice(str(known["precision"]), dict(known.get("median_us") or {}), True)
    median = time_files(files, threads)
    pick = min(median, key=lambda p: median[p])
    entries.pop(key, None)
    entries[key] = {"precision": pick, "median_us": median, "threads": threads,
                    "model": str(card.folder), "cpu": machine()}
    with contextlib.suppress(OSError):  # a read-only home: the pick stands, timed again
        write_json_atomic(cache, {"format_version": CACHE_VERSION,
                                  "entries": dict(list(entries.items())[-CACHE_ENTRIES:])})
    return Choice(pick, median, cached=False)


def time_files(files: dict[str, Path], threads: int | None = 1) -> dict[str, float]:
    """Median µs of one inference of each .tflite of `files` ({precision: path}), timed
    interleaved (runtime/timing.py) for at most about BUDGET_S seconds."""
    from face_keypoints.runtime.flatbuffer import read_graph
    from face_keypoints.runtime.timing import interleaved, tflite_subject

    with native_stderr_silenced():  # LiteRT's note for every interpreter it sets up
        subjects = [tflite_subject(p, path, threads, read_graph(path))
                    for p, path in files.items()]
    interleaved(subjects, WARMUP_ROUNDS)
    timed = interleaved(subjects, ROUNDS, budget_s=BUDGET_S, min_rounds=MIN_ROUNDS)
    return {p: round(float(np.median(values)), 1) for p, values in timed.items()}


def _key(files: dict[str, Path], threads: int | None) -> str:
    """One cache key per machine, set of model files (by content) and thread count."""
    digests = {p: hashlib.sha256(path.read_bytes()).hexdigest()
               for p, path in sorted(files.items())}
    text = json.dumps({"cpu": machine(), "files": digests, "threads": threads},
                      sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_entries(cache: Path) -> dict:
    """The cache file's entries; none when it is missing, damaged or of another version
    (it is rewritten whole on the next pick)."""
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format_version") != CACHE_VERSION:
        return {}
    entries = data.get("entries")
    return dict(entries) if isinstance(entries, dict) else {}
