"""What a user meets after the README's first command, which installs no [train] extra:
the verbs that need TensorFlow say so in one line naming the extra, and those that do not
(predict and benchmark of a .tflite) never load it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, needs_model

# The CLI in a process where TensorFlow and Keras cannot be imported, as without the extra;
# prints the exit code and whether TensorFlow was loaded.
PROGRAM = """
import os, sys
for name in os.environ["BLOCKED"].split():
    sys.modules[name] = None
from face_keypoints.cli import main
code = main(sys.argv[1:])
print(code, "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None)
"""


def _run(*args: object, blocked: str = "tensorflow keras tensorboard") -> tuple[int, bool, str]:
    done = subprocess.run([sys.executable, "-c", PROGRAM, *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "BLOCKED": blocked})
    code, loaded = done.stdout.split()[-2:]
    return int(code), loaded == "True", done.stderr


@needs_model
@pytest.mark.parametrize("verb", ["export", "evaluate", "predict", "train"])
def test_a_verb_that_needs_tensorflow_names_the_extra_in_one_line(
        verb: str, tmp_path: Path) -> None:
    from face_keypoints.prepare import prepare

    cache = tmp_path / "cache"
    prepare("300w", FIXTURES / "300w" / "afw", cache, size=128, progress=False,
            log=lambda line: None)
    args = {"export": ("--model", "default", "--output", tmp_path / "out"),
            "evaluate": ("--model", "default:keras", "--data", cache),
            "predict": (REPO / "examples" / "astronaut.jpg", "--model", "default:keras"),
            "train": ("--data", cache, "--val", cache, "--output", tmp_path / "run",
                      "--backbone-weights", "none")}[verb]
    code, _, err = _run(verb, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"face-keypoints {verb}: error: this needs ")
    assert "pip install 'face-keypoints[train]'" in lines[0]


@needs_model
def test_predict_and_benchmark_of_a_tflite_never_load_tensorflow() -> None:
    code, loaded, err = _run("predict", REPO / "examples" / "astronaut.jpg")
    assert (code, loaded) == (0, False), err
    code, loaded, err = _run("benchmark", "--model", "default", "--runs", 1)
    assert (code, loaded) == (0, False), err


def test_export_refuses_a_bad_precision_before_tensorflow_loads(tmp_path: Path) -> None:
    code, loaded, err = _run("export", "--model", "default", "--output", tmp_path / "out",
                             "--precision", "fp8", blocked="")
    assert code == 2 and "precision fp8: choose from fp32, fp16, int8" in err, err
    assert not loaded
