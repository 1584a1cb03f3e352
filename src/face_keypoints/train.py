"""The `train` verb: fit a landmark network on prepared caches.

A plain loop over a compiled train step fed by the background batch thread of
data/pipeline.py (measured here 2.6x faster than Keras `fit` fed by a PyDataset).
Every epoch ends with a validation NME, a checkpoint that `--resume` continues from,
the logs (CSV, TensorBoard, curves.png) and, when validation improved, best.keras.
`qat_epochs` then fine-tune the best float model with its kernels on the int8 grid
(model/quantize.py): the float best stays as best_float.keras, and best.keras becomes the
best model on the grid, whose int8 export scores what its float export does. A run may
start from another trained model (`init_model`, e.g. pretrained on AFLW-21): see
network.copy_matching_weights. `calibrate` ends every run by moving the saved models'
outputs onto a reference cache's annotation convention (calibration.py); a run started
with it validates every epoch as calibration would leave that epoch's model, so the
best epoch is chosen as it will ship.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_keypoints.baseline import mean_shapes
from face_keypoints.config import TrainConfig
from face_keypoints.data.augment import AugmentConfig
from face_keypoints.data.cache import Cache, open_cache
from face_keypoints.errors import BadInput, FaceKeypointsError
from face_keypoints.fileio import write_atomic, write_json_atomic
from face_keypoints.model.spec import ModelSpec
from face_keypoints.training.data import batch_stream, epoch_passes, model_schemes, open_caches
from face_keypoints.training.distribute import cluster_task, strategy_for, worker_dir
from face_keypoints.training.epochs import Epochs
from face_keypoints.training.run_folder import (
    BEST,
    BEST_FLOAT,
    CHECKPOINTS,
    CONFIG,
    FINISHED,
    FLOAT,
    QAT,
    QAT_CHECKPOINTS,
    RESUMABLE,
    STATE,
    check_run_dir,
    read_state,
    remove_leftovers,
    restore_intact,
    roll_back,
)
from face_keypoints.training.steps import build_qat, build_training, start_from


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_val_nme: float
    epochs_run: int
    images_per_second: float
    wall_seconds: float
    calibrated_val_nme: float | None = None  # best.keras's, when the run was calibrated


@dataclass
class _Run:
    """What a run is decided to be before TensorFlow starts: where it writes, whether it
    continues, its data and its network."""

    config: TrainConfig
    run_dir: Path
    work_dir: Path  # the run folder, or a worker's own folder (distribute.worker_dir)
    chief: bool
    task: str
    continuing: bool
    sources: list[tuple[Cache, np.ndarray]]
    val_cache: Cache
    reference: Cache | None  # the cache `calibrate` names
    spec: ModelSpec


@dataclass
class _Fitting:
    """The training machinery of a run: strategy, batches, model, optimiser, checkpoints."""

    strategy: object
    stream: object
    passes: int
    steps: int
    start_shapes: dict[str, np.ndarray]
    model: object
    optimizer: object
    step: object
    checkpoint: object
    manager: object


def train(
    config: TrainConfig,
    output: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train per `config` into `output` (RUN_DIR); see the module docstring."""
    run = _plan(config, Path(output), resume, overwrite)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from face_keypoints.validation import ValidationSet

    fitting = _build(run)
    state = _start_state(run, fitting)
    validation = ValidationSet(run.val_cache, config.input_size, align=config.align)
    # What the untrained model scores: its heads start at the training faces' mean shape.
    mean_shape_nme = validation.score(np.broadcast_to(
        fitting.start_shapes[run.val_cache.scheme.name], validation.points.shape))
    # Fixed when the run starts, so every epoch of its history is scored the same way.
    validated_with = state.get("validated_with", "")
    reference_frames = None
    if validated_with:
        reference_frames = ValidationSet(open_cache(Path(validated_with)), config.input_size,
                                         role="train", align=config.align)
    _fit(run, fitting, state, validation, reference_frames, progress)
    if run.reference is not None and run.chief:
        if validated_with != config.calibrate:
            reference_frames = ValidationSet(run.reference, config.input_size, role="train",
                                             align=config.align)
        _calibrate_run(run.run_dir, reference_frames, validation, state)
    return _finish(run, state, mean_shape_nme)


def _plan(config: TrainConfig, run_dir: Path, resume: bool, overwrite: bool) -> _Run:
    """Check the settings, the run folder and the caches; decide whether the run starts
    or continues."""
    config.check()
    chief, task = cluster_task(config.distribute)
    if chief:
        continuing = check_run_dir(run_dir, resume, overwrite, config)
    else:  # the chief checks and clears the run folder; the other workers only read it
        continuing = not overwrite and check_run_dir(run_dir, resume, False, config)
    if continuing:
        saved = TrainConfig.load(run_dir / CONFIG).to_dict()
        changed = [k for k, v in config.to_dict().items()
                   if saved[k] != v and k not in RESUMABLE]
        if changed:
            raise BadInput(f"{run_dir}: --resume with different settings "
                           f"({', '.join(changed)}); resume with the run's own config")
    sources, val_cache = open_caches(config)
    schemes = model_schemes(sources, val_cache)
    reference = open_cache(Path(config.calibrate)) if config.calibrate else None
    if reference is not None and reference.scheme.name not in schemes:
        raise BadInput(f"{reference.path}: calibration scheme {reference.scheme.name} is not "
                       f"among the model's ({', '.join(schemes)})")
    work_dir = run_dir if chief else worker_dir(run_dir, task)
    return _Run(config, run_dir, work_dir, chief, task, continuing, sources, val_cache,
                reference, config.spec(schemes))


def _build(run: _Run) -> _Fitting:
    """The strategy, the batch stream, the network (heads at the mean shape, or the
    init_model's weights) with its optimiser and compiled step, and its checkpoints."""
    import keras
    import tensorflow as tf

    config = run.config
    strategy = strategy_for(config.distribute)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise BadInput(f"--batch-size {config.batch_size} must divide by the "
                       f"{replicas} replicas of --distribute {config.distribute}")
    keras.utils.set_random_seed(config.seed)
    passes = epoch_passes(config, [len(indices) for _, indices in run.sources])
    stream = batch_stream(config, run.sources, run.spec.schemes,
                     AugmentConfig.from_dict(config.augment), passes)
    steps = config.steps_per_epoch or len(stream)
    if steps < 1 or stream.epoch_size < passes * config.batch_size:
        stream.close()
        raise BadInput(f"fewer training faces than one batch of {config.batch_size}")
    start_shapes = mean_shapes(run.sources, run.spec.schemes, config.input_size)
    model, optimizer, step = build_training(config, run.spec, strategy, steps, start_shapes)
    if config.init_model and not run.continuing:
        start_from(model, config.init_model, config.seed)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, run.work_dir / CHECKPOINTS,
                                         max_to_keep=2)
    return _Fitting(strategy, stream, passes, steps, start_shapes, model, optimizer, step,
                    checkpoint, manager)


def _start_state(run: _Run, fitting: _Fitting) -> dict:
    """A fresh state, or the state and float checkpoint of the run being continued; the
    work folder made with the run's config in it."""
    state: dict = {"epoch": 0, "phase": FLOAT, "best_val_nme": math.inf, "best_epoch": 0,
                   "history": [], "seconds": 0.0, "images": 0,
                   "validated_with": run.config.calibrate}
    if run.continuing:
        state = read_state(run.run_dir)
        state.setdefault("phase", FLOAT)
        for entry in state["history"]:
            entry.setdefault("phase", FLOAT)
        if run.chief:
            remove_leftovers(run.run_dir)
        if state["phase"] == FLOAT:
            roll_back(state, restore_intact(fitting.checkpoint, run.run_dir / CHECKPOINTS,
                                            state["checkpoint"]))
        print(f"resuming {run.run_dir} after epoch {state['epoch']}", file=sys.stderr)
    if not run.chief:
        shutil.rmtree(run.work_dir, ignore_errors=True)
        print(f"{run.task}: the chief writes {run.run_dir}; this worker writes "
              f"{run.work_dir}", file=sys.stderr)
    run.work_dir.mkdir(parents=True, exist_ok=True)
    run.config.save(run.work_dir / CONFIG)
    if not state["history"]:  # the folder is this run's, even if killed in its first epoch
        write_json_atomic(run.work_dir / STATE, {"epoch": 0, "history": []})
    return state


def _fit(run: _Run, fitting: _Fitting, state: dict, validation, reference_frames,
         progress: bool) -> None:
    """The float epochs, then the quantization-aware ones; `state` records every epoch."""
    import tensorflow as tf

    config, work_dir, stream = run.config, run.work_dir, fitting.stream
    repeats = f", {fitting.passes} passes over the faces" if fitting.passes > 1 else ""
    print(f"training {run.spec.schemes} on {len(stream.samples)} faces ({stream.epoch_size} "
          f"samples an epoch{repeats}), validating on "
          f"{len(validation.points)}; {fitting.steps} steps of {config.batch_size} per "
          f"epoch, {fitting.strategy.num_replicas_in_sync} replica(s)", file=sys.stderr)
    writer = tf.summary.create_file_writer(str(work_dir / "tensorboard"))
    epochs = Epochs(work_dir, fitting.model, stream, fitting.steps, validation,
                    reference_frames, writer, state, fitting.strategy, progress)
    try:
        if state["phase"] == FLOAT:
            epochs.run(FLOAT, config.epochs, fitting.step, fitting.optimizer, fitting.manager,
                       "checkpoint", config.early_stopping)
        if config.qat_epochs > 0 and state["history"]:
            _fit_on_grid(run, fitting, state, epochs)
    except (tf.errors.UnavailableError, tf.errors.CancelledError) as err:
        if config.distribute != "multiworker":
            raise
        raise FaceKeypointsError(
            f"lost another worker after epoch {state['epoch']} (TensorFlow: "
            f"{type(err).__name__}); restart every worker with --resume") from None
    finally:
        stream.close()
        writer.close()
    if not state["history"]:
        raise FaceKeypointsError("training stopped before the first epoch ended")


def _fit_on_grid(run: _Run, fitting: _Fitting, state: dict, epochs: Epochs) -> None:
    """The quantization-aware epochs, from the best float model or their checkpoint."""
    import tensorflow as tf

    config, model = run.config, fitting.model
    if state["phase"] == FLOAT:
        _start_qat(run.work_dir, model, state, run.run_dir)
    grid, optimizer, step = build_qat(config, run.spec, fitting.strategy, fitting.steps, model)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, shadows=grid.shadows)
    manager = tf.train.CheckpointManager(checkpoint, run.work_dir / QAT_CHECKPOINTS,
                                         max_to_keep=2)
    if "qat_checkpoint" in state:
        roll_back(state, restore_intact(checkpoint, run.run_dir / QAT_CHECKPOINTS,
                                        state["qat_checkpoint"]))
    else:
        grid.snap()
    epochs.run(QAT, state["qat_first_epoch"] + config.qat_epochs - 1, step, optimizer,
               manager, "qat_checkpoint", finish=grid.snap)


def _finish(run: _Run, state: dict, mean_shape_nme: float) -> TrainResult:
    """The result, a warning when the model learned nothing, and metrics.json (the marker
    of a finished run)."""
    config = run.config
    calibration = state.get("calibration") or {}
    result = TrainResult(run.run_dir, state["best_epoch"], state["best_val_nme"],
                         state["epoch"], state["images"] / max(state["seconds"], 1e-9),
                         state["seconds"], calibration.get("val_nme_after"))
    float_best = {k: state.get(f"float_{k}", state[k]) for k in ("best_epoch", "best_val_nme")}
    warnings = []
    if result.best_val_nme >= mean_shape_nme:
        warnings.append(f"the best epoch's validation NME {result.best_val_nme:.2f}% is no "
                        f"better than the {mean_shape_nme:.2f}% of the mean shape the model "
                        "started from: it has not learned (train longer, or lower "
                        "--learning-rate)")
        print(f"warning: {warnings[-1]}", file=sys.stderr)
    write_json_atomic(run.work_dir / FINISHED, {
        "best_epoch": result.best_epoch, "best_val_nme": round(result.best_val_nme, 4),
        "mean_shape_val_nme": round(mean_shape_nme, 4), "warnings": warnings,
        "float_best_epoch": float_best["best_epoch"],
        "float_best_val_nme": round(float_best["best_val_nme"], 4),
        "qat_epochs_run": sum(1 for entry in state["history"] if entry["phase"] == QAT),
        "epochs_run": result.epochs_run, "train_images_per_s": round(result.images_per_second, 1),
        "train_seconds": round(result.wall_seconds, 1), "val": str(run.val_cache.path),
        "data": [str(c.path) for c, _ in run.sources],
        "data_weights": [w for _, w in config.data_sources()], "schemes": run.spec.schemes,
        "model": run.spec.__dict__ | {"backbone_weights": config.backbone_weights,
                                      "init_model": config.init_model or None},
        "calibration": calibration or None,
        "history": state["history"],
    })
    if not run.chief:
        shutil.rmtree(run.work_dir)
    return result


def _calibrate_run(run_dir: Path, reference, validation, state: dict) -> None:
    """Calibrate best.keras (and best_float.keras) on `reference` (a ValidationSet of the
    reference cache's training faces); the record, with the validation NME before and
    after, goes to state.json and metrics.json."""
    import keras

    from face_keypoints.calibration import calibrate

    for name in (BEST_FLOAT, BEST):
        path = run_dir / name
        if not path.exists():
            continue
        model = keras.models.load_model(path, compile=False)
        val_before = validation.nme(model)
        record = calibrate(model, reference).summary()
        record |= {"val_nme_before": round(val_before, 4),
                   "val_nme_after": round(validation.nme(model), 4)}
        write_atomic(path, model.save)
    state["calibration"] = record
    write_json_atomic(run_dir / STATE, state)
    print(f"calibrated on {reference.path} ({record['faces']} faces, mean shift "
          f"{record['mean_shift_px']} px): val NME {record['val_nme_before']:.3f}% -> "
          f"{record['val_nme_after']:.3f}%", file=sys.stderr)


def _start_qat(run_dir: Path, model, state: dict, source: Path) -> None:
    """Turn to the int8 phase: the best float model is kept as best_float.keras and is
    where fine-tuning starts; best.keras will be the best model on the grid. A worker
    without its own best.keras (none better since a resume) takes the chief's, in
    `source`."""
    import keras

    float_best = run_dir / BEST_FLOAT
    if not float_best.exists():  # a rerun after a kill keeps the first copy
        best = run_dir / BEST
        data = (best if best.exists() else source / BEST).read_bytes()
        write_atomic(float_best, lambda tmp: tmp.write_bytes(data))
    model.set_weights(keras.models.load_model(float_best, compile=False).get_weights())
    state.update(phase=QAT, qat_first_epoch=state["epoch"] + 1,
                 float_best_epoch=state["best_epoch"], float_best_val_nme=state["best_val_nme"],
                 best_epoch=state["epoch"], best_val_nme=math.inf)


def benchmark_input(config: TrainConfig, batches: int = 40) -> dict:
    """Images/s of the input pipeline alone and of training end to end, same settings."""
    config.check()
    sources, val_cache = open_caches(config)
    schemes = model_schemes(sources, val_cache)
    spec = config.spec(schemes)
    augment = AugmentConfig.from_dict(config.augment)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from face_keypoints.data.pipeline import BatchStream

    def timed(stream: BatchStream, step) -> float:
        warm, seen = 3, 0
        batches_iter = stream.epoch(1)
        for _ in range(warm):
            step(*next(batches_iter))
        start = time.perf_counter()
        for _ in range(batches):
            batch = next(batches_iter)
            step(*batch)
            seen += len(batch[0])
        return seen / (time.perf_counter() - start)

    stream = batch_stream(config, sources, schemes, augment)
    try:
        if len(stream) < batches + 3:
            raise BadInput(f"the training caches hold fewer than {batches + 3} batches")
        pipeline = timed(stream, lambda *batch: None)
        strategy = strategy_for(config.distribute)
        _, _, train_step = build_training(config, spec, strategy, len(stream),
                                           mean_shapes(sources, schemes, config.input_size))
        end_to_end = timed(stream, lambda *batch: float(train_step(*batch)))
    finally:
        stream.close()
    return {"input_pipeline_images_per_s": round(pipeline, 1),
            "training_images_per_s": round(end_to_end, 1),
            "ratio": round(pipeline / end_to_end, 2),
            "alpha": config.alpha, "input_size": config.input_size,
            "batch_size": config.batch_size, "batches": batches}
