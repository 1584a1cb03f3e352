"""The record every reader yields, whatever the published format."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Visibility states, as MERL-RAV defines them; every format maps onto these.
ABSENT = 0  # no location (self-occluded, or left empty by the annotators)
VISIBLE = 1
OCCLUDED = 2  # covered by an object; the annotators' estimated location is given


@dataclass
class AnnotatedFace:
    """One annotated face: points in the pixels of `image`."""

    image: Path
    points: np.ndarray  # (K, 2) float32
    visibility: np.ndarray  # (K,) uint8, ABSENT / VISIBLE / OCCLUDED
    scheme: str
    source: str  # the annotation file (or the .pts) the face came from
    line: int  # 1-based line in `source`; 0 where a file holds one face
    identity: str  # faces sharing it never land on both sides of a split
    box: np.ndarray | None = None  # (x0, y0, x1, y1) when the data set gives one
    split: str = "all"
    yaw: float | None = None
    attributes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Skip:
    """A face that cannot be used, with where it came from and why."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"skipped {where}: {self.reason}"
