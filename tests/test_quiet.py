"""Stderr holds our own lines only: TensorFlow's, absl's and LiteRT's native log lines
(printed by C++ on descriptor 2) appear only with --verbose, before or after the verb.

Each case runs the real CLI in a subprocess, with TF_CPP_MIN_LOG_LEVEL removed from its
environment so that only the program decides what is shown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, cli_command, needs_model, run_on_a_terminal

# Pieces of the libraries' own start-up and log lines.
LIBRARY_MARKERS = ("oneDNN", "absl::InitializeLog", "cpu_feature_guard", "XNNPACK",
                   "TensorFlow Lite", "tensorflow/", "I0000 ", "W0000 ", "E0000 ")

def _run(*args: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def _library_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if any(m in line for m in LIBRARY_MARKERS)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A three-face cache of the 300-W fixture and an untrained small network (.keras)."""
    from face_keypoints.model.network import ModelSpec, build_model
    from face_keypoints.prepare import prepare

    work = tmp_path_factory.mktemp("quiet")
    prepare("300w", FIXTURES / "300w" / "afw", work / "cache", size=96, progress=False,
            log=lambda line: None)
    build_model(ModelSpec(depth=2, input_size=96)).save(work / "tiny.keras")
    return work / "cache", work / "tiny.keras"


def test_evaluate_and_export_keep_tensorflow_lines_off_stderr_unless_verbose(
        tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cache, model = tiny
    quiet = _run("evaluate", "--model", model, "--data", cache, "--json")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    exported = _run("export", "--model", model, "--output", tmp_path / "out", "--precision",
                    "fp32")
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr == ""
    verbose = _run("evaluate", "--model", model, "--data", cache, "--json", "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert _library_lines(verbose.stderr), verbose.stderr
    assert verbose.stdout == quiet.stdout  # the same result either way


def test_an_int8_export_keeps_the_converters_warning_off_stderr(
        tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """TensorFlow warns (UserWarning) that the float input of an int8 model has no
    statistics: what a float input is meant to have, and not the user's to act on."""
    cache, model = tiny
    exported = _run("export", "--model", model, "--output", tmp_path / "out", "--precision",
                    "int8", "--representative", cache)
    assert exported.returncode == 0, exported.stderr
    assert "Statistics for quantized inputs" not in exported.stderr
    assert "UserWarning" not in exported.stderr and not _library_lines(exported.stderr)


@needs_model
def test_the_python_api_keeps_litert_lines_off_stderr() -> None:
    """FaceLandmarker used as a library (no CLI, no --verbose) prints nothing: LiteRT's
    XNNPACK note for each interpreter stays off the caller's stderr."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    program = ("from face_keypoints import FaceLandmarker; "
               f"print(len(FaceLandmarker().detect({str(REPO / 'examples' / 'astronaut.jpg')!r})))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1" and done.stderr == ""


@needs_model
def test_predict_keeps_the_litert_line_off_stderr_unless_verbose(tmp_path: Path) -> None:
    photo = REPO / "examples" / "astronaut.jpg"
    quiet = _run("predict", photo, "--json")
    assert quiet.returncode == 0, quiet.stderr
    assert _library_lines(quiet.stderr) == [], quiet.stderr
    verbose = _run("--verbose", "predict", photo, "--json")  # the flag before the verb
    assert verbose.returncode == 0, verbose.stderr
    assert any("XNNPACK" in line for line in _library_lines(verbose.stderr)), verbose.stderr
    assert verbose.stdout == quiet.stdout


def test_every_verb_takes_verbose() -> None:
    from face_keypoints.cli import build_parser

    verbs = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for verb, parser in verbs.items():
        assert "--verbose" in parser.format_help(), verb


def test_evaluate_and_export_show_progress_on_a_terminal_only(
        tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """On a terminal, evaluate and export show a bar (they are silent for minutes on real
    data otherwise); into a pipe or a log, nothing but their result."""
    cache, model = tiny
    code, out, terminal = run_on_a_terminal("evaluate", "--model", model, "--data", cache,
                                            "--json")
    assert code == 0 and json.loads(out)["n"] == 3, terminal
    assert "evaluate: " in terminal and "face" in terminal
    code, _, terminal = run_on_a_terminal("export", "--model", model, "--output",
                                          tmp_path / "out", "--precision", "fp32", "fp16")
    assert code == 0, terminal
    assert "export: " in terminal and "file" in terminal
    piped = _run("evaluate", "--model", model, "--data", cache, "--json")
    assert piped.returncode == 0 and piped.stderr == ""
