"""The package's front door: `python -m face_keypoints`, and the verbs of the command line
as Python functions under the same names."""

from __future__ import annotations

import importlib
import subprocess
import sys

import face_keypoints

VERBS = ("prepare", "train", "evaluate", "export", "benchmark", "predict", "serve")


def test_python_dash_m_runs_the_program():
    result = subprocess.run([sys.executable, "-m", "face_keypoints", "--version"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"face-keypoints {face_keypoints.__version__}"


def test_every_verb_is_a_function_of_the_package_even_after_its_module_is_imported():
    """`face_keypoints.prepare` is the function, not the module of the same name, whether
    or not that module was imported first (the command line imports it)."""
    for verb, module in (("prepare", "prepare"), ("export", "export.export"),
                         ("benchmark", "benchmark"), ("predict", "predict")):
        importlib.import_module(f"face_keypoints.{module}")
        assert callable(getattr(face_keypoints, verb)), verb
    assert set(VERBS) <= set(face_keypoints.__all__)
    for name in face_keypoints.__all__:
        value = getattr(face_keypoints, name)
        assert callable(value) or name == "__version__", name
    assert face_keypoints.Face.__module__ == "face_keypoints.runtime.api"
