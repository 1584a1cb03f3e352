"""The train verb: losses, config, a real short training that is killed and resumed,
tf.distribute's mirrored strategy, two worker processes (multi-worker strategy), the guard
on finished runs, the int8-grid epochs, a run that starts from another trained model, and
output calibration."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import FIXTURES, SHARED_DATA, needs_shared

from face_keypoints.config import TrainConfig
from face_keypoints.errors import BadInput

WEIGHTS = SHARED_DATA.parent / "weights" / "mobilenet_2_5_224_tf_no_top.h5"
CLI = [sys.executable, "-m", "face_keypoints.cli"]


def test_losses_match_hand_computed_values_and_respect_masks() -> None:
    import tensorflow as tf

    from face_keypoints.model.losses import point_loss

    # One face, two points; the second point is masked out and must not count.
    predicted = tf.constant([[0.10, 0.20, 0.90, 0.90]])
    target = tf.constant([[[0.13, 0.16], [0.0, 0.0]]])
    mask = tf.constant([[1.0, 0.0]])
    # Errors in percent of the crop: dx = 3, dy = 4.
    l1, n = point_loss("l1", predicted, target, mask)
    l2, _ = point_loss("l2", predicted, target, mask)
    wing, _ = point_loss("wing", predicted, target, mask)
    assert float(n) == 1.0
    assert float(l1) == pytest.approx(7.0, rel=1e-5)
    assert float(l2) == pytest.approx(25.0, rel=1e-5)
    expected_wing = 10 * np.log(1 + 3 / 2) + 10 * np.log(1 + 4 / 2)
    assert float(wing) == pytest.approx(expected_wing, rel=1e-5)
    # Past w = 10 the Wing loss is linear and continuous with its log part.
    far = tf.constant([[[0.10 + 0.30, 0.20]]])
    big, _ = point_loss("wing", predicted[:, :2], far, tf.constant([[1.0]]))
    c = 10 - 10 * np.log(1 + 10 / 2)
    assert float(big) == pytest.approx(30 - c, rel=1e-5)


def test_config_round_trips_through_its_file_and_rejects_unknown_settings(
        tmp_path: Path) -> None:
    config = TrainConfig(data=["a", "b"], val="v", alpha=0.5, augment={"rotation": 20.0})
    config.save(tmp_path / "config.yaml")
    assert TrainConfig.load(tmp_path / "config.yaml") == config
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"alpha": 0.5, "widht": 3}))
    with pytest.raises(BadInput, match="unknown setting"):
        TrainConfig.load(tmp_path / "bad.yaml")


def test_depth_and_width_change_the_network() -> None:
    from face_keypoints.model.network import ModelSpec, build_model

    full = build_model(ModelSpec(alpha=0.25, depth=13, input_size=96, head="gap"))
    shallow = build_model(ModelSpec(alpha=0.25, depth=9, input_size=96, head="gap"))
    wide = build_model(ModelSpec(alpha=0.5, depth=13, input_size=96, head="gap"))
    assert shallow.count_params() < full.count_params() < wide.count_params()
    with pytest.raises(ValueError, match="depth"):
        ModelSpec(depth=14).check()
    with pytest.raises(ValueError, match="alpha"):
        ModelSpec(alpha=0.3).check()


def test_copy_matching_weights_carries_the_backbone_and_shared_heads() -> None:
    from face_keypoints.model.network import ModelSpec, build_model, copy_matching_weights

    def tiny(**changes):
        return build_model(ModelSpec(**{"depth": 5, "input_size": 96, "head": "gap"} | changes))

    source = tiny(schemes=["ibug68", "aflw21"])
    target = tiny(schemes=["ibug68", "wflw98"])
    assert copy_matching_weights(target, source) == ["points_wflw98"]
    for name in ("conv1", "conv_dw_5", "conv_pw_5_bn", "points_ibug68"):
        for got, want in zip(target.get_layer(name).get_weights(),
                             source.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
    wider = tiny(alpha=0.5)
    assert "conv_pw_1" in copy_matching_weights(wider, source)


def _prepared_300w(factory: pytest.TempPathFactory, part: str) -> Path:
    """A 128 px cache of one 300-W part of the real data (the test skips without it)."""
    from face_keypoints.prepare import prepare

    source = SHARED_DATA / "300w" / part
    if not source.exists():
        pytest.skip(f"real data {source} is absent")
    out = factory.mktemp("caches") / part
    prepare("300w", source, out, size=128, progress=False, log=lambda line: None)
    return out


@pytest.fixture(scope="module")
def afw_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _prepared_300w(tmp_path_factory, "afw")


@pytest.fixture(scope="module")
def helen_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _prepared_300w(tmp_path_factory, "helen_trainset")


def _train_command(cache: Path, run: Path, *extra: str) -> list[str]:
    return [*CLI, "train", "--data", str(cache), "--val", str(cache), "--output", str(run),
            "--input-size", "96", "--batch-size", "32", "--backbone-weights", str(WEIGHTS),
            "--no-progress", *extra]


def _epochs_done(run: Path) -> int:
    try:
        return json.loads((run / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def test_an_epoch_of_a_small_data_set_draws_it_until_it_makes_the_minimum_steps() -> None:
    from face_keypoints.config import MIN_STEPS_PER_EPOCH
    from face_keypoints.training.data import epoch_passes

    assert MIN_STEPS_PER_EPOCH == 20
    # AFW's 337 faces at the default batch of 64: one pass is 5 steps, 4 passes are 21.
    quick = TrainConfig(data=["afw"], val="afw")
    assert epoch_passes(quick, [337]) == 4
    # A data set of 20 batches or more (every recipe: 130 to 195 steps) is drawn once,
    # so its stream, steps and schedule are those of one pass, as before.
    assert epoch_passes(quick, [20 * 64]) == 1
    assert epoch_passes(quick, [12521]) == 1
    assert epoch_passes(quick, [20 * 64 - 1]) == 2
    # steps_per_epoch is honoured, drawing the passes it needs; fewer steps than a pass
    # take the first batches of one pass.
    assert epoch_passes(TrainConfig(data=["afw"], steps_per_epoch=100), [337]) == 19
    assert epoch_passes(TrainConfig(data=["afw"], steps_per_epoch=3), [337]) == 1
    # Weighted caches keep their shares; rounding a fractional share never leaves an
    # epoch short of the steps.
    mixed = TrainConfig(data=[{"path": "a", "weight": 1.5}, {"path": "b", "weight": 0.5}],
                        batch_size=7)
    passes = epoch_passes(mixed, [3, 5])
    assert round(1.5 * passes * 3) + round(0.5 * passes * 5) >= 20 * 7
    assert round(1.5 * (passes - 1) * 3) + round(0.5 * (passes - 1) * 5) < 20 * 7


@needs_shared("300w", "afw")
def test_the_quick_run_on_afw_ends_below_the_mean_shape(afw_cache: Path,
                                                         tmp_path: Path) -> None:
    """Issue 16's newcomer run: 3 epochs at the default batch of 64 on 337 faces. With one
    pass an epoch (5 steps) it ended above the mean shape it started from."""
    run = tmp_path / "quick"
    done = subprocess.run([*CLI, "train", "--data", str(afw_cache), "--val", str(afw_cache),
                           "--output", str(run), "--epochs", "3", "--input-size", "96",
                           "--backbone-weights", str(WEIGHTS), "--no-progress"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "(1348 samples an epoch, 4 passes over the faces)" in done.stderr
    assert "21 steps of 64 per epoch" in done.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_epoch"] == 3 and metrics["warnings"] == []
    assert metrics["best_val_nme"] < 0.8 * metrics["mean_shape_val_nme"], metrics


@needs_shared("300w", "afw")
def test_killed_training_resumes_and_beats_the_mean_shape(afw_cache: Path,
                                                          tmp_path: Path) -> None:
    from face_keypoints.baseline import MeanShapePredictor
    from face_keypoints.data.cache import open_cache
    from face_keypoints.evaluate import evaluate

    run = tmp_path / "run"
    one_pass = tmp_path / "one_pass.yaml"  # 10 steps of 32, kept short
    one_pass.write_text(yaml.safe_dump({"steps_per_epoch": 10}))
    command = _train_command(afw_cache, run, "--epochs", "20", "--config", str(one_pass))
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.monotonic() + 240
    while _epochs_done(run) < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)  # well inside the next epoch
    first.send_signal(signal.SIGKILL)
    first.communicate()
    killed_after = _epochs_done(run)
    assert 3 <= killed_after < 20, "the run was not killed mid-training"
    assert not (run / "metrics.json").exists()

    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr  # no silent restart

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} after epoch {killed_after}" in resumed.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == list(range(1, 21))
    for name in ("best.keras", "config.yaml", "log.csv", "curves.png"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").iterdir())

    cache = open_cache(afw_cache)
    model = evaluate(run / "best.keras", afw_cache)
    baseline = evaluate(MeanShapePredictor(cache, 96), afw_cache)
    assert model["nme"] < 0.85 * baseline["nme"], (model["nme"], baseline["nme"])
    # train measured the same starting point, and had nothing to warn about.
    assert metrics["mean_shape_val_nme"] == pytest.approx(baseline["nme"], abs=1e-3)
    assert metrics["warnings"] == [] and "mean shape" not in resumed.stderr

    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 2
    assert "finished run" in finished.stderr and "Traceback" not in finished.stderr


@needs_shared("300w", "afw")
def test_mirrored_strategy_trains_on_two_logical_cpus(afw_cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "mirrored"
    config = tmp_path / "short.yaml"
    config.write_text(yaml.safe_dump({"steps_per_epoch": 3, "epochs": 1}))
    done = subprocess.run(_train_command(afw_cache, run, "--config", str(config),
                                         "--distribute", "mirrored"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "2 replica(s)" in done.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 1
    assert TrainConfig.load(run / "config.yaml").distribute == "mirrored"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(command: list[str], ports: list[int]) -> list[subprocess.Popen]:
    """One training process per TF_CONFIG worker on 127.0.0.1, each on one CPU core."""
    cores = sorted(os.sched_getaffinity(0)) if shutil.which("taskset") else []
    workers = []
    for index in range(len(ports)):
        cluster = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                   "task": {"type": "worker", "index": index}}
        pin = ["taskset", "-c", str(cores[index % len(cores)])] if cores else []
        workers.append(subprocess.Popen(
            [*pin, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=os.environ | {"TF_CONFIG": json.dumps(cluster), "TF_NUM_INTRAOP_THREADS": "1",
                              "TF_CPP_MIN_LOG_LEVEL": "3"}))
    return workers


@needs_shared("300w", "afw")
def test_two_workers_train_as_one_write_one_run_folder_and_resume_after_the_chief_dies(
        afw_cache: Path, tmp_path: Path) -> None:
    config = tmp_path / "short.yaml"
    # A learning rate low enough that a run follows its batches rather than chance. Measured
    # with these settings: two seeds of the one-worker run differ by 0.72 validation NME
    # points and 0.41 in training loss (means over the 5 epochs); the two-worker run
    # differs from the one-worker run of its seed by 0.13 and 0.055.
    config.write_text(yaml.safe_dump({"steps_per_epoch": 3, "epochs": 5,
                                      "learning_rate": 2e-4}))
    single = tmp_path / "single"
    done = subprocess.run(_train_command(afw_cache, single, "--config", str(config)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    run = tmp_path / "workers"
    command = _train_command(afw_cache, run, "--config", str(config),
                             "--distribute", "multiworker")
    chief, other = _start_workers(command, _free_ports(2))
    deadline = time.monotonic() + 300
    while _epochs_done(run) < 2 and chief.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    chief.send_signal(signal.SIGKILL)  # mid-run
    chief.communicate()
    try:  # the other worker finds its peer gone at the next step that needs it
        _, other_err = other.communicate(timeout=120)
    finally:
        other.kill()
    killed_after = _epochs_done(run)
    assert other.returncode == 2
    assert (f"train: error: lost another worker after epoch {killed_after}"
            in other_err.splitlines()[-1]), other_err
    assert 2 <= killed_after < 5, "the chief was not killed mid-run"
    assert not (run / "metrics.json").exists()
    # The other worker saved its checkpoints, as every worker must, outside the run folder.
    (scratch,) = re.findall(r"worker1: the chief writes .*; this worker writes (.+)", other_err)
    assert list((Path(scratch) / "checkpoints").iterdir())

    workers = _start_workers([*command, "--resume"], _free_ports(2))
    try:
        outputs = [worker.communicate(timeout=600) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert f"resuming {run} after epoch {killed_after}" in err
        assert "2 replica(s)" in err
    # Both workers held one model: every epoch scored the same by each.
    epochs = [[line.split(", val NME")[1].split(",")[0] for line in err.splitlines()
               if line.startswith("epoch ")] for _, err in outputs]
    assert epochs[0] == epochs[1] and len(epochs[0]) == 5 - killed_after
    assert not Path(scratch).exists()
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in single.iterdir())
    assert TrainConfig.load(run / "config.yaml").distribute == "multiworker"

    history = {name: json.loads((folder / "metrics.json").read_text())["history"]
               for name, folder in (("single", single), ("workers", run))}
    assert [h["epoch"] for h in history["workers"]] == list(range(1, 6))
    for key, bound in (("val_nme", 0.3), ("train_loss", 0.15)):
        gaps = [abs(a[key] - b[key]) for a, b in zip(history["single"], history["workers"],
                                                      strict=True)]
        assert np.mean(gaps) < bound, (key, gaps)


def test_a_bad_tf_config_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([*CLI, "train", "--data", str(tmp_path), "--val", str(tmp_path),
                           "--output", str(tmp_path / "run"), "--distribute", "multiworker"],
                          capture_output=True, text=True,
                          env=os.environ | {"TF_CONFIG": '{"task": 3}'})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "TF_CONFIG" in done.stderr


@needs_shared("300w", "afw")
def test_qat_epochs_added_to_a_finished_run_leave_best_keras_on_the_int8_grid(
        afw_cache: Path, tmp_path: Path) -> None:
    import keras

    from face_keypoints.model.quantize import off_grid

    run = tmp_path / "qat"
    config = tmp_path / "short.yaml"
    config.write_text(yaml.safe_dump({"steps_per_epoch": 3, "epochs": 2}))
    command = _train_command(afw_cache, run, "--config", str(config))
    assert subprocess.run(command, capture_output=True, text=True).returncode == 0
    float_model = (run / "best.keras").read_bytes()

    extended = subprocess.run([*command, "--resume", "--qat-epochs", "2"],
                              capture_output=True, text=True)
    assert extended.returncode == 0, extended.stderr
    assert "epoch 4 (int8 grid)" in extended.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["qat_epochs_run"] == 2 and metrics["epochs_run"] == 4
    assert [h["phase"] for h in metrics["history"]] == ["float", "float", "qat", "qat"]
    assert metrics["best_epoch"] in (3, 4)
    assert (run / "best_float.keras").read_bytes() == float_model
    assert off_grid(keras.models.load_model(run / "best_float.keras")) > 0.3
    assert off_grid(keras.models.load_model(run / "best.keras")) < 1e-3
    assert TrainConfig.load(run / "config.yaml").qat_epochs == 2
    assert "phase" in (run / "log.csv").read_text().splitlines()[0]

    again = subprocess.run([*command, "--resume", "--qat-epochs", "2"],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "finished" in again.stderr


@needs_shared("300w", "afw")
def test_init_model_starts_a_run_from_a_trained_model_and_refuses_one_that_does_not_fit(
        afw_cache: Path, tmp_path: Path) -> None:
    import keras

    from face_keypoints.model.network import ModelSpec, build_model

    config = tmp_path / "short.yaml"
    config.write_text(yaml.safe_dump({"steps_per_epoch": 3, "epochs": 1}))
    first = tmp_path / "first"
    assert subprocess.run(_train_command(afw_cache, first, "--config", str(config)),
                          capture_output=True, text=True).returncode == 0
    # A learning rate too small to move the weights: what the second run saves is what it
    # started from.
    second = tmp_path / "second"
    done = subprocess.run(_train_command(afw_cache, second, "--config", str(config),
                                         "--init-model", str(first / "best.keras"),
                                         "--learning-rate", "1e-12"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"started from {first / 'best.keras'}; fresh heads: none" in done.stderr
    metrics = json.loads((second / "metrics.json").read_text())
    assert metrics["model"]["init_model"] == str(first / "best.keras")
    before, after = (keras.models.load_model(run / "best.keras") for run in (first, second))
    for name in ("conv_dw_7", "conv_pw_13", "points_ibug68"):
        np.testing.assert_allclose(after.get_layer(name).get_weights()[0],
                                   before.get_layer(name).get_weights()[0], atol=1e-7)

    # A wider network starts from the narrow one widened: the same predictions.
    wide = tmp_path / "wide"
    done = subprocess.run(_train_command(afw_cache, wide, "--config", str(config),
                                         "--init-model", str(first / "best.keras"),
                                         "--alpha", "0.5", "--learning-rate", "1e-12"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "widened mobilenet_a0.25_d13_96px_gap into mobilenet_a0.5_d13_96px_gap" \
        in done.stderr
    narrow_nme, wide_nme = (json.loads((run / "metrics.json").read_text())["best_val_nme"]
                            for run in (first, wide))
    assert wide_nme == pytest.approx(narrow_nme, rel=0.02)

    shallow = tmp_path / "shallow.keras"
    build_model(ModelSpec(depth=3, input_size=96, head="gap")).save(shallow)
    for init, message in ((shallow, "does not fit"), (first / "log.csv", ".keras model")):
        refused = subprocess.run(_train_command(afw_cache, tmp_path / "refused", "--config",
                                                str(config), "--init-model", str(init)),
                                 capture_output=True, text=True)
        assert refused.returncode == 2, refused.stderr
        lines = [line for line in refused.stderr.splitlines() if "train: error:" in line]
        assert len(lines) == 1 and message in lines[0] and str(init) in lines[0]
        assert not (tmp_path / "refused" / "best.keras").exists()


def _two_short_epochs(tmp_path: Path) -> Path:
    config = tmp_path / "short.yaml"
    config.write_text(yaml.safe_dump({"steps_per_epoch": 3, "epochs": 2}))
    return config


@pytest.mark.parametrize("head", ["gap", "simcc"])
def test_calibrate_puts_a_finished_runs_outputs_on_the_reference_sets_convention(
        afw_cache: Path, helen_cache: Path, tmp_path: Path, head: str) -> None:
    import keras

    from face_keypoints.data.cache import open_cache
    from face_keypoints.validation import ValidationSet

    helen = helen_cache
    run = tmp_path / "run"
    config = _two_short_epochs(tmp_path)
    command = _train_command(afw_cache, run, "--config", str(config), "--head", head)
    assert subprocess.run(command, capture_output=True, text=True).returncode == 0
    before = keras.models.load_model(run / "best.keras")
    frames = ValidationSet(open_cache(helen), 96, role="train")

    def mean_error(model) -> np.ndarray:
        """(K, 2) mean error per point on HELEN, in input pixels."""
        errors = np.where(frames.present[..., None], frames.predict(model) - frames.points,
                          np.nan)
        return np.nanmean(errors, axis=0) * 96

    assert np.abs(mean_error(before)).max() > 1.0  # a 2-epoch model is far off on average

    calibrated = subprocess.run([*command, "--resume", "--calibrate", str(helen)],
                                capture_output=True, text=True)
    assert calibrated.returncode == 0, calibrated.stderr
    assert f"calibrated on {helen} (870 faces" in calibrated.stderr
    after = keras.models.load_model(run / "best.keras")
    assert np.abs(mean_error(after)).max() < 1e-3
    # Only the output bias moved, by what the mean error was.
    for layer in before.layers:
        pairs = zip(layer.get_weights(), after.get_layer(layer.name).get_weights(),
                    strict=True)
        for index, (old, new) in enumerate(pairs):
            if (layer.name, index) != ("points_ibug68", 1):
                np.testing.assert_array_equal(old, new, err_msg=layer.name)
    shift = (after.get_layer("points_ibug68").get_weights()[1]
             - before.get_layer("points_ibug68").get_weights()[1]).reshape(-1, 2) * 96
    np.testing.assert_allclose(shift, -mean_error(before), atol=1e-3)
    record = json.loads((run / "metrics.json").read_text())["calibration"]
    assert record["cache"] == str(helen) and record["faces"] == 870
    assert record["nme_after"] < record["nme_before"]
    assert {"val_nme_before", "val_nme_after", "mean_shift_px"} <= set(record)
    assert TrainConfig.load(run / "config.yaml").calibrate == str(helen)

    again = subprocess.run([*command, "--resume", "--calibrate", str(helen)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "finished" in again.stderr


def test_a_run_started_with_calibrate_scores_its_epochs_calibrated_and_refuses_another_scheme(
        afw_cache: Path, helen_cache: Path, tmp_path: Path) -> None:
    """Started with --calibrate, a run scores every epoch as calibration leaves it: the
    best epoch's validation NME is what the calibrated best.keras scores. (Which head
    reads the points does not matter here: the test above covers each.)"""
    from face_keypoints.prepare import prepare

    run = tmp_path / "started"
    command = _train_command(afw_cache, run, "--config", str(_two_short_epochs(tmp_path)))
    done = subprocess.run([*command, "--calibrate", str(helen_cache)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_val_nme"] == pytest.approx(
        metrics["calibration"]["val_nme_after"], abs=2e-4)
    assert metrics["calibration"]["val_nme_before"] != pytest.approx(metrics["best_val_nme"])
    aflw = tmp_path / "aflw21"
    prepare("aflw21", FIXTURES / "aflw21", aflw, size=128, progress=False, log=lambda line: None)
    saved = (run / "best.keras").read_bytes()
    refused = subprocess.run([*command, "--resume", "--calibrate", str(aflw)],
                             capture_output=True, text=True)
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if "train: error:" in line]
    assert len(lines) == 1 and "calibration scheme aflw21" in lines[0], refused.stderr
    assert (run / "best.keras").read_bytes() == saved


@needs_shared("300w", "afw")
def test_benchmark_input_reports_pipeline_and_training_speed(afw_cache: Path) -> None:
    done = subprocess.run(
        [*CLI, "train", "--data", str(afw_cache), "--val", str(afw_cache), "--output",
         "unused", "--input-size", "96", "--batch-size", "4", "--backbone-weights", "none",
         "--benchmark-input"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["input_pipeline_images_per_s"] > 0 and figures["training_images_per_s"] > 0
    assert figures["ratio"] == pytest.approx(
        figures["input_pipeline_images_per_s"] / figures["training_images_per_s"], rel=0.02)


def test_train_refuses_bad_settings_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run([*CLI, "train", "--data", str(tmp_path / "none"), "--val",
                           str(tmp_path / "none"), "--output", str(tmp_path / "run")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no such cache folder" in done.stderr
