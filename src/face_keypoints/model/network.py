"""The landmark network: backbone + heads as one Keras functional model."""

from __future__ import annotations

import keras
import numpy as np

from face_keypoints.model.backbone import build_backbone
from face_keypoints.model.heads import extra_outputs, get_head, output_name
from face_keypoints.model.spec import ModelSpec
from face_keypoints.schemes import get_scheme

__all__ = ["INPUT_NAME", "ModelSpec", "build_model", "copy_matching_weights",
           "model_schemes"]

INPUT_NAME = "image"


def build_model(spec: ModelSpec, backbone_weights: str | None = None,
                start_shapes: dict[str, np.ndarray] | None = None) -> keras.Model:
    """Image (S, S, 3) float RGB 0..255 -> {"points_<scheme>": (2K,)} per scheme, and the
    outputs of `spec.extras` ("presence": (1,); "visible_<scheme>": (K,)).

    `start_shapes` ({scheme: (K, 2)} normalised, e.g. the training set's mean shape) sets
    each head's bias, so training starts at the mean shape and learns the residual.
    """
    spec.check()
    image = keras.Input((spec.input_size, spec.input_size, 3), name=INPUT_NAME)
    stages = build_backbone(image, spec.alpha, spec.depth, backbone_weights)
    head = get_head(spec.head)
    features = head.features(stages, spec.input_size)
    outputs = {
        output_name(name): head.points(features, name, get_scheme(name).num_points,
                                       spec.input_size, spec.dropout)
        for name in spec.schemes
    }
    outputs |= extra_outputs(stages, spec.extras,
                             {name: get_scheme(name).num_points for name in spec.schemes})
    name = f"mobilenet_a{spec.alpha:g}_d{spec.depth}_{spec.input_size}px_{spec.head}"
    model = keras.Model(image, outputs, name=name)
    for scheme, shape in (start_shapes or {}).items():
        head.start(model, scheme, shape)
    return model


def model_schemes(model: keras.Model) -> list[str]:
    """The schemes a model predicts, read back from its output names."""
    prefix = output_name("")
    names = [n for n in model.output_names if n.startswith(prefix)]
    if not names:
        raise ValueError("not a face-keypoints model (no points_<scheme> outputs)")
    return [n[len(prefix):] for n in names]


def copy_matching_weights(target: keras.Model, source: keras.Model) -> list[str]:
    """Copy into `target` the weights of every `source` layer of the same name and shapes;
    returns the names of the `target` layers with weights that kept their own.

    This is how a run starts from another trained model: pretraining on a second data
    set or scheme carries the backbone (and the heads the two share) over, while a head
    the source lacks keeps its fresh start at the training set's mean shape.
    """
    kept = []
    for layer in target.layers:
        if not layer.weights:
            continue
        try:
            weights = source.get_layer(layer.name).get_weights()
        except ValueError:
            kept.append(layer.name)
            continue
        if [w.shape for w in weights] != [tuple(w.shape) for w in layer.weights]:
            kept.append(layer.name)
            continue
        layer.set_weights(weights)
    return kept
