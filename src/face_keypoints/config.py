"""Training hyper-parameters: one dataclass that round-trips to RUN_DIR/config.yaml.

A config file gives the recipe; command-line flags override single fields of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from face_keypoints.errors import BadInput
from face_keypoints.fileio import write_text_atomic

DISTRIBUTE = ("none", "mirrored", "multiworker")


@dataclass
class TrainConfig:
    """Everything a training run depends on, so a run can be reproduced from its file.

    `epochs` float epochs come first; `qat_epochs` more then fine-tune the best of them
    with every kernel on the int8 grid (model/quantize.py), at `qat_learning_rate`
    decaying to zero. `calibrate` then moves the output bias onto a reference cache's
    annotation convention (calibration.py).
    """

    data: list[str] = field(default_factory=list)
    val: str = ""
    epochs: int = 60
    batch_size: int = 64
    alpha: float = 0.25
    depth: int = 13
    input_size: int = 112
    head: str = "flatten"
    loss: str = "wing"
    backbone_weights: str = "imagenet"
    init_model: str = ""  # a trained .keras to start from (see network.copy_matching_weights)
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    dropout: float = 0.0
    early_stopping: int = 15
    seed: int = 0
    distribute: str = "none"
    steps_per_epoch: int = 0
    augment: dict = field(default_factory=dict)
    qat_epochs: int = 0
    qat_learning_rate: float = 1e-4
    calibrate: str = ""  # a cache whose annotation convention the outputs follow (calibration.py)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, origin: str = "config") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BadInput(f"{origin}: unknown setting(s) {', '.join(unknown)}")
        return cls(**values)

    def save(self, path: Path) -> None:
        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
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
        if not self.data:
            raise BadInput("--data: give at least one training cache")
        if not self.val:
            raise BadInput("--val: give a validation cache")
        if self.epochs < 1 or self.batch_size < 1:
            raise BadInput("--epochs and --batch-size must be at least 1")
        if self.qat_epochs < 0 or self.qat_learning_rate <= 0:
            raise BadInput("--qat-epochs must be >= 0 and --qat-learning-rate > 0")
        if self.distribute not in DISTRIBUTE:
            raise BadInput(f"--distribute {self.distribute}: choose {', '.join(DISTRIBUTE)}")
