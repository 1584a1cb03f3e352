"""One reader per published format; each yields `AnnotatedFace` or `Skip` records.

A reader only parses annotations: it never opens an image (prepare does, once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from face_keypoints.data.face import AnnotatedFace, Skip
from face_keypoints.data.readers import aflw21, coco, merl68, pts300w, wflw, youtube68

Reader = Callable[[Path, Path | None, str | None], Iterator[AnnotatedFace | Skip]]

# name -> (reader, the published splits it can select with --split)
FORMATS: dict[str, tuple[Reader, tuple[str, ...]]] = {
    "wflw": (wflw.read, wflw.SPLITS),
    "300w": (pts300w.read, ()),
    "aflw21": (aflw21.read, ()),
    "merl68": (merl68.read, merl68.SPLITS),
    "youtube68": (youtube68.read, youtube68.SPLITS),
    "coco": (coco.read, ()),
}
# Formats whose annotation says, point by point, whether it is seen (the others mark
# every placed point visible, which training must not read as "seen").
MARKS_VISIBILITY = ("merl68", "coco", "aflw21")
