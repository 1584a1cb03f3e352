"""MobileNetV1 backbone with a width (alpha), a depth (blocks kept) and an input size.

The image enters as float RGB in [0, 255]; the model rescales it itself, so a caller
(and a TFLite runtime) never has to know MobileNet's [-1, 1] convention.
"""

from __future__ import annotations

from pathlib import Path

import keras

BN_MOMENTUM = 0.9
# Blocks after which MobileNetV1 halves the resolution (conv_dw_2, 4, 6 and 12 stride 2):
# the last block of each resolution stage, where a multi-scale head reads features.
STAGE_ENDS = (1, 3, 5, 11)


def build_backbone(
    image: keras.KerasTensor, alpha: float, depth: int, weights: str | None
) -> list[keras.KerasTensor]:
    """MobileNetV1 features of `image`: the output of the last block of every resolution
    stage before block `depth`, then that of block `depth` (the deepest, last).

    `weights` is "imagenet" (downloads where there is internet), a local .h5 file of
    keras-applications' no-top MobileNet for this alpha, or None for a random start.
    """
    size = int(image.shape[1])
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise ValueError(f"{weights}: backbone weights file not found")
    scaled = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit_range")(image)
    base = keras.applications.MobileNet(
        input_shape=(size, size, 3),
        alpha=alpha,
        include_top=False,
        weights=weights,
        input_tensor=scaled,
    )
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Keras' 0.99 lets the running statistics trail the weights by ~100 steps, so
            # validation of short fine-tunes looks far worse than training; 0.9 tracks.
            layer.momentum = BN_MOMENTUM
    blocks = [b for b in STAGE_ENDS if b < depth] + [depth]
    return [base.get_layer(f"conv_pw_{b}_relu").output for b in blocks]
