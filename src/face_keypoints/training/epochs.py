"""The epoch loop both training phases share: train, validate, keep the best model,
checkpoint and log, so that a kill at any point resumes where the last epoch ended."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from face_keypoints.errors import FaceKeypointsError
from face_keypoints.fileio import write_atomic, write_json_atomic
from face_keypoints.training.distribute import split_for_replicas, statistics_averager
from face_keypoints.training.run_folder import BEST, QAT, STATE, save_curves, write_csv

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


class Epochs:
    """The epoch loop both phases share: train, validate, keep the best model, checkpoint,
    log; `state` (state.json) is what --resume continues from."""

    def __init__(self, run_dir: Path, model, stream, steps: int, validation, reference,
                 writer, state: dict, strategy, progress: bool) -> None:
        self.run_dir, self.model, self.stream, self.steps = run_dir, model, stream, steps
        self.validation, self.reference = validation, reference
        self.writer, self.state = writer, state
        self.strategy, self.progress = strategy, progress
        self.average = statistics_averager(strategy, model)

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
                    batch = split_for_replicas(self.strategy, *batch)
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
                write_atomic(self.run_dir / BEST, model.save)
                state.pop("calibration", None)
            stale = epoch - state["best_epoch"]
            state["epoch"] = epoch
            state[checkpoint_key] = Path(manager.save(checkpoint_number=epoch)).name
            write_json_atomic(self.run_dir / STATE, state)
            write_csv(self.run_dir / "log.csv", state["history"])
            save_curves(self.run_dir / "curves.png", state["history"])
            with self.writer.as_default(step=epoch):
                for key in ("train_loss", "val_nme", "lr", "images_per_s"):
                    tf.summary.scalar(key, entry[key])
            print(f"epoch {epoch}{' (int8 grid)' if phase == QAT else ''}: loss "
                  f"{entry['train_loss']:.4f}, val NME {val:.3f}%"
                  f"{' (best)' if improved else ''}, {entry['images_per_s']:.0f} img/s, "
                  f"{seconds:.0f} s", file=sys.stderr)
