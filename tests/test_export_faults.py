"""export killed or short of disk: the folder always holds one whole export (the old one
or the new one), a rerun finishes or removes what a killed export left, and a full or
read-only disk is one line.

A kill while converting is a real SIGKILL timed by the staging folder's appearance; a
kill between two renames of the commit (microseconds apart) is a SIGKILL sent by the
process itself right after its first rename there, from a wrapper of `os.replace`.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, cli_command

from face_keypoints.errors import BadInput
from face_keypoints.export.export import COMMIT, STAGING_PREFIX
from face_keypoints.resolve import resolve_model
from face_keypoints.runtime.predictor import load_predictor

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

# Runs the CLI with os.replace killing the process right after its first rename out of
# the commit folder: the moment between moving the files in and model.json.
KILLED_IN_COMMIT = f"""
import os, signal, sys
from pathlib import Path
real = os.replace
def replace(src, dst, *args, **kwargs):
    real(src, dst, *args, **kwargs)
    if Path(src).parent.name == {COMMIT!r}:
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from face_keypoints.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two small untrained networks of the same name with different weights."""
    import keras

    from face_keypoints.model.network import ModelSpec, build_model

    work = tmp_path_factory.mktemp("export_faults")
    paths = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        model = build_model(ModelSpec(depth=2, input_size=96))
        layer = model.get_layer("points_ibug68")
        layer.set_weights([layer.get_weights()[0] + 0.01 * seed, layer.get_weights()[1]])
        path = work / f"run{seed}" / "best.keras"
        path.parent.mkdir()
        model.save(path)
        paths.append(path)
    return paths[0], paths[1]


def _export(model: Path, output: Path, *extra: str) -> list[str]:
    return [*cli_command(), "export", "--model", str(model), "--output", str(output),
            "--precision", "fp32", "fp16", *extra]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def _whole(folder: Path) -> dict:
    """Assert `folder` holds one whole export: model.json names files whose digests match,
    the default precision loads, and nothing hidden is left beside them."""
    card = json.loads((folder / "model.json").read_text())
    for entry in card["files"].values():
        data = (folder / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
    load_predictor(resolve_model(folder))
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
    return card


def _first_export(model: Path, tmp_path: Path) -> tuple[Path, dict]:
    """tmp_path/out holding a whole export of `model`, and its model.json."""
    out = tmp_path / "out"
    assert _run(_export(model, out)).returncode == 0
    return out, _whole(out)


def test_export_killed_while_converting_keeps_the_old_export_and_a_rerun_cleans_up(
        models: tuple[Path, Path], tmp_path: Path) -> None:
    out, old = _first_export(models[0], tmp_path)
    second = models[1]
    process = subprocess.Popen(_export(second, out, "--overwrite"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(out.glob(f"{STAGING_PREFIX}*")) and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(out.glob(f"{STAGING_PREFIX}*")), "not killed while converting"
    card = json.loads((out / "model.json").read_text())
    assert card["files"] == old["files"]  # the old export, untouched and usable
    load_predictor(resolve_model(out))

    rerun = _run(_export(second, out, "--overwrite"))
    assert rerun.returncode == 0, rerun.stderr
    assert _whole(out)["files"] != old["files"]


def test_export_killed_between_its_renames_is_finished_by_the_rerun(
        models: tuple[Path, Path], tmp_path: Path) -> None:
    out, old = _first_export(models[0], tmp_path)
    second = models[1]
    killed = subprocess.run([sys.executable, "-c", KILLED_IN_COMMIT,
                             *_export(second, out, "--overwrite")[len(cli_command()):]],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / COMMIT).is_dir()
    # model.json was never removed: the folder still loads as a model.
    assert (out / "model.json").is_file()
    load_predictor(resolve_model(out))

    # The same command without --overwrite: the killed export is finished first, then
    # this one is refused, as the export is there.
    refused = _run(_export(second, out))
    assert refused.returncode == 2 and "--overwrite" in refused.stderr, refused.stderr
    finished = _whole(out)
    assert finished["files"] != old["files"]
    keras_file = out / finished["files"]["keras"]["file"]
    assert keras_file.read_bytes() == second.read_bytes()
    assert _run(_export(second, out, "--overwrite")).returncode == 0
    _whole(out)


def test_export_on_a_full_or_read_only_disk_is_one_line(models: tuple[Path, Path],
                                                        small_disk) -> None:
    disk = small_disk("64k")  # too small for the model's files
    for reason, errno_ in (("full", 28), ("read-only", 30)):  # ENOSPC, EROFS
        if reason == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        done = _run(_export(models[0], disk / "out"))
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("face-keypoints export: error: ")
        assert str(disk / "out") in lines[0] and os.strerror(errno_) in lines[0]
        assert list(disk.iterdir()) == []


def test_a_file_that_does_not_match_its_card_is_refused_by_every_reader(
        models: tuple[Path, Path], tmp_path: Path) -> None:
    """A new .tflite under the old model.json (an export killed while publishing, or a
    file copied in by hand) is refused in one line, not run under a card not its own."""
    out, card = _first_export(models[0], tmp_path)
    fp16, fp32 = (out / card["files"][p]["file"] for p in ("fp16", "fp32"))
    fp16.write_bytes(fp32.read_bytes())  # a valid model, not the one model.json describes
    for verb, extra in (("predict", [str(REPO / "examples" / "astronaut.jpg")]),
                        ("benchmark", ["--runs", "1"])):
        done = _run([*cli_command(), verb, "--model", str(out), *extra])
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "sha256 differs" in lines[0] and str(fp16) in lines[0]
    with pytest.raises(BadInput, match="sha256 differs"):
        load_predictor(resolve_model(out))
    load_predictor(resolve_model(f"{out}:fp32"))  # its own files still load


def test_a_second_export_into_an_output_being_written_is_refused_in_one_line(
        models: tuple[Path, Path], tmp_path: Path) -> None:
    """One run owns an output at a time: while a run holds it, another export there
    exits 2 naming the lock, and writes nothing; once it is released, export runs."""
    from face_keypoints.fileio import owned

    out = tmp_path / "out"
    with owned(out):
        busy = _run(_export(models[0], out))
        assert busy.returncode == 2, busy.stderr
        lines = [line for line in busy.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "another run is writing there now" in lines[0]
        assert not out.exists()
    assert _run(_export(models[0], out)).returncode == 0
    _whole(out)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the lock is gone with its run
