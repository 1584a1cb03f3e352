"""Regression heads: backbone features -> 2K numbers per scheme (x0, y0, x1, y1, ...).

Points are in normalised model-crop coordinates: pixel / input size, so (0, 0) is the
crop's top-left pixel centre and 1 is its width. Heads differ in how they summarise the
feature map, which decides whether *where* a feature fired survives:

* gap: global average pooling (MobileNet's classifier head; discards position);
* flatten: every cell of the map feeds the dense layer (keeps position, more weights);
* dwpool: a depthwise convolution as large as the map, a learned per-channel spatial
  pooling (keeps position with few weights; MediaPipe's landmark models use this idea);
* msgap: global average pooling of the last three resolution stages, concatenated (finer
  maps carry local detail the deepest one has averaged away; PFLD's multi-scale idea);
* simcc: coordinate classification (RTMPose's SimCC). Per point, 1x1 projections of the
  last map read cell by cell (position kept), then a classification over x bins and over
  y bins (model/codecs.py), decoded in the graph as the softmax's expectation.

Every head ends in a layer named `points_<scheme>` whose bias is added to the 2K outputs,
so calibration.py moves any head's points the same way.
"""

from __future__ import annotations

import keras
import numpy as np

from face_keypoints.model.codecs import SimCC
from face_keypoints.model.spec import CODEC_HEADS, HEADS


def output_name(scheme: str) -> str:
    return f"points_{scheme}"


def is_head_layer(name: str) -> bool:
    """Whether a layer belongs to a scheme's head (not the backbone): a run started from
    another model may leave these fresh."""
    return name.startswith((output_name(""), "simcc_", "dropout_"))


def logits_name(scheme: str) -> str:
    """The layer whose output a codec head's loss reads (bins before the softmax)."""
    return f"simcc_bins_{scheme}"


SIMCC_CHANNELS = 4  # 1x1 projections of the map per point
SIMCC_HIDDEN = 64


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


def simcc_head(features: keras.KerasTensor, scheme: str, num_points: int,
               codec: SimCC, dropout: float) -> keras.KerasTensor:
    """2K outputs for one scheme from the last feature map, without global pooling.

    Each point gets SIMCC_CHANNELS 1x1 projections of the map, and reads all of their
    cells (RTMPose flattens its map per point the same way), so where a feature fired
    survives. A dense layer shared by the scheme's points turns them into x and y bin
    logits; the softmax's expectation over the bin centres is the coordinate.
    """
    cells = int(features.shape[1]) * int(features.shape[2])
    x = keras.layers.Conv2D(num_points * SIMCC_CHANNELS, 1, name=f"simcc_proj_{scheme}")(
        features)
    x = keras.layers.Reshape((cells, num_points, SIMCC_CHANNELS),
                             name=f"simcc_cells_{scheme}")(x)
    x = keras.layers.Permute((2, 1, 3), name=f"simcc_by_point_{scheme}")(x)
    x = keras.layers.Reshape((num_points, cells * SIMCC_CHANNELS),
                             name=f"simcc_points_{scheme}")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name=f"dropout_{scheme}")(x)
    x = keras.layers.Dense(SIMCC_HIDDEN, activation="relu", name=f"simcc_hidden_{scheme}")(x)
    x = keras.layers.Dense(2 * codec.bins, kernel_initializer="zeros",
                           name=f"simcc_logits_{scheme}")(x)
    # (K, 2 * bins) -> (2K, bins): rows x0, y0, x1, y1, ... as every head emits them.
    logits = keras.layers.Reshape((2 * num_points, codec.bins), name=logits_name(scheme))(x)
    probabilities = keras.layers.Softmax(axis=-1, name=f"simcc_softmax_{scheme}")(logits)
    expectation = keras.layers.Dense(
        1, use_bias=False, trainable=False, name=f"simcc_expect_{scheme}",
        kernel_initializer=keras.initializers.Constant(codec.centres().reshape(-1, 1)),
    )(probabilities)
    flat = keras.layers.Reshape((2 * num_points,), name=f"simcc_flat_{scheme}")(expectation)
    return keras.layers.EinsumDense("ab,b->ab", output_shape=2 * num_points, bias_axes="b",
                                    kernel_initializer="ones", bias_initializer="zeros",
                                    trainable=False, name=output_name(scheme))(flat)


def scheme_head(stages: list[keras.KerasTensor], vector: keras.KerasTensor | None,
                head: str, scheme: str, num_points: int, input_size: int,
                dropout: float) -> keras.KerasTensor:
    """The `points_<scheme>` output of one scheme for the head kind `head`."""
    if head in CODEC_HEADS:
        return simcc_head(stages[-1], scheme, num_points, SimCC(input_size), dropout)
    return regression_head(vector, scheme, num_points, dropout)


def output_bias(model: keras.Model, scheme: str) -> keras.Variable:
    """The bias added to a scheme's 2K outputs (x0, y0, ...), whatever the head."""
    return model.get_layer(output_name(scheme)).bias


def start_at(model: keras.Model, scheme: str, shape: np.ndarray) -> None:
    """Make a fresh head of `scheme` start at `shape` ((K, 2) normalised): a regression
    head through its bias; a codec head, whose bins start uniform (expectation at the
    bins' middle), through the offset its output layer adds."""
    flat = np.asarray(shape, np.float32).reshape(-1)
    layer = model.get_layer(output_name(scheme))
    if isinstance(layer, keras.layers.EinsumDense):
        flat = flat - float(np.mean(SimCC(int(model.input_shape[1])).centres()))
    layer.bias.assign(flat)


def training_view(model: keras.Model, head: str) -> keras.Model:
    """What training calls: `model` itself, or for a codec head a model sharing all its
    layers that also outputs each scheme's bin logits, which the codec's loss reads."""
    if head not in CODEC_HEADS:
        return model
    outputs = dict(zip(model.output_names, model.outputs, strict=True))
    for name in model.output_names:
        scheme = name[len(output_name("")):]
        outputs[logits_name(scheme)] = model.get_layer(logits_name(scheme)).output
    return keras.Model(model.input, outputs, name=f"{model.name}_training")


def head_loss(model: keras.Model, head: str, kind: str, outputs: dict, scheme: str,
              target, mask):
    """A scheme's masked loss sum and point count (losses.point_loss's contract).

    Regression heads: `kind` (wing, l1, l2) on the points. Codec heads learn with their
    codec's loss on the bins, against the target minus the offset their output layer adds
    (the start shape, later calibration), which the bins do not carry.
    """
    import tensorflow as tf

    from face_keypoints.model.losses import point_loss

    if head not in CODEC_HEADS:
        return point_loss(kind, outputs[output_name(scheme)], target, mask)
    offset = tf.reshape(output_bias(model, scheme), (-1, 2))
    codec = SimCC(int(model.input_shape[1]))
    return codec.loss(outputs[logits_name(scheme)], target - offset, mask)
