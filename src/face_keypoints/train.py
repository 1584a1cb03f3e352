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

import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_keypoints.baseline import mean_shapes
from face_keypoints.config import MIN_STEPS_PER_EPOCH, TrainConfig
from face_keypoints.data.augment import AugmentConfig
from face_keypoints.data.cache import Cache, open_cache
from face_keypoints.errors import BadInput, FaceKeypointsError
from face_keypoints.fileio import write_atomic, write_json_atomic, write_text_atomic
from face_keypoints.model.spec import ModelSpec

STATE = "state.json"
FINISHED = "metrics.json"
BEST_FLOAT = "best_float.keras"
FLOAT, QAT = "float", "qat"
# Settings a --resume may change: they extend a run (or its int8 phase), never redo it.
RESUMABLE = ("early_stopping", "qat_epochs", "qat_learning_rate", "calibrate")


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_val_nme: float
    epochs_run: int
    images_per_second: float
    wall_seconds: float
    calibrated_val_nme: float | None = None  # best.keras's, when the run was calibrated


def _strategy(kind: str):
    import tensorflow as tf

    if kind == "mirrored":
        if not tf.config.list_physical_devices("GPU"):
            # No GPU here: two logical CPU devices give MirroredStrategy two replicas.
            cpu = tf.config.list_physical_devices("CPU")[0]
            with contextlib.suppress(RuntimeError):  # already started: use what it has
                tf.config.set_logical_device_configuration(
                    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
            return tf.distribute.MirroredStrategy(devices=devices)
        return tf.distribute.MirroredStrategy()
    if kind == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _cluster_task(kind: str) -> tuple[bool, str]:
    """(chief, task) of this process in TF_CONFIG's cluster under --distribute multiworker:
    the chief (task "chief", else worker 0, as TensorFlow decides) alone writes the run
    folder. One process on its own is the chief of no task."""
    raw = os.environ.get("TF_CONFIG", "") if kind == "multiworker" else ""
    if not raw:
        return True, ""
    try:
        cluster = json.loads(raw)
        role, index = str(cluster["task"]["type"]), int(cluster["task"]["index"])
        jobs = set(cluster["cluster"])
    except (ValueError, KeyError, TypeError) as err:
        raise BadInput('TF_CONFIG: expected {"cluster": {"worker": ["host:port", ...]}, '
                       f'"task": {{"type": "worker", "index": N}}}} ({err!r})') from None
    return role == "chief" or (role == "worker" and index == 0 and "chief" not in jobs), \
        f"{role}{index}"


def _worker_dir(run_dir: Path, task: str) -> Path:
    """Where a worker other than the chief writes: every worker saves the checkpoints and
    models (TensorFlow's multi-worker guide: saving may need all of them), this one into
    a place of its own outside the run folder, fixed per run and task so that a rerun
    clears what a killed worker left."""
    key = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"face-keypoints-{key}-{task}"


def _split_for_replicas(strategy, *batch):
    """One slice of the batch per replica, for MirroredStrategy's step."""
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync

    def part(context):
        return tf.nest.map_structure(
            lambda a: np.array_split(a, replicas)[context.replica_id_in_sync_group], batch)

    return strategy.experimental_distribute_values_from_function(part)


def _open_caches(config: TrainConfig) -> tuple[list[tuple[Cache, np.ndarray]], Cache]:
    sources = []
    for path, _ in config.data_sources():
        cache = open_cache(Path(path))
        sources.append((cache, cache.indices("train")))
    return sources, open_cache(Path(config.val))


def epoch_passes(config: TrainConfig, sizes: list[int]) -> int:
    """Whole passes over the training faces (`sizes`: faces per cache, as `data` lists
    them) an epoch makes: enough for `steps_per_epoch` steps, or for 0, for at least
    MIN_STEPS_PER_EPOCH; so a small data set draws each face several times an epoch,
    augmented anew each time, and a large one (every recipe of configs/) once.

    Why: the warm-up and the cosine decay are planned in epochs, and Adam's first steps
    are as long as the learning rate whatever the gradient. On AFW's 337 faces (5 steps
    of 64) a 3-epoch run of single passes ended at 27.8 % NME, above the 21.6 % of the
    mean shape it started from; with 4 passes an epoch (21 steps), at 12.4 %.
    """
    weights = [w for _, w in config.data_sources()]
    wanted = (config.steps_per_epoch or MIN_STEPS_PER_EPOCH) * config.batch_size

    def drawn(passes: int) -> int:  # BatchStream.epoch_size of weights times `passes`
        return sum(round(w * passes * n) for w, n in zip(weights, sizes, strict=True))

    share = sum(w * n for w, n in zip(weights, sizes, strict=True))
    passes = max(1, math.ceil(wanted / share)) if share > 0 else 1
    while 0 < drawn(passes) < wanted:  # a fractional share rounded down
        passes += 1
    return passes


def _stream(config: TrainConfig, sources, schemes: list[str], augment, passes: int = 1):
    from face_keypoints.data.pipeline import BatchStream

    return BatchStream(sources, schemes, config.batch_size, config.input_size, augment,
                       seed=config.seed,
                       weights=[w * passes for _, w in config.data_sources()],
                       align=config.align)


def _model_schemes(sources: list[tuple[Cache, np.ndarray]], val: Cache) -> list[str]:
    """One head per scheme of the training caches (the validation scheme included)."""
    names: list[str] = []
    for cache, _ in sources:
        if cache.scheme.name not in names:
            names.append(cache.scheme.name)
    if val.scheme.name not in names:
        raise BadInput(f"{val.path}: validation scheme {val.scheme.name} is not among the "
                       f"training schemes ({', '.join(names)})")
    return names


def _check_run_dir(run_dir: Path, resume: bool, overwrite: bool, config: TrainConfig) -> bool:
    """True when a run should be continued: an unfinished one, or with --resume a
    finished one that `config` gives more to do (float epochs that early stopping no
    longer cuts off, more quantization-aware epochs than it has run, or a calibration
    on another cache)."""
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
        return False
    if (run_dir / FINISHED).exists():
        if resume and _more_to_do(run_dir, config):
            return True
        if resume:
            raise BadInput(f"{run_dir}: this run has finished; nothing to resume "
                           "(--overwrite starts it again; --qat-epochs N adds int8 "
                           "fine-tuning; --early-stopping 0 runs all --epochs; "
                           "--calibrate CACHE calibrates it)")
        raise BadInput(f"{run_dir}: holds a finished run; pass --overwrite to replace it")
    if (run_dir / STATE).exists() and _read_state(run_dir)["epoch"] == 0:
        # Stopped before its first epoch ended: nothing to keep, so start it afresh.
        if _cluster_task(config.distribute)[0]:  # the chief alone clears the run folder
            if resume:
                print(f"{run_dir}: no epoch of the earlier run had ended; starting afresh",
                      file=sys.stderr)
            _clear_unstarted(run_dir)
        return False
    if (run_dir / STATE).exists():
        if not resume:
            raise BadInput(f"{run_dir}: holds an unfinished run; pass --resume to continue "
                           "it or --overwrite to start again")
        return True
    if resume:
        raise BadInput(f"{run_dir}: no run to resume here")
    if run_dir.exists() and any(run_dir.iterdir()):
        raise BadInput(f"{run_dir}: exists and is not a run folder; choose another --output")
    return False


def _read_state(run_dir: Path) -> dict:
    try:
        state = json.loads((run_dir / STATE).read_text(encoding="utf-8"))
        int(state["epoch"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BadInput(f"{run_dir / STATE}: unreadable run state ({err}); --overwrite "
                       "starts the run again") from None
    return state


def _clear_unstarted(run_dir: Path) -> None:
    """Remove what a run stopped in its first epoch wrote (and nothing else)."""
    for path in run_dir.iterdir():
        if path.name in (STATE, "config.yaml", "tensorboard", "checkpoints") or (
                path.name.startswith(".") and ".tmp" in path.name):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _more_to_do(run_dir: Path, config: TrainConfig) -> bool:
    state = _read_state(run_dir)
    if sum(1 for entry in state["history"] if entry.get("phase") == QAT) < config.qat_epochs:
        return True
    if config.calibrate and state.get("calibration", {}).get("cache") != config.calibrate:
        return True
    stale = state["epoch"] - state["best_epoch"]
    return (state.get("phase", FLOAT) == FLOAT and state["epoch"] < config.epochs
            and not stale >= config.early_stopping > 0)


def _save_curves(path: Path, history: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.set_yscale("log")
    left.grid(alpha=0.3)
    right.plot(epochs, [h["val_nme"] for h in history], color="tab:red", label="val NME")
    right.set_xlabel("epoch")
    right.set_ylabel("validation NME (%)")
    right.grid(alpha=0.3)
    best = min(history, key=lambda h: h["val_nme"])
    right.scatter([best["epoch"]], [best["val_nme"]], color="black", zorder=3,
                  label=f"best {best['val_nme']:.2f}% @ {best['epoch']}")
    right.legend()
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def _write_csv(path: Path, history: list[dict]) -> None:
    keys = list(history[0]) if history else []
    lines = [",".join(keys)] + [",".join(str(h[k]) for k in keys) for h in history]
    write_text_atomic(path, "\n".join(lines) + "\n")


def _loss_function(config: TrainConfig, spec: ModelSpec, model):
    """The batch loss: every head's masked point loss over the points all replicas saw."""
    import tensorflow as tf

    from face_keypoints.model.heads import head_loss, training_view

    view = training_view(model, spec.head)

    def loss(images, targets, masks):
        outputs = view(images, training=True)
        total, count = 0.0, 0.0
        for name in spec.schemes:
            s, n = head_loss(model, spec.head, config.loss, outputs, name, targets[name],
                             masks[name])
            total, count = total + s, count + n
        global_count = tf.distribute.get_replica_context().all_reduce("sum", count)
        return total / tf.maximum(global_count, 1.0)

    return loss


def _optimizer(learning_rate: float, weight_decay: float, total_steps: int, warmup: int,
               variables: list):
    """AdamW on a cosine decay to 1 % of `learning_rate`, after a linear warm-up."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else learning_rate, decay_steps=max(1, total_steps - warmup),
        warmup_target=learning_rate if warmup else None, warmup_steps=warmup, alpha=0.01)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
    optimizer.build(variables)
    return optimizer


def _compile_step(strategy, model, optimizer, loss, grid=None):
    """One compiled training step. With a WeightGrid, the kernels are put on the int8 grid
    before the forward pass and their gradients step the float shadows instead."""
    import tensorflow as tf

    def replica_step(images, targets, masks):
        with tf.GradientTape() as tape:
            value = loss(images, targets, masks)
        grads = tape.gradient(value, model.trainable_variables)
        if grid is None:
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        else:
            optimizer.apply_gradients(zip(grid.gradients_for(grads), grid.variables,
                                          strict=True))
        return value

    @tf.function
    def train_step(images, targets, masks):
        if grid is not None:
            grid.snap()
        values = strategy.run(replica_step, args=(images, targets, masks))
        return strategy.reduce("sum", values, axis=None)

    return train_step


def _build_training(config: TrainConfig, spec: ModelSpec, strategy, steps: int,
                    start_shapes: dict[str, np.ndarray]):
    """The model (heads starting at `start_shapes`), its optimizer (warm-up + cosine
    decay) and the compiled train step."""
    from face_keypoints.model.network import build_model

    # A run from init_model gets every backbone layer from it (_start_from), so loading
    # ImageNet weights first would be wasted, and fail for a width they do not fit.
    use_backbone = config.backbone_weights != "none" and not config.init_model
    weights = config.backbone_weights if use_backbone else None
    with strategy.scope():
        try:
            model = build_model(spec, weights, start_shapes)
        except ValueError as err:
            raise BadInput(f"--backbone-weights {config.backbone_weights}: {err}") from None
        except Exception as err:
            if weights == "imagenet":
                raise BadInput("could not fetch the ImageNet weights (no internet?): pass "
                               "--backbone-weights PATH to a local .h5, or none") from err
            raise
        optimizer = _optimizer(config.learning_rate, config.weight_decay,
                               steps * config.epochs, max(1, int(config.warmup_epochs * steps)),
                               model.trainable_variables)
    step = _compile_step(strategy, model, optimizer, _loss_function(config, spec, model))
    return model, optimizer, step


def _start_from(model, path: str, seed: int) -> None:
    """Load the weights of the trained model at `path` into `model` where they fit: all of
    the backbone and every head of a scheme both predict. A narrower model is widened
    (model/widen.py), so a wider network starts from what a narrow one learned."""
    from face_keypoints.model.heads import is_head_layer
    from face_keypoints.model.network import copy_matching_weights
    from face_keypoints.model.widen import is_narrower, widen_into
    from face_keypoints.runtime.predictor import load_predictor

    if Path(path).suffix != ".keras":
        raise BadInput(f"--init-model {path}: give the .keras model a training run saved")
    source = load_predictor(path).model
    if is_narrower(source, model):
        try:
            kept = widen_into(model, source, seed)
        except ValueError as err:
            raise BadInput(f"--init-model {path}: cannot widen {source.name} into "
                           f"{model.name}: {err}") from None
        print(f"widened {source.name} into {model.name}", file=sys.stderr)
    else:
        kept = copy_matching_weights(model, source)
    misfits = [name for name in kept if not is_head_layer(name)]
    if misfits:
        raise BadInput(f"--init-model {path}: {source.name} does not fit {model.name} "
                       f"(its {misfits[0]} is missing or of another shape)")
    print(f"started from {path}; fresh heads: {', '.join(kept) or 'none'}", file=sys.stderr)


def _build_qat(config: TrainConfig, spec: ModelSpec, strategy, steps: int, model):
    """Shadows of `model`'s kernels, their optimizer and the on-grid train step."""
    from face_keypoints.model.quantize import WeightGrid

    with strategy.scope():
        grid = WeightGrid(model)
        optimizer = _optimizer(config.qat_learning_rate, config.weight_decay,
                               steps * config.qat_epochs, 0, grid.variables)
    step = _compile_step(strategy, model, optimizer, _loss_function(config, spec, model), grid)
    return grid, optimizer, step


def _statistics_averager(strategy, model):
    """A compiled function that averages the model's non-trainable variables (BatchNorm's
    moving statistics) over the replicas, or None for one replica. Each replica updates
    them from its own share of every batch and Keras keeps them apart, so without it
    workers would validate (and stop early), save and checkpoint different models."""
    import tensorflow as tf

    variables = list(model.non_trainable_variables)
    if strategy.num_replicas_in_sync == 1 or not variables:
        return None

    def replica_average() -> None:
        means = tf.distribute.get_replica_context().all_reduce(
            "mean", [tf.identity(variable.value) for variable in variables])
        for variable, mean in zip(variables, means, strict=True):
            variable.assign(mean)

    @tf.function
    def average() -> None:
        strategy.run(replica_average)

    return average


# A mean loss or NME this large (both in percent, of the crop or of the eye distance)
# means points some ten thousand faces away: the weights have blown up, and the next
# numbers would be inf or NaN.
BLOWN_UP = 1e6


def _blown_up(value: float) -> bool:
    return not math.isfinite(value) or abs(value) > BLOWN_UP


def _diverged(epoch: int, what: str, value: float, optimizer) -> FaceKeypointsError:
    """The one-line failure of a run whose numbers stopped being numbers."""
    return FaceKeypointsError(
        f"training diverged in epoch {epoch}: the {what} became {value:.4g} at a learning "
        f"rate of {float(optimizer.learning_rate):.3g}; nothing of this epoch was saved "
        "(lower --learning-rate, then rerun)")


class _Epochs:
    """The epoch loop both phases share: train, validate, keep the best model, checkpoint,
    log; `state` (state.json) is what --resume continues from."""

    def __init__(self, run_dir: Path, model, stream, steps: int, validation, reference,
                 writer, state: dict, strategy, progress: bool) -> None:
        self.run_dir, self.model, self.stream, self.steps = run_dir, model, stream, steps
        self.validation, self.reference = validation, reference
        self.writer, self.state = writer, state
        self.strategy, self.progress = strategy, progress
        self.average = _statistics_averager(strategy, model)

    def run(self, phase: str, last_epoch: int, step, optimizer, manager, checkpoint_key: str,
            early_stopping: int = 0, finish=None) -> None:
        import tensorflow as tf
        from tqdm import tqdm

        state, replicas = self.state, self.strategy.num_replicas_in_sync
        stale = state["epoch"] - state["best_epoch"]
        for epoch in range(state["epoch"] + 1, last_epoch + 1):
            if stale >= early_stopping > 0:
                print(f"early stop: no validation gain for {stale} epochs", file=sys.stderr)
                break
            start, seen, loss_sum, mean_loss = time.perf_counter(), 0, 0.0, 0.0
            bar = tqdm(total=self.steps, desc=f"epoch {epoch}/{last_epoch}", unit="batch",
                       disable=None if self.progress else True, file=sys.stderr, leave=False)
            for index, (images, targets, masks) in enumerate(self.stream.epoch(epoch)):
                if index >= self.steps:
                    break
                batch = (images, targets, masks)
                if replicas > 1:
                    batch = _split_for_replicas(self.strategy, *batch)
                loss_sum += float(step(*batch))
                mean_loss = loss_sum / (index + 1)
                if _blown_up(mean_loss):
                    break
                seen += len(images)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / (index + 1):.3f}",
                                img_s=f"{seen / (time.perf_counter() - start):.0f}")
            bar.close()
            if _blown_up(mean_loss):
                raise _diverged(epoch, "training loss", mean_loss, optimizer)
            if self.average is not None:
                self.average()
            if finish is not None:
                finish()
            seconds = time.perf_counter() - start
            model = self.model
            val = self.validation.nme(model, self.reference)
            if _blown_up(val):
                raise _diverged(epoch, "validation NME", val, optimizer)
            entry = {"epoch": epoch, "phase": phase, "lr": float(optimizer.learning_rate),
                     "train_loss": round(loss_sum / max(1, self.steps), 5),
                     "val_nme": round(val, 4), "images_per_s": round(seen / seconds, 1),
                     "seconds": round(seconds, 1)}
            state["history"].append(entry)
            state["seconds"] += seconds
            state["images"] += seen
            improved = val < state["best_val_nme"]
            if improved:
                state["best_val_nme"], state["best_epoch"] = val, epoch
                write_atomic(self.run_dir / "best.keras", model.save)
                state.pop("calibration", None)
            stale = epoch - state["best_epoch"]
            state["epoch"] = epoch
            state[checkpoint_key] = Path(manager.save(checkpoint_number=epoch)).name
            write_json_atomic(self.run_dir / STATE, state)
            _write_csv(self.run_dir / "log.csv", state["history"])
            _save_curves(self.run_dir / "curves.png", state["history"])
            with self.writer.as_default(step=epoch):
                for key in ("train_loss", "val_nme", "lr", "images_per_s"):
                    tf.summary.scalar(key, entry[key])
            print(f"epoch {epoch}{' (int8 grid)' if phase == QAT else ''}: loss "
                  f"{entry['train_loss']:.4f}, val NME {val:.3f}%"
                  f"{' (best)' if improved else ''}, {entry['images_per_s']:.0f} img/s, "
                  f"{seconds:.0f} s", file=sys.stderr)


def train(
    config: TrainConfig,
    output: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train per `config` into `output` (RUN_DIR); see the module docstring."""
    config.check()
    run_dir = Path(output)
    chief, task = _cluster_task(config.distribute)
    if chief:
        continuing = _check_run_dir(run_dir, resume, overwrite, config)
    else:  # the chief checks and clears the run folder; the other workers only read it
        continuing = not overwrite and _check_run_dir(run_dir, resume, False, config)
    work_dir = run_dir if chief else _worker_dir(run_dir, task)
    if continuing:
        saved = TrainConfig.load(run_dir / "config.yaml").to_dict()
        changed = [k for k, v in config.to_dict().items()
                   if saved[k] != v and k not in RESUMABLE]
        if changed:
            raise BadInput(f"{run_dir}: --resume with different settings "
                           f"({', '.join(changed)}); resume with the run's own config")
    sources, val_cache = _open_caches(config)
    schemes = _model_schemes(sources, val_cache)
    reference = open_cache(Path(config.calibrate)) if config.calibrate else None
    if reference is not None and reference.scheme.name not in schemes:
        raise BadInput(f"{reference.path}: calibration scheme {reference.scheme.name} is not "
                       f"among the model's ({', '.join(schemes)})")
    spec = ModelSpec(alpha=config.alpha, depth=config.depth, input_size=config.input_size,
                     head=config.head, schemes=schemes, dropout=config.dropout)
    try:
        spec.check()
    except ValueError as err:
        raise BadInput(str(err)) from None
    augment = AugmentConfig.from_dict(config.augment)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from face_keypoints.validation import ValidationSet

    strategy = _strategy(config.distribute)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise BadInput(f"--batch-size {config.batch_size} must divide by the "
                       f"{replicas} replicas of --distribute {config.distribute}")
    keras.utils.set_random_seed(config.seed)
    passes = epoch_passes(config, [len(indices) for _, indices in sources])
    stream = _stream(config, sources, schemes, augment, passes)
    steps = config.steps_per_epoch or len(stream)
    if steps < 1 or stream.epoch_size < passes * config.batch_size:
        raise BadInput(f"fewer training faces than one batch of {config.batch_size}")
    start_shapes = mean_shapes(sources, schemes, config.input_size)
    model, optimizer, train_step = _build_training(config, spec, strategy, steps, start_shapes)
    if config.init_model and not continuing:
        _start_from(model, config.init_model, config.seed)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, work_dir / "checkpoints", max_to_keep=2)

    state: dict = {"epoch": 0, "phase": FLOAT, "best_val_nme": math.inf, "best_epoch": 0,
                   "history": [], "seconds": 0.0, "images": 0,
                   "validated_with": config.calibrate}
    if continuing:
        state = _read_state(run_dir)
        state.setdefault("phase", FLOAT)
        for entry in state["history"]:
            entry.setdefault("phase", FLOAT)
        if state["phase"] == FLOAT:
            checkpoint.restore(str(run_dir / "checkpoints" / state["checkpoint"])
                               ).expect_partial()
        print(f"resuming {run_dir} after epoch {state['epoch']}", file=sys.stderr)
    if not chief:
        shutil.rmtree(work_dir, ignore_errors=True)
        print(f"{task}: the chief writes {run_dir}; this worker writes {work_dir}",
              file=sys.stderr)
    work_dir.mkdir(parents=True, exist_ok=True)
    config.save(work_dir / "config.yaml")
    if not state["history"]:  # the folder is this run's, even if killed in its first epoch
        write_json_atomic(work_dir / STATE, {"epoch": 0, "history": []})

    validation = ValidationSet(val_cache, config.input_size, align=config.align)
    # What the untrained model scores: its heads start at the training faces' mean shape.
    mean_shape_nme = validation.score(np.broadcast_to(start_shapes[val_cache.scheme.name],
                                                      validation.points.shape))
    # Fixed when the run starts, so every epoch of its history is scored the same way.
    validated_with = state.get("validated_with", "")
    reference_frames = None
    if validated_with:
        reference_frames = ValidationSet(open_cache(Path(validated_with)), config.input_size,
                                         role="train", align=config.align)
    repeats = f", {passes} passes over the faces" if passes > 1 else ""
    print(f"training {spec.schemes} on {len(stream.samples)} faces ({stream.epoch_size} "
          f"samples an epoch{repeats}), validating on "
          f"{len(validation.points)}; {steps} steps of {config.batch_size} per epoch, "
          f"{replicas} replica(s)", file=sys.stderr)
    writer = tf.summary.create_file_writer(str(work_dir / "tensorboard"))
    epochs = _Epochs(work_dir, model, stream, steps, validation, reference_frames, writer,
                     state, strategy, progress)
    try:
        if state["phase"] == FLOAT:
            epochs.run(FLOAT, config.epochs, train_step, optimizer, manager, "checkpoint",
                       config.early_stopping)
        if config.qat_epochs > 0 and state["history"]:
            if state["phase"] == FLOAT:
                _start_qat(work_dir, model, state, run_dir)
            grid, qat_optimizer, qat_step = _build_qat(config, spec, strategy, steps, model)
            qat_checkpoint = tf.train.Checkpoint(model=model, optimizer=qat_optimizer,
                                                 shadows=grid.shadows)
            qat_manager = tf.train.CheckpointManager(qat_checkpoint, work_dir / "checkpoints_qat",
                                                     max_to_keep=2)
            if "qat_checkpoint" in state:
                qat_checkpoint.restore(str(run_dir / "checkpoints_qat" / state["qat_checkpoint"])
                                       ).expect_partial()
            else:
                grid.snap()
            epochs.run(QAT, state["qat_first_epoch"] + config.qat_epochs - 1, qat_step,
                       qat_optimizer, qat_manager, "qat_checkpoint", finish=grid.snap)
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
    if reference is not None and chief:
        if validated_with != config.calibrate:
            reference_frames = ValidationSet(reference, config.input_size, role="train",
                                             align=config.align)
        _calibrate_run(run_dir, reference_frames, validation, state)
    calibration = state.get("calibration") or {}
    result = TrainResult(run_dir, state["best_epoch"], state["best_val_nme"], state["epoch"],
                         state["images"] / max(state["seconds"], 1e-9), state["seconds"],
                         calibration.get("val_nme_after"))
    float_best = {k: state.get(f"float_{k}", state[k]) for k in ("best_epoch", "best_val_nme")}
    warnings = []
    if result.best_val_nme >= mean_shape_nme:
        warnings.append(f"the best epoch's validation NME {result.best_val_nme:.2f}% is no "
                        f"better than the {mean_shape_nme:.2f}% of the mean shape the model "
                        "started from: it has not learned (train longer, or lower "
                        "--learning-rate)")
        print(f"warning: {warnings[-1]}", file=sys.stderr)
    write_json_atomic(work_dir / FINISHED, {
        "best_epoch": result.best_epoch, "best_val_nme": round(result.best_val_nme, 4),
        "mean_shape_val_nme": round(mean_shape_nme, 4), "warnings": warnings,
        "float_best_epoch": float_best["best_epoch"],
        "float_best_val_nme": round(float_best["best_val_nme"], 4),
        "qat_epochs_run": sum(1 for entry in state["history"] if entry["phase"] == QAT),
        "epochs_run": result.epochs_run, "train_images_per_s": round(result.images_per_second, 1),
        "train_seconds": round(result.wall_seconds, 1), "val": str(val_cache.path),
        "data": [str(c.path) for c, _ in sources],
        "data_weights": [w for _, w in config.data_sources()], "schemes": schemes,
        "model": spec.__dict__ | {"backbone_weights": config.backbone_weights,
                                  "init_model": config.init_model or None},
        "calibration": calibration or None,
        "history": state["history"],
    })
    if not chief:
        shutil.rmtree(work_dir)
    return result


def _calibrate_run(run_dir: Path, reference, validation, state: dict) -> None:
    """Calibrate best.keras (and best_float.keras) on `reference` (a ValidationSet of the
    reference cache's training faces); the record, with the validation NME before and
    after, goes to state.json and metrics.json."""
    import keras

    from face_keypoints.calibration import calibrate

    for name in (BEST_FLOAT, "best.keras"):
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
        best = run_dir / "best.keras"
        data = (best if best.exists() else source / "best.keras").read_bytes()
        write_atomic(float_best, lambda tmp: tmp.write_bytes(data))
    model.set_weights(keras.models.load_model(float_best, compile=False).get_weights())
    state.update(phase=QAT, qat_first_epoch=state["epoch"] + 1,
                 float_best_epoch=state["best_epoch"], float_best_val_nme=state["best_val_nme"],
                 best_epoch=state["epoch"], best_val_nme=math.inf)


def benchmark_input(config: TrainConfig, batches: int = 40) -> dict:
    """Images/s of the input pipeline alone and of training end to end, same settings."""
    config.check()
    sources, val_cache = _open_caches(config)
    schemes = _model_schemes(sources, val_cache)
    spec = ModelSpec(alpha=config.alpha, depth=config.depth, input_size=config.input_size,
                     head=config.head, schemes=schemes, dropout=config.dropout)
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

    stream = _stream(config, sources, schemes, augment)
    try:
        if len(stream) < batches + 3:
            raise BadInput(f"the training caches hold fewer than {batches + 3} batches")
        pipeline = timed(stream, lambda *batch: None)
        strategy = _strategy(config.distribute)
        _, _, train_step = _build_training(config, spec, strategy, len(stream),
                                           mean_shapes(sources, schemes, config.input_size))
        end_to_end = timed(stream, lambda *batch: float(train_step(*batch)))
    finally:
        stream.close()
    return {"input_pipeline_images_per_s": round(pipeline, 1),
            "training_images_per_s": round(end_to_end, 1),
            "ratio": round(pipeline / end_to_end, 2),
            "alpha": config.alpha, "input_size": config.input_size,
            "batch_size": config.batch_size, "batches": batches}
