"""Coordinate codecs: points <-> what a head predicts. SimCC (after RTMPose): per-axis
bin distributions; CellGrid (after PIPNet): a cell of the feature map plus an offset.

SimCC: a point's x and y are each a classification over bins that tile one axis of the model
crop at `split` bins per input pixel, from `low` to `high` in normalised crop coordinates
(a margin either side, so that points an augmentation pushed out of the crop still have
bins). Targets are Gaussians of `sigma_px` input pixels around the true coordinate,
normalised to sum to one; the network's softmax over the bins is decoded in the graph as
its expectation, so an exported model still outputs coordinates.

CellGrid: see the class. Codecs are kept apart from the heads (model/heads.py builds the
layers and calls a codec's `loss`), as mmpose keeps its codecs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOW, HIGH = -0.25, 1.25
SPLIT = 2.0
SIGMA_PX = 2.0


@dataclass(frozen=True)
class SimCC:
    """Bins of one axis for a model of `input_size` pixels."""

    input_size: int
    low: float = LOW
    high: float = HIGH
    split: float = SPLIT
    sigma_px: float = SIGMA_PX

    @property
    def bins(self) -> int:
        return round((self.high - self.low) * self.input_size * self.split)

    def centres(self) -> np.ndarray:
        """(bins,) normalised coordinate of each bin's centre."""
        width = (self.high - self.low) / self.bins
        return (self.low + width * (np.arange(self.bins) + 0.5)).astype(np.float32)

    @property
    def sigma(self) -> float:
        """The label's standard deviation in normalised coordinates."""
        return self.sigma_px / self.input_size

    def encode(self, coords):
        """(..., ) normalised coordinates -> (..., bins) Gaussian label distributions."""
        import tensorflow as tf

        centres = tf.constant(self.centres())
        distance = (coords[..., None] - centres) / self.sigma
        weights = tf.exp(-0.5 * tf.square(distance))
        return weights / tf.maximum(tf.reduce_sum(weights, axis=-1, keepdims=True), 1e-12)

    def loss(self, logits, target, mask):
        """KL divergence of the softmax of `logits` (B, 2K, bins) from the labels of
        `target` (B, K, 2) normalised, masked per point by `mask` (B, K).

        Returns the masked sum over points (x and y added) and the number of points, as
        losses.point_loss does, so heads of both kinds average the same way.
        """
        import tensorflow as tf

        labels = self.encode(tf.reshape(target, (tf.shape(target)[0], -1)))
        log_p = tf.nn.log_softmax(logits, axis=-1)
        entropy = tf.reduce_sum(labels * tf.math.log(tf.maximum(labels, 1e-12)), axis=-1)
        kl = entropy - tf.reduce_sum(labels * log_p, axis=-1)  # (B, 2K)
        per_point = tf.reduce_sum(tf.reshape(kl, tf.shape(target)), axis=-1)
        return tf.reduce_sum(per_point * mask), tf.reduce_sum(mask)


HEAT_SIGMA_CELLS = 1.0


@dataclass(frozen=True)
class CellGrid:
    """PIPNet's codec: a point is a cell of the `cells` x `cells` feature map (a
    classification over the map, learned against a Gaussian of `sigma_cells` cells around
    the true position) plus that cell's offset to the point.

    Coordinates are centred (normalised crop coordinate - 0.5), the frame the head's votes
    are summed in: an int8 softmax whose probabilities do not quite sum to one then pulls
    a point towards the crop's centre by that shortfall times its distance from it, not
    from the crop's corner.
    """

    cells: int
    sigma_cells: float = HEAT_SIGMA_CELLS

    @property
    def cell(self) -> float:
        """A cell's width in normalised coordinates."""
        return 1.0 / self.cells

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(cells * cells,) centred x and y of each cell's centre, row by row, as a
        (cells, cells) map reshapes."""
        axis = (np.arange(self.cells) + 0.5) * self.cell - 0.5
        y, x = np.meshgrid(axis, axis, indexing="ij")
        return x.reshape(-1).astype(np.float32), y.reshape(-1).astype(np.float32)

    def encode(self, centred):
        """(B, K, 2) centred coordinates -> (B, K, cells * cells) label distributions: a
        Gaussian over the cell centres around the point, clamped into the map so that a
        point an augmentation pushed out of the crop still names its nearest cells."""
        import tensorflow as tf

        cx, cy = (tf.constant(c) for c in self.centres())
        inside = tf.clip_by_value(centred, -0.5, 0.5)
        sigma = self.sigma_cells * self.cell
        dx = (inside[..., 0:1] - cx) / sigma
        dy = (inside[..., 1:2] - cy) / sigma
        weights = tf.exp(-0.5 * (tf.square(dx) + tf.square(dy)))
        return weights / tf.maximum(tf.reduce_sum(weights, axis=-1, keepdims=True), 1e-12)

    def loss(self, logits, centred, mask):
        """KL divergence of the softmax of `logits` (B, K, cells * cells) from the labels of
        `centred` (B, K, 2), masked per point: the masked sum and the number of points."""
        import tensorflow as tf

        labels = self.encode(centred)
        log_p = tf.nn.log_softmax(logits, axis=-1)
        entropy = tf.reduce_sum(labels * tf.math.log(tf.maximum(labels, 1e-12)), axis=-1)
        kl = entropy - tf.reduce_sum(labels * log_p, axis=-1)
        return tf.reduce_sum(kl * mask), tf.reduce_sum(mask)
