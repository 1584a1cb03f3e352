"""The train verb's defaults and its faults: `--help` shows every built-in default (the
shipped recipe), bad settings fail in one line before a run folder exists, a diverging
run stops in one line and leaves a folder a rerun can use, a run killed in its first
epoch starts again without --overwrite, and a full or read-only disk is one line.

Training runs use a seven-face cache of the YouTube-Faces fixture and a two-block
network without ImageNet weights, so each takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES, REPO, SHARED_DATA, cli_command

from face_keypoints.config import TrainConfig

RECIPE = REPO / "configs" / "ibug68_a025_128.yaml"
WEIGHTS = SHARED_DATA.parent / "weights" / "mobilenet_2_5_224_tf_no_top.h5"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from face_keypoints.prepare import prepare

    out = tmp_path_factory.mktemp("train_faults") / "youtube"
    prepare("youtube68", FIXTURES / "youtube_faces_68", out, size=96, progress=False,
            log=lambda line: None)
    return out


def _train(cache: Path, run: Path, *extra: object) -> list[str]:
    return [*cli_command(), "train", "--data", str(cache), "--val", str(cache), "--output",
            str(run), "--input-size", "96", "--batch-size", "2", "--depth", "2",
            "--backbone-weights", "none", "--epochs", "1", "--no-progress",
            *map(str, extra)]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if "train: error:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


def _strict_json(path: Path) -> dict:
    """The file as JSON, refusing NaN and Infinity (which JSON does not have)."""
    def refuse(name: str) -> None:
        raise AssertionError(f"{path} holds {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_built_in_defaults_are_the_shipped_recipe() -> None:
    recipe = yaml.safe_load(RECIPE.read_text())
    defaults = TrainConfig()
    for name in ("epochs", "batch_size", "alpha", "depth", "input_size", "head", "loss",
                 "learning_rate", "weight_decay", "warmup_epochs", "dropout",
                 "early_stopping", "augment"):
        assert getattr(defaults, name) == recipe[name], name


def test_train_help_shows_every_default(run_cli) -> None:
    from face_keypoints.cli import _TRAIN_FLAGS, build_parser

    verbs = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    helps = {action.dest: " ".join((action.help or "").split())
             for action in verbs["train"]._actions}
    defaults = TrainConfig()
    for name in _TRAIN_FLAGS:
        value = getattr(defaults, name)
        expected = "(no default)" if value in ("", []) else f"(default {value})"
        assert helps[name].endswith(expected), (name, helps[name])
    shown = " ".join(run_cli("train", "--help").out.split())
    assert "(default gap)" in shown and "(default 128)" in shown
    for name in ("weight_decay", "warmup_epochs", "dropout", "steps_per_epoch", "augment"):
        assert f"{name} {getattr(defaults, name)}" in shown, name


@pytest.mark.parametrize("setting, value", [("alpha", "wide"), ("input_size", [128, 128]),
                                            ("epochs", 2.5), ("data", "cache")])
def test_a_config_value_of_the_wrong_type_is_one_line_naming_it_before_any_run_folder(
        run_cli, tmp_path: Path, setting: str, value: object) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({setting: value}))
    result = run_cli("train", "--config", config, "--data", "c", "--val", "c", "--output",
                     tmp_path / "run")
    assert result.code == 2
    line = _error_line(result.err)
    assert f"{config}: {setting}: must be" in line and repr(value) in line, line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags, config, named", [
    (("--learning-rate", "-1"), {}, "--learning-rate"),
    (("--learning-rate", "nan"), {}, "--learning-rate"),
    (("--alpha", "inf"), {}, "--alpha"),
    ((), {"learning_rate": float("nan")}, "--learning-rate"),
    ((), {"weight_decay": -1.0}, "weight_decay"),
    ((), {"qat_learning_rate": float("inf")}, "--qat-learning-rate"),
    ((), {"augment": {"rotation": float("nan")}}, "rotation"),
    (("--head", "gapp"), {}, "--head"),
    (("--loss", "wingg"), {}, "--loss"),
    ((), {"head": "heatmap"}, "--head heatmap: choose one of gap, flatten"),
    ((), {"loss": "huber"}, "--loss huber: choose one of wing, l1, l2"),
])
def test_unknown_or_out_of_range_settings_are_refused_before_any_run_folder_or_cache(
        run_cli, tmp_path: Path, flags: tuple[str, ...], config: dict, named: str) -> None:
    file = tmp_path / "config.yaml"
    file.write_text(yaml.safe_dump(config))
    result = run_cli("train", "--config", file, "--data", "c", "--val", "c", "--output",
                     tmp_path / "run", *flags)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.err
    assert "c:" not in lines[0]  # the cache "c", which does not exist, was never opened
    assert not (tmp_path / "run").exists()


def test_a_diverging_run_fails_in_one_line_and_a_rerun_trains(cache: Path,
                                                              tmp_path: Path) -> None:
    run = tmp_path / "run"
    diverged = _run(_train(cache, run, "--learning-rate", "1e12"))
    assert diverged.returncode == 2
    assert "training diverged in epoch 1" in _error_line(diverged.stderr)
    assert not (run / "metrics.json").exists() and not (run / "best.keras").exists()

    # No --overwrite needed. At this rate the run ends far from the mean shape it started
    # from, and says so in one line, also kept in metrics.json.
    again = _run(_train(cache, run, "--learning-rate", "1"))
    assert again.returncode == 0, again.stderr
    metrics = _strict_json(run / "metrics.json")
    assert (run / "best.keras").is_file() and metrics["epochs_run"] == 1
    assert metrics["best_val_nme"] > 2 * metrics["mean_shape_val_nme"] > 0
    (warning,) = metrics["warnings"]
    assert "no better than" in warning and "mean shape" in warning
    assert [line for line in again.stderr.splitlines() if "mean shape" in line] == [
        f"warning: {warning}"]


def _killed_in_first_epoch(command: list[str], run: Path) -> None:
    """Start `command`, SIGKILL it once the run has marked its folder (its first epoch is
    far from over: steps_per_epoch is huge)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (run / "state.json").exists() and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (run / "state.json").exists() and not (run / "metrics.json").exists()


def test_a_run_killed_in_its_first_epoch_starts_again_without_overwrite(
        cache: Path, tmp_path: Path) -> None:
    long, short = tmp_path / "long.yaml", tmp_path / "short.yaml"
    long.write_text(yaml.safe_dump({"steps_per_epoch": 100000}))
    short.write_text(yaml.safe_dump({"steps_per_epoch": 1}))
    for name, again in (("plain", ()), ("resumed", ("--resume",))):
        run = tmp_path / name
        _killed_in_first_epoch(_train(cache, run, "--config", long), run)
        rerun = _run(_train(cache, run, "--config", short, *again))
        assert rerun.returncode == 0, rerun.stderr
        assert ("starting afresh" in rerun.stderr) == bool(again)
        metrics = _strict_json(run / "metrics.json")
        assert [h["epoch"] for h in metrics["history"]] == [1]
        assert TrainConfig.load(run / "config.yaml").steps_per_epoch == 1


def test_train_on_a_full_or_read_only_disk_is_one_line(cache: Path, small_disk) -> None:
    disk = small_disk("200k")  # room for the config, not for the first checkpoint
    full = _run(_train(cache, disk / "run"))
    assert full.returncode == 2
    assert os.strerror(28) in _error_line(full.stderr)  # ENOSPC: "No space left on device"
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    read_only = _run(_train(cache, disk / "other"))
    assert read_only.returncode == 2
    line = _error_line(read_only.stderr)
    assert str(disk / "other") in line and os.strerror(30) in line  # EROFS


@pytest.mark.parametrize(("key", "value"), [("steps_per_epoch", 1_000_000_000_000),
                                            ("epochs", 10**9), ("batch_size", 10**7)])
def test_a_huge_number_in_a_config_is_one_line_naming_the_key(run_cli, tmp_path: Path,
                                                               key: str, value: int) -> None:
    """Bounded like the flags: a number too large to train with fails at once, before it
    allocates (1e12 steps an epoch was a MemoryError traceback)."""
    config = tmp_path / "huge.yaml"
    config.write_text(f"{key}: {value}\n")
    result = run_cli("train", "--config", config, "--output", tmp_path / "run")
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    assert f"{key} {value}: must be at most" in lines[0]
    assert not (tmp_path / "run").exists()


def test_input_size_help_says_a_multiple_of_16(run_cli) -> None:
    result = run_cli("train", "--help")
    assert "a multiple of 16 in 96-224" in " ".join(result.out.split())


def test_resume_over_a_damaged_checkpoint_starts_from_the_last_intact_one(
        cache: Path, tmp_path: Path) -> None:
    """A partial copy of a run folder (no metrics.json) whose newest checkpoint is damaged,
    then missing: --resume says so in one line and trains again from the intact one; with
    none intact, one line and exit 2. What a kill while saving left (a write_atomic
    temporary, a ckpt-N_temp folder) is gone after the resume."""
    config = tmp_path / "short.yaml"
    config.write_text(yaml.safe_dump({"steps_per_epoch": 1}))
    run = tmp_path / "run"
    assert _run(_train(cache, run, "--config", config, "--epochs", 3)).returncode == 0
    checkpoints = run / "checkpoints"
    for damage in ("damaged", "missing"):
        (run / "metrics.json").unlink()
        index = checkpoints / "ckpt-3.index"
        if damage == "damaged":
            index.write_bytes(b"not a checkpoint index" * 10)
        else:
            index.unlink()
        (run / ".best.abcd1234.tmp.keras").write_bytes(b"half a model")
        (checkpoints / "ckpt-3_temp").mkdir()
        resumed = _run(_train(cache, run, "--config", config, "--epochs", 3, "--resume"))
        assert resumed.returncode == 0, resumed.stderr
        assert "Traceback" not in resumed.stderr
        notes = [line for line in resumed.stderr.splitlines() if "ckpt-3" in line]
        assert len(notes) == 1 and "resuming from ckpt-2" in notes[0], resumed.stderr
        assert [h["epoch"] for h in _strict_json(run / "metrics.json")["history"]] == [1, 2, 3]
        assert not (run / ".best.abcd1234.tmp.keras").exists()
        assert not (checkpoints / "ckpt-3_temp").exists()
    (run / "metrics.json").unlink()
    for number in (2, 3):
        (checkpoints / f"ckpt-{number}.index").write_bytes(b"garbage")
    broken = _run(_train(cache, run, "--config", config, "--epochs", 3, "--resume"))
    assert broken.returncode == 2
    assert "ckpt-3: damaged or missing checkpoint" in _error_line(broken.stderr)
    assert "no intact earlier one" in _error_line(broken.stderr)


@pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"{WEIGHTS} is absent (the shared weights "
                    "sit beside the repository on CI and developer machines)")
def test_backbone_weights_of_another_width_name_both_widths_in_one_line(
        cache: Path, tmp_path: Path) -> None:
    done = _run(_train(cache, tmp_path / "run", "--alpha", 0.5, "--backbone-weights", WEIGHTS))
    assert done.returncode == 2
    line = _error_line(done.stderr)
    assert "holds MobileNet weights of width 0.25, and --alpha is 0.5" in line
    assert "mobilenet_5_0_224_tf_no_top.h5" in line
