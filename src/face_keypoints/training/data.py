"""The training data of a run: its caches, the heads they call for, how many passes over
the faces an epoch makes, and the stream of augmented batches."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from face_keypoints.config import MIN_STEPS_PER_EPOCH, TrainConfig
from face_keypoints.data.cache import Cache, open_cache
from face_keypoints.errors import BadInput


def open_caches(config: TrainConfig) -> tuple[list[tuple[Cache, np.ndarray]], Cache]:
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


def batch_stream(config: TrainConfig, sources, schemes: list[str], augment, passes: int = 1):
    from face_keypoints.data.pipeline import BatchStream

    return BatchStream(sources, schemes, config.batch_size, config.input_size, augment,
                       seed=config.seed,
                       weights=[w * passes for _, w in config.data_sources()],
                       align=config.align, extras=config.extras)


def model_schemes(sources: list[tuple[Cache, np.ndarray]], val: Cache) -> list[str]:
    """One head per scheme of the training caches (the validation scheme included)."""
    names: list[str] = []
    for cache, _ in sources:
        if cache.scheme.name not in names:
            names.append(cache.scheme.name)
    if val.scheme.name not in names:
        raise BadInput(f"{val.path}: validation scheme {val.scheme.name} is not among the "
                       f"training schemes ({', '.join(names)})")
    return names
