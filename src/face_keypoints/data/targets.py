"""Names of the training targets beside each scheme's points, shared by the pipeline that
fills them and the model heads that learn them (and name their outputs after them)."""

from __future__ import annotations

PRESENCE = "presence"  # (B,) 1 for a crop that frames a face as training does, else 0
VISIBILITY = "visibility"  # the extra head whose targets are visible_<scheme>
EXTRA_TARGETS = (PRESENCE, VISIBILITY)


def visible_name(scheme: str) -> str:
    """(B, K): 1 where a point of `scheme` is seen, 0 where it is hidden."""
    return f"visible_{scheme}"
