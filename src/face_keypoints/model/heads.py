"""Regression heads: backbone features -> 2K numbers per scheme (x0, y0, x1, y1, ...).

Points are in normalised model-crop coordinates: pixel / input size, so (0, 0) is the
crop's top-left pixel centre and 1 is its width. Heads differ in how they summarise the
feature map, which decides whether *where* a feature fired survives:

* gap: global average pooling (MobileNet's classifier head; discards position);
* flatten: every cell of the map feeds the dense layer (keeps position, more weights);
* dwpool: a depthwise convolution as large as the map, a learned per-channel spatial
  pooling (keeps position with few weights; MediaPipe's landmark models use this idea);
* msgap: global average pooling of the last three resolution stages, concatenated (finer
  maps carry local detail the deepest one has averaged away; PFLD's multi-scale idea).
"""

from __future__ import annotations

import keras

from face_keypoints.model.spec import HEADS


def output_name(scheme: str) -> str:
    return f"points_{scheme}"


MULTI_SCALE_STAGES = 3


def summarise(stages: list[keras.KerasTensor], head: str) -> keras.KerasTensor:
    """The shared feature vector every scheme's dense layer reads, from the backbone's
    stage outputs (build_backbone: finest first, deepest last)."""
    features = stages[-1]
    if head == "msgap":
        pooled = [keras.layers.GlobalAveragePooling2D(name=f"head_pool_{i}")(stage)
                  for i, stage in enumerate(stages[-MULTI_SCALE_STAGES:])]
        if len(pooled) == 1:
            return pooled[0]
        return keras.layers.Concatenate(name="head_concat")(pooled)
    if head == "gap":
        return keras.layers.GlobalAveragePooling2D(name="head_pool")(features)
    if head == "flatten":
        return keras.layers.Flatten(name="head_flatten")(features)
    if head == "dwpool":
        height, width = int(features.shape[1]), int(features.shape[2])
        pooled = keras.layers.DepthwiseConv2D((height, width), padding="valid",
                                              name="head_dwpool")(features)
        return keras.layers.Flatten(name="head_flatten")(pooled)
    raise ValueError(f"head {head!r}: choose one of {', '.join(HEADS)}")


def regression_head(vector: keras.KerasTensor, scheme: str, num_points: int,
                    dropout: float) -> keras.KerasTensor:
    """2K outputs for one scheme.

    The kernel starts at zero, so the first prediction is the bias alone: the crop
    centre, or the training set's mean shape that build_model puts there.
    """
    if dropout > 0:
        vector = keras.layers.Dropout(dropout, name=f"dropout_{scheme}")(vector)
    return keras.layers.Dense(
        2 * num_points,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(0.5),
        name=output_name(scheme),
    )(vector)
