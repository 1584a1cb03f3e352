"""The int8 weight grid, and training on it (quantization-aware fine-tuning of weights).

A full-integer TFLite export stores every convolution, depthwise and dense kernel as int8
per output channel with the symmetric scale max|w| / 127 (per-channel weights, as the
converter writes them; BatchNorm folds into a kernel per output channel, so a kernel on
the grid stays on it after folding). Rounding the weights of our 80-epoch 68-point model
onto that grid alone moved its AFW NME from 5.72 to 6.09 % (the whole int8 file: 6.13 %):
a network this small has no spare precision, and post-training calibration cannot move
weights.

Training on the grid fixes the weights instead: each kernel keeps a float "shadow" that
takes the optimizer's steps, while the network always computes with the shadow's
projection onto the grid (the straight-through estimator: the gradient of the projected
kernel is applied to the shadow as if rounding were the identity). When training stops,
the kernels are exactly on the grid, so the fp32, fp16 and int8 exports compute the same
weights and differ only in how activations are rounded.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

LEVELS = 127  # symmetric int8: -127..127, as TFLite quantizes weights


def channel_axis(layer: keras.layers.Layer) -> int | None:
    """The axis int8 export gives one scale per index of, or None for layers without one."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return 2  # (h, w, channels, multiplier): one scale per input channel
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
        return -1
    return None


def project(kernel: tf.Tensor, axis: int) -> tf.Tensor:
    """`kernel` rounded to the int8 grid of its own per-channel scale max|w| / 127."""
    axis = axis % len(kernel.shape)
    reduce = [i for i in range(len(kernel.shape)) if i != axis]
    scale = tf.reduce_max(tf.abs(kernel), axis=reduce, keepdims=True) / LEVELS
    scale = tf.where(scale > 0, scale, tf.ones_like(scale))
    return tf.round(kernel / scale) * scale


def _layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def gridded_kernels(model: keras.Model) -> list[tuple[keras.Variable, int]]:
    """(kernel variable, channel axis) of every layer the int8 export quantizes."""
    found = []
    for layer in _layers(model):
        axis = channel_axis(layer)
        if axis is not None and layer.trainable:
            found.append((layer.kernel, axis))
    return found


def off_grid(model: keras.Model) -> float:
    """The largest distance of any kernel weight from its grid, in units of its step:
    0 for a model trained on the grid, up to 0.5 for one that was not."""
    worst = 0.0
    for kernel, axis in gridded_kernels(model):
        values = np.asarray(kernel.numpy(), np.float64)
        axis = axis % values.ndim
        reduce = tuple(i for i in range(values.ndim) if i != axis)
        scale = np.abs(values).max(axis=reduce, keepdims=True) / LEVELS
        scale = np.where(scale > 0, scale, 1.0)
        worst = max(worst, float(np.abs(values / scale - np.round(values / scale)).max()))
    return worst


class WeightGrid:
    """Float shadows of a model's quantized kernels, and the model's kernels on the grid.

    Train with `variables` (the shadows in place of the kernels, then every other
    trainable variable) and `gradients_for` (the kernels' gradients handed to their
    shadows); call `snap` before each forward pass so the model computes on the grid.
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self._kernels = gridded_kernels(model)
        self.shadows = [keras.Variable(kernel.numpy(), name=f"shadow_{i}")
                        for i, (kernel, _) in enumerate(self._kernels)]
        kernel_ids = {id(kernel) for kernel, _ in self._kernels}
        self._others = [v for v in model.trainable_variables if id(v) not in kernel_ids]
        self.variables = [*self.shadows, *self._others]

    def snap(self) -> None:
        """Put every kernel at its shadow's projection onto the int8 grid."""
        for (kernel, axis), shadow in zip(self._kernels, self.shadows, strict=True):
            kernel.assign(project(shadow, axis))

    def gradients_for(self, gradients: list[tf.Tensor]) -> list[tf.Tensor]:
        """Gradients w.r.t. `model.trainable_variables`, reordered to match `variables`."""
        by_id = dict(zip((id(v) for v in self.model.trainable_variables), gradients,
                         strict=True))
        kernels = [by_id[id(kernel)] for kernel, _ in self._kernels]
        return [*kernels, *(by_id[id(v)] for v in self._others)]
