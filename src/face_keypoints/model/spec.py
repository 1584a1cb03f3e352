"""What a network is (width, depth, input, head, schemes), without importing Keras.

Settings are checked here so that a bad value fails at once, before TensorFlow starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from face_keypoints.model.heads import EXTRA_NAMES, HEAD_NAMES
from face_keypoints.schemes import get_scheme

ALPHAS = (0.25, 0.5, 0.75, 1.0)
MAX_DEPTH = 13
MIN_INPUT, MAX_INPUT = 96, 224


@dataclass
class ModelSpec:
    """Enough to rebuild a network; stored in every run's config."""

    alpha: float = 0.25
    depth: int = 13
    input_size: int = 128  # also TrainConfig's defaults (config.py)
    head: str = "gap"
    schemes: list[str] = field(default_factory=lambda: ["ibug68"])
    dropout: float = 0.0
    extras: list[str] = field(default_factory=list)  # outputs beside the points

    def check(self) -> None:
        """ValueError naming the setting that Keras could not build or we do not offer."""
        if self.alpha not in ALPHAS:
            raise ValueError(f"alpha {self.alpha}: choose one of {', '.join(map(str, ALPHAS))}")
        if not 1 <= self.depth <= MAX_DEPTH:
            raise ValueError(f"depth {self.depth}: keep between 1 and {MAX_DEPTH} blocks")
        if not MIN_INPUT <= self.input_size <= MAX_INPUT or self.input_size % 16:
            raise ValueError(f"input size {self.input_size}: a multiple of 16 in "
                             f"[{MIN_INPUT}, {MAX_INPUT}]")
        if self.head not in HEAD_NAMES:
            raise ValueError(f"head {self.head!r}: choose one of {', '.join(HEAD_NAMES)}")
        if not self.schemes:
            raise ValueError("a model needs at least one landmark scheme")
        for name in self.schemes:
            get_scheme(name)
        for name in self.extras:
            if name not in EXTRA_NAMES:
                raise ValueError(f"extra head {name!r}: choose from {', '.join(EXTRA_NAMES)}")
