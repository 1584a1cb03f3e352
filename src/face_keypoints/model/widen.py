"""Start a wider network from a trained narrower one, computing the same function.

Width 0.25 is the only MobileNetV1 with ImageNet weights here, and a wider network from
scratch needs many more epochs to reach it. Net2Net's widening (Chen et al., 2016)
avoids that: every channel of the wider network copies one channel of the narrower
(every source channel at least once), and a layer that mixes channels reads a copied
channel with a share of the source weight, the shares of one channel's copies summing to
one. The wider network then predicts what the trained one did and training only has to
use the new room. Random shares, and a little noise on the copies' own weights, keep the
copies from receiving identical updates, which would leave them copies forever.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["is_narrower", "widen_into"]

# Noise on a copied channel's weights, relative to the std of its layer's weights: small
# enough to leave the predictions almost unchanged, enough to separate the copies.
COPY_NOISE = 0.01
# Layers that neither hold weights nor change which channel is which.
_CHANNELWISE = (keras.layers.ReLU, keras.layers.ZeroPadding2D, keras.layers.Rescaling,
                keras.layers.GlobalAveragePooling2D, keras.layers.Dropout,
                keras.layers.Activation, keras.layers.InputLayer)


def is_narrower(source: keras.Model, target: keras.Model) -> bool:
    """Whether `source`'s first convolution has fewer filters than `target`'s."""
    def filters(model: keras.Model) -> int:
        return int(model.get_layer("conv1").kernel.shape[-1])

    return filters(source) < filters(target)


def widen_into(target: keras.Model, source: keras.Model, seed: int = 0,
               noise: float = COPY_NOISE) -> list[str]:
    """Fill `target` with `source`'s weights, copying channels where `target` is wider;
    returns the names of `target`'s layers with weights that kept their own (heads of a
    scheme `source` lacks); `noise` 0 keeps the predictions exactly. ValueError for a
    network that is not one chain of layers (the multi-scale head) or whose layers differ
    in more than width."""
    rng = np.random.default_rng(seed)
    channels: np.ndarray | None = None  # source channel of each target channel, so far
    kept = []
    for layer in target.layers:
        if isinstance(layer, keras.layers.Concatenate):
            raise ValueError(f"{layer.name}: only a chain of layers can be widened")
        try:
            old = source.get_layer(layer.name)
        except ValueError:
            if layer.weights:
                kept.append(layer.name)
            continue
        if isinstance(layer, _CHANNELWISE):
            continue
        if isinstance(layer, keras.layers.Dense):
            _set(layer, _mix(old.get_weights(), channels, np.arange(layer.units),
                             rng, 0, noise))
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            weights = old.get_weights()
            layer.set_weights([weights[0][:, :, channels]] + [b[channels] for b in weights[1:]])
        elif isinstance(layer, keras.layers.Conv2D):
            weights = old.get_weights()
            outputs = _copies(weights[0].shape[-1], layer.filters, rng)
            inputs = channels if channels is not None else np.arange(weights[0].shape[2])
            _set(layer, _mix(weights, inputs, outputs, rng, 2, noise))
            channels = outputs
        elif isinstance(layer, keras.layers.Flatten):
            # Flattening (H, W, C) puts channel c of cell p at p * C + c.
            cells = int(np.prod(layer.input.shape[1:-1]))
            channels = (np.arange(cells)[:, None] * (channels.max() + 1)
                        + channels[None, :]).reshape(-1)
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([w[channels] for w in old.get_weights()])
        else:
            raise ValueError(f"{layer.name}: cannot widen a {type(layer).__name__} layer")
    return kept


def _copies(old: int, new: int, rng: np.random.Generator) -> np.ndarray:
    """Source channel of each of `new` channels: every source channel once, in order,
    then random ones."""
    if new < old:
        raise ValueError(f"cannot narrow {old} channels to {new}")
    return np.concatenate([np.arange(old), rng.integers(0, old, new - old)])


def _mix(weights: list[np.ndarray], inputs: np.ndarray, outputs: np.ndarray,
         rng: np.random.Generator, in_axis: int, noise: float) -> list[np.ndarray]:
    """A channel-mixing layer's kernel (and bias) for copied input and output channels."""
    kernel = np.take(np.take(weights[0], inputs, axis=in_axis), outputs, axis=-1)
    shares = rng.uniform(0.5, 1.5, len(inputs))
    shares /= np.bincount(inputs, weights=shares)[inputs]
    shape = [1] * kernel.ndim
    shape[in_axis] = len(inputs)
    kernel = kernel * shares.reshape(shape)
    copied = np.arange(len(outputs)) > outputs.max()  # _copies puts the copies last
    kernel = kernel + rng.normal(0.0, noise * weights[0].std(), kernel.shape) * copied
    return [kernel.astype(np.float32)] + [b[outputs] for b in weights[1:]]


def _set(layer: keras.layers.Layer, weights: list[np.ndarray]) -> None:
    if [w.shape for w in weights] != [tuple(w.shape) for w in layer.weights]:
        raise ValueError(f"{layer.name}: layers differ in more than width")
    layer.set_weights(weights)
