"""How a training run is spread: one process or several replicas (tf.distribute), and
which process writes the run folder."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from face_keypoints.errors import BadInput


def strategy_for(kind: str):
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


def cluster_task(kind: str) -> tuple[bool, str]:
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


def worker_dir(run_dir: Path, task: str) -> Path:
    """Where a worker other than the chief writes: every worker saves the checkpoints and
    models (TensorFlow's multi-worker guide: saving may need all of them), this one into
    a place of its own outside the run folder, fixed per run and task so that a rerun
    clears what a killed worker left."""
    key = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"face-keypoints-{key}-{task}"


def split_for_replicas(strategy, *batch):
    """One slice of the batch per replica, for MirroredStrategy's step."""
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync

    def part(context):
        return tf.nest.map_structure(
            lambda a: np.array_split(a, replicas)[context.replica_id_in_sync_group], batch)

    return strategy.experimental_distribute_values_from_function(part)


def statistics_averager(strategy, model):
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
