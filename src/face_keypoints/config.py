"""Training hyper-parameters: one dataclass that round-trips to RUN_DIR/config.yaml.

A config file gives the recipe; command-line flags override single fields of it.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from face_keypoints.errors import BadInput
from face_keypoints.fileio import write_text_atomic
from face_keypoints.model.heads import EXTRA_NAMES, HEAD_NAMES
from face_keypoints.model.losses import LOSSES
from face_keypoints.model.spec import ModelSpec

DISTRIBUTE = ("none", "mirrored", "multiworker")
# Fewest optimiser steps an epoch of `steps_per_epoch` 0 takes: a smaller data set is drawn
# in as many whole passes as that needs (training/data.epoch_passes; README, "train").
MIN_STEPS_PER_EPOCH = 20
# The largest value each count takes: far beyond any run of this project (a WFLW epoch
# is some 120 steps of 64), and small enough that what a run allocates from them (the
# faces an epoch draws, the schedule) fits in memory. Rates allocate nothing: one too
# large diverges, which the run reports in one line.
LIMITS = {"epochs": 100_000, "batch_size": 4096, "steps_per_epoch": 100_000,
          "qat_epochs": 100_000, "early_stopping": 100_000, "warmup_epochs": 100_000}
MAX_DATA_WEIGHT = 1000.0  # a data entry's weight: how many times an epoch draws its faces


@dataclass
class TrainConfig:
    """Everything a training run depends on, so a run can be reproduced from its file.

    `epochs` float epochs come first; `qat_epochs` more then fine-tune the best of them
    with every kernel on the int8 grid (model/quantize.py), at `qat_learning_rate`
    decaying to zero. `calibrate` then moves the output bias onto a reference cache's
    annotation convention (calibration.py).
    """

    data: list[str | dict] = field(default_factory=list)  # a cache, or {path, weight}
    val: str = ""
    # The defaults are the recipe of configs/ibug68_a025_128.yaml (the shipped model's
    # first stage): a first run with no config learns as that one did. The network's
    # are ModelSpec's, which `spec` makes from them.
    epochs: int = 80
    batch_size: int = 64
    alpha: float = ModelSpec.alpha
    depth: int = ModelSpec.depth
    input_size: int = ModelSpec.input_size
    head: str = ModelSpec.head
    loss: str = "wing"
    backbone_weights: str = "imagenet"
    init_model: str = ""  # a trained .keras to start from (see network.copy_matching_weights)
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    dropout: float = ModelSpec.dropout
    # Outputs beside the points (model/heads.py EXTRA_HEADS): "presence", "visibility".
    extras: list[str] = field(default_factory=list)
    early_stopping: int = 0  # never: the cosine decay is planned for all `epochs`
    seed: int = 0
    distribute: str = "none"
    steps_per_epoch: int = 0  # 0: one pass, or the fewest giving MIN_STEPS_PER_EPOCH
    augment: dict = field(default_factory=dict)
    # Crops rotated so the ground truth's eyes are level (augment's rotation is then the
    # roll estimate's error): the framing of a runtime that estimates the roll.
    align: bool = False
    qat_epochs: int = 0
    qat_learning_rate: float = 1e-4
    calibrate: str = ""  # a cache whose annotation convention the outputs follow (calibration.py)

    def to_dict(self) -> dict:
        return asdict(self)

    def spec(self, schemes: list[str]) -> ModelSpec:
        """The network these settings train, with one head per scheme; BadInput naming
        the setting Keras could not build or we do not offer."""
        spec = ModelSpec(alpha=self.alpha, depth=self.depth, input_size=self.input_size,
                         head=self.head, schemes=list(schemes), dropout=self.dropout,
                         extras=list(self.extras))
        try:
            spec.check()
        except ValueError as err:
            raise BadInput(str(err)) from None
        return spec

    @classmethod
    def from_dict(cls, values: dict, origin: str = "config") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BadInput(f"{origin}: unknown setting(s) {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        return cls(**{name: _conform(value, hints[name], f"{origin}: {name}")
                      for name, value in values.items()})

    def save(self, path: Path) -> None:
        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        if Path(path).exists() and not Path(path).is_file():  # a FIFO would block the read
            raise BadInput(f"{path}: not a config file (a folder, FIFO or device)")
        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise BadInput(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            raise BadInput(f"{path}: not a readable YAML config: {err}".splitlines()[0]) \
                from None
        if not isinstance(values, dict):
            raise BadInput(f"{path}: a config file is a mapping of setting: value")
        return cls.from_dict(values, str(path))

    def check(self) -> None:
        """Refuse settings that cannot train, with the setting's name in the message."""
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = _conform(getattr(self, f.name), hints[f.name], _flag(f.name))
            setattr(self, f.name, value)
            if isinstance(value, float) and not math.isfinite(value):
                raise BadInput(f"{_flag(f.name)} {value}: must be a finite number")
        for name, limit in LIMITS.items():
            if getattr(self, name) > limit:
                raise BadInput(f"{name} {getattr(self, name)}: must be at most {limit:g}")
        _check_augment(self.augment)
        if self.learning_rate <= 0 or self.qat_learning_rate <= 0:
            raise BadInput("--learning-rate and --qat-learning-rate must be above 0")
        if self.weight_decay < 0 or self.warmup_epochs < 0:
            raise BadInput("weight_decay and warmup_epochs must be 0 or more")
        if not 0.0 <= self.dropout < 1.0:
            raise BadInput(f"dropout {self.dropout}: must be in [0, 1)")
        if self.early_stopping < 0 or self.steps_per_epoch < 0:
            raise BadInput("--early-stopping and steps_per_epoch must be 0 or more")
        if not 0 <= self.seed < 2**32:
            raise BadInput(f"--seed {self.seed}: must be in [0, 2**32)")
        if not self.data:
            raise BadInput("--data: give at least one training cache")
        self.data_sources()
        if not self.val:
            raise BadInput("--val: give a validation cache")
        if self.epochs < 1 or self.batch_size < 1:
            raise BadInput("--epochs and --batch-size must be at least 1")
        if self.qat_epochs < 0:
            raise BadInput("--qat-epochs must be >= 0")
        if self.head not in HEAD_NAMES:
            raise BadInput(f"--head {self.head}: choose one of {', '.join(HEAD_NAMES)}")
        unknown = [name for name in self.extras if name not in EXTRA_NAMES]
        if unknown:
            raise BadInput(f"extras {unknown[0]}: choose from {', '.join(EXTRA_NAMES)}")
        if self.loss not in LOSSES:
            raise BadInput(f"--loss {self.loss}: choose one of {', '.join(LOSSES)}")
        if self.distribute not in DISTRIBUTE:
            raise BadInput(f"--distribute {self.distribute}: choose {', '.join(DISTRIBUTE)}")

    def data_sources(self) -> list[tuple[str, float]]:
        """(cache, weight) of every `data` entry: a path (weight 1), or a mapping
        {path: CACHE, weight: W}. An epoch draws W times a cache's faces from it (see
        data/pipeline.py), so a small set in the convention that matters can be given a
        larger share without copying it."""
        sources = []
        for entry in self.data:
            if isinstance(entry, str):
                sources.append((entry, 1.0))
                continue
            unknown = sorted(set(entry) - {"path", "weight"})
            path, weight = entry.get("path"), entry.get("weight", 1.0)
            if unknown or not isinstance(path, str):
                raise BadInput(f"data entry {entry}: give a cache path, or path: and weight:")
            if isinstance(weight, bool) or not isinstance(weight, int | float) \
                    or not math.isfinite(weight) or not 0 < weight <= MAX_DATA_WEIGHT:
                raise BadInput(f"data entry {path}: weight {weight!r} must be a number above 0 "
                               f"and at most {MAX_DATA_WEIGHT:g}")
            sources.append((path, float(weight)))
        return sources


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


_KINDS = {int: "a whole number", float: "a number", str: "a text", bool: "true or false",
          list: "a list", dict: "a mapping of name: value"}


def _conform(value: object, hint: object, where: str) -> object:
    """`value` as the annotation `hint` wants it (an int where a float is wanted becomes
    a float), or BadInput naming the setting and what it should have been.

    A float setting also takes text that reads as a number: YAML reads `1e-3` (no dot)
    as a string.
    """
    problem = _mismatch(value, hint)
    if problem is None:
        return float(value) if hint is float else value  # type: ignore[arg-type]
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    shown = {str: "the text ", list: "the list ", dict: "the mapping "}.get(type(value), "")
    raise BadInput(f"{where}: must be {problem}, not {shown}{value!r}")


def _mismatch(value: object, hint: object) -> str | None:
    """What `value` should have been to fit `hint`, or None when it fits."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        wanted = [_mismatch(value, arg) for arg in args]
        return None if None in wanted else " or ".join(w for w in wanted if w)
    if origin is list:
        if not isinstance(value, list):
            return _KINDS[list]
        problems = [p for p in (_mismatch(item, args[0]) for item in value) if p]
        return f"a list whose items are each {problems[0]}" if problems else None
    kind = origin or hint
    if kind is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return None if number else _KINDS[float]
    if kind is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else _KINDS[int]
    if isinstance(kind, type) and not isinstance(value, kind):
        return _KINDS.get(kind, kind.__name__)
    return None


def _check_augment(augment: dict) -> None:
    """The augmentation ranges as AugmentConfig takes them, every number finite."""
    from face_keypoints.data.augment import AugmentConfig

    for name, value in augment.items():
        numbers = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise BadInput(f"augment {name}: {value} is not a finite number")
    try:
        AugmentConfig.from_dict(augment)
    except (ValueError, TypeError) as err:
        raise BadInput(str(err) if str(err).startswith("augment") else f"augment: {err}") \
            from None
