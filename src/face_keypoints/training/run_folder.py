"""A training run's folder: its state (what --resume continues from), the checks that
decide whether a run starts, continues or is refused, its logs (CSV, curves) and the
finished marker (metrics.json) that export reads the calibration from."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from face_keypoints.config import TrainConfig
from face_keypoints.errors import BadInput
from face_keypoints.fileio import write_atomic, write_text_atomic
from face_keypoints.training.distribute import cluster_task

STATE = "state.json"
FINISHED = "metrics.json"
BEST = "best.keras"
BEST_FLOAT = "best_float.keras"
CONFIG = "config.yaml"
CHECKPOINTS, QAT_CHECKPOINTS = "checkpoints", "checkpoints_qat"
FLOAT, QAT = "float", "qat"
# Settings a --resume may change: they extend a run (or its int8 phase), never redo it.
RESUMABLE = ("early_stopping", "qat_epochs", "qat_learning_rate", "calibrate")


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool, config: TrainConfig) -> bool:
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
    if (run_dir / STATE).exists() and read_state(run_dir)["epoch"] == 0:
        # Stopped before its first epoch ended: nothing to keep, so start it afresh.
        if cluster_task(config.distribute)[0]:  # the chief alone clears the run folder
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


def read_state(run_dir: Path) -> dict:
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
        if path.name in (STATE, CONFIG, "tensorboard", CHECKPOINTS) or (
                path.name.startswith(".") and ".tmp" in path.name):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _more_to_do(run_dir: Path, config: TrainConfig) -> bool:
    state = read_state(run_dir)
    if sum(1 for entry in state["history"] if entry.get("phase") == QAT) < config.qat_epochs:
        return True
    if config.calibrate and state.get("calibration", {}).get("cache") != config.calibrate:
        return True
    stale = state["epoch"] - state["best_epoch"]
    return (state.get("phase", FLOAT) == FLOAT and state["epoch"] < config.epochs
            and not stale >= config.early_stopping > 0)


def save_curves(path: Path, history: list[dict]) -> None:
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


def write_csv(path: Path, history: list[dict]) -> None:
    keys = list(history[0]) if history else []
    lines = [",".join(keys)] + [",".join(str(h[k]) for k in keys) for h in history]
    write_text_atomic(path, "\n".join(lines) + "\n")


def remove_leftovers(run_dir: Path) -> None:
    """Remove what a kill while saving left in a run being continued: the temporary files
    of write_atomic (`.best.XXXXXXXX.tmp.keras`) and TensorFlow's `ckpt-N_temp` folders."""
    for path in run_dir.glob(".*.tmp*"):
        if path.is_file():
            path.unlink(missing_ok=True)
    for folder in (CHECKPOINTS, QAT_CHECKPOINTS):
        for path in (run_dir / folder).glob("*_temp*"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.is_file():
                path.unlink(missing_ok=True)


def restore_intact(checkpoint, folder: Path, recorded: str) -> int:
    """Restore `checkpoint` from `recorded` (`ckpt-N` in `folder`), or where that one is
    damaged or missing (a bad disk, a partial copy of the run folder), from the latest
    intact earlier one, saying which in one line. Returns the epoch restored; BadInput
    naming the damaged checkpoint when none is intact."""
    import tensorflow as tf

    wanted = _number(recorded)
    numbers = sorted({_number(p.name.partition(".")[0]) for p in folder.glob("ckpt-*.index")}
                     - {None}, reverse=True)
    candidates = [wanted, *[n for n in numbers if wanted is not None and n < wanted]]
    failure = "not a checkpoint name"
    for number in candidates:
        if number is None:
            continue
        try:
            checkpoint.restore(str(folder / f"ckpt-{number}")).expect_partial()
        except (tf.errors.OpError, ValueError, AssertionError) as err:
            if number == wanted:
                failure = (str(err).strip() or type(err).__name__).splitlines()[0]
            continue
        if number != wanted:
            print(f"{folder / recorded}: damaged or missing checkpoint ({failure}); "
                  f"resuming from ckpt-{number}, the latest intact one", file=sys.stderr)
        return number
    raise BadInput(f"{folder / recorded}: damaged or missing checkpoint ({failure}) and no "
                   "intact earlier one; --overwrite starts the run again")


def roll_back(state: dict, epoch: int) -> None:
    """Make `state` that of the end of `epoch`, for a resume from an earlier checkpoint
    than the last: the later epochs run again (best.keras and its score are kept: the
    model they describe is whole)."""
    state["history"] = [h for h in state["history"] if h["epoch"] <= epoch]
    state["epoch"] = epoch


def _number(name: str) -> int | None:
    head, _, number = name.partition("-")
    return int(number) if head == "ckpt" and number.isdigit() else None
