"""The precision a CPU runs is timed on the machine that runs it (runtime/cpu_precision.py),
among the files whose NME the export measured within 1 % of fp32's, and cached.

The model folders here are built from the shipped files so that one slot is faster than
the others by construction: the lite model's int8 file (13.4 M MACs, integer kernels)
beside the default model's float files (48.8 M MACs). Both take 128 px crops and have the
same two heads, so every file of such a folder loads as the card says; only the timing
can tell the slots apart, and the card's own "cpu" record is made to say the opposite.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, needs_model

from face_keypoints.card import ModelCard
from face_keypoints.resolve import shipped_folder
from face_keypoints.runtime.cpu_precision import cache_path, choose

pytestmark = needs_model
PHOTO = FIXTURES / "300w" / "afw" / "261068_1.jpg"


def _slot(folder: Path, data: dict, precision: str, source: Path) -> None:
    """Put `source` into `folder` as the file of `precision`, with its true digest."""
    target = folder / f"slot_{precision}.tflite"
    shutil.copyfile(source, target)
    raw = target.read_bytes()
    data["files"][precision] = {"file": target.name, "sha256": hashlib.sha256(raw).hexdigest(),
                                "size_bytes": len(raw)}


def _folder(tmp_path: Path, fast: str, recorded_pick: str, drift: dict | None = None) -> Path:
    """A model folder whose `fast` slot holds the lite int8 file and whose other slots
    hold the default model's fp32 and fp16 files; its card's "cpu" record names
    `recorded_pick` as the fastest file (with medians that say so) and gives each file
    the NME drift of `drift` (default: all within 0.3 % of fp32)."""
    default = ModelCard.read(shipped_folder("default"))
    lite = ModelCard.read(shipped_folder("lite"))
    folder = tmp_path / f"model_{fast}_{recorded_pick}"
    folder.mkdir()
    data = json.loads(json.dumps(default.data))
    data["files"] = {}
    slow = iter([default.file_for("fp32"), default.file_for("fp16")])
    for precision in ("fp32", "fp16", "int8"):
        source = lite.file_for("int8") if precision == fast else next(slow)
        _slot(folder, data, precision, source)
    drift = drift or {"fp32": 0.0, "fp16": 0.1, "int8": 0.3}
    data["cpu"]["precision"] = recorded_pick
    data["cpu"]["files"] = {p: {"nme_pct": round(4.0 * (1 + d / 100), 4),
                                "nme_drift_vs_fp32_pct": d,
                                "median_us": 100.0 if p == recorded_pick else 900.0}
                            for p, d in drift.items()}
    ModelCard.write(folder, data)
    return folder


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.mark.parametrize(("fast", "recorded"), [("fp32", "int8"), ("int8", "fp32")])
def test_the_pick_is_the_file_measured_fastest_here_not_the_one_the_export_recorded(
        tmp_path: Path, fast: str, recorded: str) -> None:
    from face_keypoints import FaceLandmarker, predict

    folder = _folder(tmp_path, fast, recorded)
    choice = choose(ModelCard.read(folder))
    assert choice is not None and not choice.cached
    assert choice.precision == fast, choice.median_us
    assert set(choice.median_us) == {"fp32", "fp16", "int8"}
    assert FaceLandmarker(folder).precision == fast
    (record,) = predict([PHOTO], model=folder).results
    assert record["precision"] == fast


def test_a_file_beyond_1_percent_of_fp32s_nme_is_never_run_however_fast(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "int8", "int8", {"fp32": 0.0, "fp16": 0.1, "int8": 1.5})
    card = ModelCard.read(folder)
    assert card.cpu_candidates() == ["fp32", "fp16"]
    choice = choose(card)
    assert choice is not None and choice.precision in ("fp32", "fp16")
    assert set(choice.median_us) == {"fp32", "fp16"}


def test_an_explicit_precision_wins_and_times_nothing(tmp_path: Path) -> None:
    from face_keypoints import FaceLandmarker

    folder = _folder(tmp_path, "fp32", "fp32")
    assert FaceLandmarker(f"{folder}:fp16").precision == "fp16"
    assert FaceLandmarker("lite:fp32").precision == "fp32"
    assert not cache_path().exists()


def test_the_pick_is_cached_per_machine_model_and_threads(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "fp32", "int8")
    card = ModelCard.read(folder)
    first = choose(card, threads=1)
    again = choose(card, threads=1)
    assert again is not None and again.cached and again.precision == first.precision
    entries = json.loads(cache_path().read_text())["entries"]
    assert len(entries) == 1
    other = choose(card, threads=2)
    assert other is not None and not other.cached
    assert len(json.loads(cache_path().read_text())["entries"]) == 2
    # another model (one file's content changed): timed anew
    shutil.copyfile(ModelCard.read(shipped_folder("lite")).file_for("fp16"),
                    card.file_for("fp16"))
    assert not choose(card, threads=1).cached


@pytest.mark.parametrize("damage", [b"\x00\xff not json", b"[1, 2]",
                                    b'{"format_version": 1, "entries": "x"}'])
def test_a_damaged_cache_file_is_ignored_and_rewritten(tmp_path: Path, damage: bytes) -> None:
    folder = _folder(tmp_path, "fp32", "int8")
    cache_path().parent.mkdir(parents=True)
    cache_path().write_bytes(damage)
    choice = choose(ModelCard.read(folder))
    assert choice is not None and not choice.cached and choice.precision == "fp32"
    data = json.loads(cache_path().read_text())
    assert [e["precision"] for e in data["entries"].values()] == ["fp32"]
    assert choose(ModelCard.read(folder)).cached


def test_an_unwritable_cache_folder_still_gives_the_measured_pick(tmp_path: Path,
                                                                  monkeypatch) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    choice = choose(ModelCard.read(_folder(tmp_path, "fp32", "int8")))
    assert choice is not None and choice.precision == "fp32"


def test_without_recorded_nmes_the_default_file_runs_untimed(tmp_path: Path) -> None:
    """An export written without --val knows no file's NME: its fp16 file runs, as
    before (on a CPU it runs as fp32)."""
    from face_keypoints import FaceLandmarker

    folder = _folder(tmp_path, "fp32", "int8")
    data = dict(ModelCard.read(folder).data)
    del data["cpu"]
    ModelCard.write(folder, data)
    assert choose(ModelCard.read(folder)) is None
    assert FaceLandmarker(folder).precision == "fp16"
    assert not cache_path().exists()


def test_precision_flag_overrides_the_pick_and_conflicts_are_one_line(run_cli,
                                                                      tmp_path: Path) -> None:
    folder = _folder(tmp_path, "fp32", "fp32")
    result = run_cli("predict", PHOTO, "--model", folder, "--precision", "int8", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["precision"] == "int8"
    result = run_cli("predict", PHOTO, "--precision", "fp16", "--json")
    assert result.code == 0 and json.loads(result.out)["precision"] == "fp16"
    for model, words in ((f"{folder}:fp16", "names fp16 already"),
                         (folder / "slot_fp32.tflite", "is one file")):
        result = run_cli("predict", PHOTO, "--model", model, "--precision", "int8")
        assert result.code == 2 and result.out == ""
        (line,) = result.err.strip().splitlines()
        assert "--precision int8" in line and words in line
    assert not cache_path().exists()
