"""Landmark losses on normalised coordinates, masked per point.

TensorFlow is imported inside the functions: LOSSES is read by the command line and the
config check before it starts.

Errors are measured in percent of the model crop (normalised coordinate x 100), the unit
Wing loss's w = 10, epsilon = 2 are set in: its log region then covers errors up to about
10 % of the crop, where a well-trained model's errors live.
"""

from __future__ import annotations

import math

LOSSES = ("wing", "l1", "l2")
UNIT = 100.0
WING_W, WING_EPS = 10.0, 2.0


def _wing(abs_error):
    import tensorflow as tf

    c = WING_W - WING_W * math.log(1.0 + WING_W / WING_EPS)
    return tf.where(abs_error < WING_W, WING_W * tf.math.log1p(abs_error / WING_EPS),
                    abs_error - c)


def point_loss(kind: str, predicted, target, mask):
    """Masked loss sum and the number of points it covers.

    predicted (B, 2K) as the head emits it; target (B, K, 2); mask (B, K) in {0, 1}.
    Returns the masked sum and the mask's sum, so several heads (and replicas) can be
    averaged over the points they really saw.
    """
    import tensorflow as tf

    diff = (tf.reshape(predicted, tf.shape(target)) - target) * UNIT
    if kind == "l2":
        per_point = tf.reduce_sum(tf.square(diff), axis=-1)
    elif kind == "l1":
        per_point = tf.reduce_sum(tf.abs(diff), axis=-1)
    elif kind == "wing":
        per_point = tf.reduce_sum(_wing(tf.abs(diff)), axis=-1)
    else:
        raise ValueError(f"loss {kind!r}: choose one of {', '.join(LOSSES)}")
    return tf.reduce_sum(per_point * mask), tf.reduce_sum(mask)
