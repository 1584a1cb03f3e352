"""The export verb end to end on a tiny random model and a three-face cache of the
repository's 300-W fixtures: the files and model.json it writes (the .tflite files and a
copy of the .keras), parity figures, refusal to overwrite, the GPU check's exit code 3,
and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from face_keypoints.export.export import int8_drift

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SIZE = 96
NAME = "mobilenet_a0.25_d3_96px_gap"

def _cli(*args: object) -> tuple[int, str, str]:
    """`face-keypoints ARGS` in this process, with its Python-level stdout and stderr."""
    from face_keypoints.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _one_error_line(err: str, verb: str = "export") -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"face-keypoints {verb}: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def cache(work: Path) -> Path:
    from face_keypoints.prepare import prepare

    prepare(format="300w", input=FIXTURES / "300w" / "afw", output=work / "cache", size=128,
            progress=False, log=lambda line: None)
    return work / "cache"


@pytest.fixture(scope="module")
def run_dir(work: Path) -> Path:
    """A run folder with a tiny random model whose points depend on the image, and the
    part of a run's metrics.json that export reads (the calibration record)."""
    import keras

    from face_keypoints.model.network import ModelSpec, build_model

    keras.utils.set_random_seed(0)
    model = build_model(ModelSpec(depth=3, input_size=SIZE, head="gap"))
    layer = model.get_layer("points_ibug68")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * 5000.0, bias])
    folder = work / "run"
    folder.mkdir()
    model.save(folder / "best.keras")
    (folder / "metrics.json").write_text(json.dumps({"calibration": {"cache": "caches/helen"}}))
    return folder


@pytest.fixture(scope="module")
def exported(work: Path, run_dir: Path, cache: Path) -> tuple[Path, str]:
    code, out, err = _cli("export", "--model", run_dir / "best.keras", "--output",
                          work / "out", "--precision", "fp32", "fp16", "int8",
                          "--representative", cache)
    assert code == 0, err
    return work / "out", out


def test_writes_one_file_per_precision_a_keras_copy_and_model_json(
        exported: tuple[Path, str], run_dir: Path):
    folder, out = exported
    card = json.loads((folder / "model.json").read_text())
    assert list(card["files"]) == ["fp32", "fp16", "int8", "keras"]
    for precision, entry in card["files"].items():
        path = folder / entry["file"]
        suffix = ".keras" if precision == "keras" else f"_{precision}.tflite"
        assert entry["file"] == f"{NAME}{suffix}"
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["size_bytes"] == path.stat().st_size
        assert "input_dtype" not in entry  # float input and output in every file here
    keras_copy = folder / f"{NAME}.keras"
    assert keras_copy.read_bytes() == (run_dir / "best.keras").read_bytes()
    assert keras_copy.stat().st_mode & 0o777 == 0o644
    assert f"wrote {keras_copy}" in out
    assert card["source_run"] == str(run_dir.resolve())
    assert card["calibrated_on"] == "caches/helen"
    assert card["input"]["size"] == SIZE
    assert "align" not in card["input"]["crop"]  # a run without config.yaml: upright
    assert not list(folder.glob(".export-*")), "staging folder left behind"
    assert {p.name for p in folder.iterdir()} == {
        *(e["file"] for e in card["files"].values()), "model.json"}
    sizes = {p: card["files"][p]["size_bytes"] for p in card["files"]}
    assert sizes["int8"] < sizes["fp16"] < sizes["fp32"]


def test_the_keras_copy_loads_and_exports_again_naming_the_first_run(
        exported: tuple[Path, str], run_dir: Path, work: Path):
    from face_keypoints.runtime import load_predictor

    folder, _ = exported
    copy = load_predictor(folder / f"{NAME}.keras")
    original = load_predictor(run_dir / "best.keras")
    assert copy.kind == "keras" and copy.schemes == original.schemes == ["ibug68"]
    images = np.random.default_rng(2).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_array_equal(copy.predict(images)["ibug68"],
                                  original.predict(images)["ibug68"])
    code, _, err = _cli("export", "--model", folder / f"{NAME}.keras", "--output",
                        work / "again", "--precision", "fp32")
    assert code == 0, err
    card = json.loads((work / "again" / "model.json").read_text())
    assert card["source_run"] == str(run_dir.resolve())  # not the first export's folder
    assert card["calibrated_on"] == "caches/helen"
    assert list(card["files"]) == ["fp32", "keras"]


def test_a_run_trained_on_aligned_crops_exports_a_card_that_says_so(work: Path,
                                                                     run_dir: Path):
    """input.crop.align comes from the run's config.yaml, and an export of the export's
    .keras copy keeps it (from the card), so the runtimes turn its crops."""
    from face_keypoints.card import ModelCard
    from face_keypoints.config import TrainConfig

    run = work / "aligned_run"
    run.mkdir()
    shutil.copyfile(run_dir / "best.keras", run / "best.keras")
    TrainConfig(align=True).save(run / "config.yaml")
    code, _, err = _cli("export", "--model", run, "--output", work / "aligned", "--precision",
                        "fp32")
    assert code == 0, err
    card = json.loads((work / "aligned" / "model.json").read_text())
    assert card["input"]["crop"]["align"] is True and ModelCard.read(work / "aligned").aligned
    code, _, err = _cli("export", "--model", work / "aligned" / f"{NAME}.keras", "--output",
                        work / "aligned_again", "--precision", "fp32")
    assert code == 0, err
    assert ModelCard.read(work / "aligned_again").aligned


def test_prints_gpu_verdicts_and_parity(exported: tuple[Path, str]):
    _, out = exported
    assert out.count("ops run on the GPU delegate") == 3
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "%":
            rows[parts[0]] = float(parts[1])
    assert set(rows) == {"keras", "fp32", "fp16", "int8"}
    assert rows["fp32"] == pytest.approx(rows["keras"], abs=0.01)
    assert rows["fp16"] == pytest.approx(rows["keras"], rel=0.05)


def test_never_overwrites_without_overwrite(exported: tuple[Path, str], run_dir: Path,
                                            cache: Path):
    folder, _ = exported
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, _, err = _cli("export", "--model", run_dir / "best.keras", "--output", folder,
                        "--precision", "fp32")
    assert code == 2
    assert "--overwrite" in _one_error_line(err)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_int8_io_records_quantization_and_overwrites_when_asked(work: Path, run_dir: Path,
                                                                cache: Path):
    folder = work / "int8_io"
    args = ("export", "--model", run_dir / "best.keras", "--output", folder, "--precision",
            "int8", "--int8-io", "--representative", cache)
    code, out, err = _cli(*args)
    assert code == 0, err
    entry = json.loads((folder / "model.json").read_text())["files"]["int8"]
    assert entry["input_dtype"] == entry["output_dtype"] == "int8"
    assert entry["input_quantization"][0]["scale"] > 0
    assert "not scored" in out
    assert _cli(*args)[0] == 2
    code, _, err = _cli("export", "--model", run_dir / "best.keras", "--output", folder,
                        "--precision", "fp32", "--overwrite")
    assert code == 0, err
    assert list(json.loads((folder / "model.json").read_text())["files"]) == ["fp32", "keras"]
    # The int8 file the first export wrote is gone: model.json no longer lists it.
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{NAME}.keras", f"{NAME}_fp32.tflite", "model.json"]


def test_overwrite_removes_only_what_the_old_model_json_listed(work: Path, run_dir: Path):
    folder = work / "keeps_other_files"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    base = ("export", "--model", run_dir / "best.keras", "--output", folder)
    assert _cli(*base, "--precision", "fp32", "fp16")[0] == 0
    code, _, err = _cli(*base, "--precision", "fp16", "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{NAME}.keras", f"{NAME}_fp16.tflite", "model.json", "notes.txt"]
    assert (folder / "notes.txt").read_text() == "mine"


def test_a_keras_copy_already_there_is_not_replaced_without_overwrite(work: Path,
                                                                     run_dir: Path):
    folder = work / "keras_taken"
    folder.mkdir()
    (folder / f"{NAME}.keras").write_bytes(b"someone else's")
    code, _, err = _cli("export", "--model", run_dir / "best.keras", "--output", folder,
                        "--precision", "fp32")
    assert code == 2
    assert f"{NAME}.keras already there" in _one_error_line(err)
    assert [p.name for p in folder.iterdir()] == [f"{NAME}.keras"]
    assert (folder / f"{NAME}.keras").read_bytes() == b"someone else's"


def test_an_op_the_gpu_lacks_fails_with_exit_3(work: Path, run_dir: Path):
    import keras

    model = keras.models.load_model(run_dir / "best.keras", compile=False)
    raw = keras.layers.Dense(136, name="raw")(model.get_layer("points_ibug68").input)
    reversed_ = keras.ops.take(raw, np.arange(136)[::-1].copy(), axis=-1)
    points = keras.layers.Identity(name="points_ibug68")(reversed_)
    bad = keras.Model(model.input, {"points_ibug68": points}, name="with_gather")
    (work / "bad_run").mkdir()
    bad.save(work / "bad_run" / "best.keras")

    args = ("export", "--model", work / "bad_run" / "best.keras", "--output",
            work / "bad_out", "--precision", "fp32")
    code, _, err = _cli(*args)
    assert code == 3
    assert "GATHER" in _one_error_line(err)
    assert not (work / "bad_out").exists()

    code, _, err = _cli(*args, "--allow-cpu-fallback")
    assert code == 0
    assert "warning" in err and "GATHER" in err
    assert (work / "bad_out" / "with_gather_fp32.tflite").is_file()


def _empty_cache(folder: Path) -> Path:
    folder.mkdir()
    np.save(folder / "images.npy", np.zeros((0, 128, 128, 3), np.uint8))
    np.save(folder / "points.npy", np.zeros((0, 68, 2), np.float32))
    np.save(folder / "visibility.npy", np.zeros((0, 68), np.uint8))
    (folder / "faces.jsonl").write_text("")
    (folder / "manifest.json").write_text(json.dumps(
        {"scheme": "ibug68", "count": 0, "size": 128, "num_points": 68}))
    return folder


def test_bad_input_is_one_line_exit_2(work: Path, run_dir: Path, cache: Path,
                                      tmp_path: Path):
    import keras

    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a zip")
    inputs = keras.Input((SIZE, SIZE, 3))
    foreign = tmp_path / "foreign.keras"
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs))).save(foreign)
    model = run_dir / "best.keras"
    out = tmp_path / "out"
    cases = {
        "not a loadable Keras model": ("--model", garbage, "--output", out),
        "not a face-keypoints model": ("--model", foreign, "--output", out),
        "empty cache": ("--model", model, "--output", out, "--precision", "int8",
                        "--representative", _empty_cache(tmp_path / "empty")),
        "int8 needs --representative": ("--model", model, "--output", out, "--precision",
                                        "int8"),
        "takes the .keras": ("--model", cache / "images.npy", "--output", out),
        "choose from": ("--model", model, "--output", out, "--precision", "fp8"),
    }
    for message, args in cases.items():
        code, _, err = _cli("export", *args)
        assert code == 2, (message, err)
        assert message in _one_error_line(err)


def test_int8_worse_than_its_reference_by_more_than_5_percent_warns():
    warning = int8_drift(10.6, 10.0, "fp32")
    assert warning is not None
    assert "10.600%" in warning and "10.000%" in warning and "fp32" in warning
    assert "6.0% worse" in warning
    assert int8_drift(10.4, 10.0, "fp32") is None  # within 5 %
    assert int8_drift(10.6, None, "fp32") is None
    assert int8_drift(None, 10.0, "fp32") is None
    assert int8_drift(10.6, float("nan"), "the Keras model") is None


def test_model_json_records_each_files_drift_and_cpu_latency_and_the_cpu_pick(
        exported: tuple[Path, str]):
    from face_keypoints.export.tflite import cpu_pick

    folder, out = exported
    cpu = json.loads((folder / "model.json").read_text())["cpu"]
    assert set(cpu["files"]) == {"fp32", "fp16", "int8"}
    assert cpu["files"]["fp32"]["nme_drift_vs_fp32_pct"] == 0.0
    assert all(v["median_us"] > 0 and v["nme_pct"] is not None for v in cpu["files"].values())
    nme = {p: v["nme_pct"] for p, v in cpu["files"].items()}
    assert cpu["precision"] == cpu_pick(nme, {p: v["median_us"] for p, v in cpu["files"].items()})
    assert f"fastest {cpu['precision']} (" in out


def test_the_cpu_pick_is_the_fastest_file_within_1_percent_of_fp32():
    from face_keypoints.export.tflite import cpu_pick

    latency = {"fp32": 1192.0, "fp16": 1190.0, "int8": 572.0}
    assert cpu_pick({"fp32": 4.83, "fp16": 4.83, "int8": 4.84}, latency) == "int8"
    assert cpu_pick({"fp32": 4.83, "fp16": 4.83, "int8": 4.90}, latency) == "fp16"
    assert cpu_pick({"fp32": 4.83, "fp16": 4.83, "int8": None}, latency) == "fp16"
    assert cpu_pick({"fp16": 4.83, "int8": 4.84}, latency) is None  # nothing to compare with
