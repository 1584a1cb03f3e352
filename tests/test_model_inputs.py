"""What `--model` accepts besides a file (an export folder, a run folder, the shipped
`lite` model) and how it refuses what is not a model (a folder without one, a FIFO, a
damaged .keras); and `evaluate --output` that cannot be written failing before scoring.

The model is a small untrained network exported here; the cache is the 300-W fixture.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, needs_model

from face_keypoints.errors import BadInput
from face_keypoints.resolve import KERAS, LITE, resolve_model, shipped_folder
from face_keypoints.runtime.predictor import load_predictor


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A run folder (best.keras), its export (fp32 only) and a three-face cache."""
    from face_keypoints.export.export import export
    from face_keypoints.model.network import ModelSpec, build_model
    from face_keypoints.prepare import prepare

    root = tmp_path_factory.mktemp("model_inputs")
    (root / "run").mkdir()
    build_model(ModelSpec(depth=2, input_size=96)).save(root / "run" / "best.keras")
    export(root / "run", root / "exported", precisions=["fp32"])
    prepare("300w", FIXTURES / "300w" / "afw", root / "cache", size=96, progress=False,
            log=lambda line: None)
    return {"run": root / "run", "exported": root / "exported", "cache": root / "cache"}


def _one_error_line(err: str, verb: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"face-keypoints {verb}: error: "), err
    return lines[0]


def test_an_export_folder_is_its_model(work: dict[str, Path], run_cli) -> None:
    folder = work["exported"]
    card = json.loads((folder / "model.json").read_text())
    fp32, keras_copy = (folder / card["files"][p]["file"] for p in ("fp32", "keras"))
    assert resolve_model(folder).path == fp32  # no fp16 in it: the next preferred precision
    assert resolve_model(str(folder)).path == fp32
    assert resolve_model(f"{folder}:keras").path == keras_copy
    assert resolve_model(folder, prefer=KERAS).path == keras_copy
    result = run_cli("evaluate", "--model", folder, "--data", work["cache"], "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["model"] == str(fp32)
    with pytest.raises(BadInput, match=r"no precision 'int8'.*:fp32"):
        resolve_model(f"{folder}:int8")


def test_a_run_folder_is_its_best_keras(work: dict[str, Path], run_cli) -> None:
    from face_keypoints.runtime.api import FaceLandmarker

    run = work["run"]
    assert resolve_model(run).path == run / "best.keras"
    assert load_predictor(run).path == run / "best.keras"
    assert FaceLandmarker(run).landmarker.path == run / "best.keras"
    result = run_cli("evaluate", "--model", run, "--data", work["cache"], "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["model"] == str(run / "best.keras")


def test_a_folder_without_a_model_says_what_it_holds(tmp_path: Path, run_cli,
                                                     work: dict[str, Path]) -> None:
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    with pytest.raises(BadInput) as err:
        resolve_model(tmp_path)
    message = str(err.value)
    assert "model.json" in message and "best.keras" in message
    assert message.endswith("it holds notes.txt, sub/")
    result = run_cli("evaluate", "--model", tmp_path, "--data", work["cache"])
    assert result.code == 2
    assert "it holds notes.txt, sub/" in _one_error_line(result.err, "evaluate")
    with pytest.raises(BadInput, match=f"no such model file; {tmp_path} holds notes.txt, sub/$"):
        load_predictor(tmp_path / "model.tflite")


def test_lite_is_the_shipped_lite_model_or_one_line_saying_it_is_absent(
        tmp_path: Path) -> None:
    if (shipped_folder(LITE) / "model.json").is_file():
        assert resolve_model(LITE).path.parent == shipped_folder(LITE)
    else:
        for name in (LITE, f"{LITE}:fp32"):
            with pytest.raises(BadInput, match="lite model is not shipped in this installation"):
                resolve_model(name)
    # An installation whose lite folder is empty says the same, in one line.
    with pytest.raises(BadInput, match="no lite landmark model is shipped") as err:
        resolve_model(LITE, folder=tmp_path)
    assert "\n" not in str(err.value)


def test_a_fifo_is_not_called_a_missing_file(tmp_path: Path, run_cli,
                                             work: dict[str, Path]) -> None:
    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match="not a regular file"):
        load_predictor(fifo)
    result = run_cli("evaluate", "--model", fifo, "--data", work["cache"])
    assert result.code == 2
    line = _one_error_line(result.err, "evaluate")
    assert "not a regular file" in line and "no such" not in line


@needs_model
def test_predict_reports_a_fifo_input_as_not_a_regular_file(tmp_path: Path, run_cli) -> None:
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    result = run_cli("predict", fifo, REPO / "examples" / "astronaut.jpg")
    assert result.code == 1
    assert f"failed {fifo}: not a regular file" in result.err


def test_a_damaged_keras_file_is_not_called_missing(tmp_path: Path,
                                                    work: dict[str, Path]) -> None:
    real = (work["run"] / "best.keras").read_bytes()
    for name, data in (("garbage.keras", b"not a model at all"),
                       ("truncated.keras", real[: len(real) // 2])):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(BadInput) as err:
            load_predictor(path)
        assert "not a loadable Keras model" in str(err.value)
        assert "not found" not in str(err.value).lower()


def test_evaluate_output_that_cannot_be_written_fails_before_scoring(
        tmp_path: Path, run_cli, work: dict[str, Path]) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for output in (blocker, blocker / "pictures"):
        result = run_cli("evaluate", "--model", work["run"], "--data", work["cache"],
                         "--output", output)
        assert result.code == 2
        assert f"--output {output}" in _one_error_line(result.err, "evaluate")
        assert result.out == ""  # no scores printed, none lost


@pytest.mark.parametrize("as_json", [True, False])
def test_evaluate_prints_its_scores_before_a_full_disk_stops_the_pictures(
        small_disk, run_cli, work: dict[str, Path], as_json: bool) -> None:
    """The scores are computed before the pictures are drawn: a disk that fills while
    they are written loses the pictures, not the scores, and the line names the folder."""
    disk = small_disk("24k")
    result = run_cli("evaluate", "--model", work["run"], "--data", work["cache"],
                     "--output", disk, *(["--json"] if as_json else []))
    assert result.code == 2
    line = _one_error_line(result.err, "evaluate")
    assert f"{disk}: cannot write the pictures" in line and "(the scores were computed)" in line
    if as_json:
        assert json.loads(result.out)["n"] == 3
    else:
        assert "NME inter-ocular" in result.out


@needs_model
def test_a_fifo_inside_a_predict_folder_is_reported_and_the_rest_go_on(
        tmp_path: Path, run_cli) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    os.mkfifo(folder / "stream.jpg")
    (folder / "astronaut.jpg").write_bytes((REPO / "examples" / "astronaut.jpg").read_bytes())
    result = run_cli("predict", folder, "--json")
    assert result.code == 1
    assert f"failed {folder / 'stream.jpg'}: not a regular file" in result.err
    assert json.loads(result.out.splitlines()[0])["image"] == str(folder / "astronaut.jpg")


@needs_model
@pytest.mark.parametrize("verb", ["evaluate", "benchmark", "predict"])
def test_every_verb_bounds_threads_in_one_line(verb: str, run_cli,
                                               work: dict[str, Path]) -> None:
    """A huge --threads starts that many LiteRT threads and crashes the process (exit
    139); every verb that takes it refuses it first."""
    args = {"evaluate": ("--data", work["cache"]), "benchmark": ("--runs", 1),
            "predict": (REPO / "examples" / "astronaut.jpg",)}[verb]
    result = run_cli(verb, "--model", "default", "--threads", 100000, *args)
    assert result.code == 2
    assert "threads 100000: give 1 to" in _one_error_line(result.err, verb)


def test_a_misspelt_shipped_name_suggests_it(run_cli, work: dict[str, Path]) -> None:
    with pytest.raises(BadInput, match=r"defualt: no such model file; did you mean default\?"):
        resolve_model("defualt")
    with pytest.raises(BadInput, match=r"did you mean lite:int8\?"):
        resolve_model("litte:int8")
    result = run_cli("evaluate", "--model", "defualt:fp32", "--data", work["cache"])
    assert "did you mean default:fp32?" in _one_error_line(result.err, "evaluate")
