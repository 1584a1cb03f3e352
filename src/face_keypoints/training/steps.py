"""The network, its optimiser and the compiled training step of each phase (float, and
quantization-aware on the int8 grid), and the start from another trained model."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from face_keypoints.config import TrainConfig
from face_keypoints.errors import BadInput
from face_keypoints.model.spec import ModelSpec

# How keras-applications names each MobileNet width in its weight files.
KERAS_WIDTHS = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}


def _loss_function(config: TrainConfig, spec: ModelSpec, model):
    """The batch loss: each term of the model's heads (the points, then every extra head)
    averaged over what all replicas saw, weighted and added."""
    import tensorflow as tf

    from face_keypoints.model.heads import loss_terms, training_view

    view = training_view(model, spec.head)

    def loss(images, targets, masks):
        outputs = view(images, training=True)
        total = 0.0
        for value, count, weight in loss_terms(model, spec.head, config.loss, spec.schemes,
                                               spec.extras, outputs, targets, masks):
            seen = tf.distribute.get_replica_context().all_reduce("sum", count)
            total = total + weight * value / tf.maximum(seen, 1.0)
        return total

    return loss


def _optimizer(learning_rate: float, weight_decay: float, total_steps: int, warmup: int,
               variables: list):
    """AdamW on a cosine decay to 1 % of `learning_rate`, after a linear warm-up."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else learning_rate, decay_steps=max(1, total_steps - warmup),
        warmup_target=learning_rate if warmup else None, warmup_steps=warmup, alpha=0.01)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
    optimizer.build(variables)
    return optimizer


def _compile_step(strategy, model, optimizer, loss, grid=None):
    """One compiled training step. With a WeightGrid, the kernels are put on the int8 grid
    before the forward pass and their gradients step the float shadows instead."""
    import tensorflow as tf

    def replica_step(images, targets, masks):
        with tf.GradientTape() as tape:
            value = loss(images, targets, masks)
        grads = tape.gradient(value, model.trainable_variables)
        if grid is None:
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        else:
            optimizer.apply_gradients(zip(grid.gradients_for(grads), grid.variables,
                                          strict=True))
        return value

    @tf.function
    def train_step(images, targets, masks):
        if grid is not None:
            grid.snap()
        values = strategy.run(replica_step, args=(images, targets, masks))
        return strategy.reduce("sum", values, axis=None)

    return train_step


def build_training(config: TrainConfig, spec: ModelSpec, strategy, steps: int,
                    start_shapes: dict[str, np.ndarray]):
    """The model (heads starting at `start_shapes`), its optimizer (warm-up + cosine
    decay) and the compiled train step."""
    from face_keypoints.model.network import build_model

    # A run from init_model gets every backbone layer from it (start_from), so loading
    # ImageNet weights first would be wasted, and fail for a width they do not fit.
    use_backbone = config.backbone_weights != "none" and not config.init_model
    weights = config.backbone_weights if use_backbone else None
    with strategy.scope():
        try:
            model = build_model(spec, weights, start_shapes)
        except ValueError as err:
            raise BadInput(_weights_misfit(config, err)) from None
        except Exception as err:
            if weights == "imagenet":
                raise BadInput("could not fetch the ImageNet weights (no internet?): pass "
                               "--backbone-weights PATH to a local .h5, or none") from err
            raise
        optimizer = _optimizer(config.learning_rate, config.weight_decay,
                               steps * config.epochs, max(1, int(config.warmup_epochs * steps)),
                               model.trainable_variables)
    step = _compile_step(strategy, model, optimizer, _loss_function(config, spec, model))
    return model, optimizer, step


def start_from(model, path: str, seed: int) -> None:
    """Load the weights of the trained model at `path` into `model` where they fit: all of
    the backbone and every head of a scheme both predict. A narrower model is widened
    (model/widen.py), so a wider network starts from what a narrow one learned."""
    from face_keypoints.model.heads import is_head_layer
    from face_keypoints.model.network import copy_matching_weights
    from face_keypoints.model.widen import is_narrower, widen_into
    from face_keypoints.runtime.predictor import load_predictor

    if Path(path).suffix != ".keras":
        raise BadInput(f"--init-model {path}: give the .keras model a training run saved")
    source = load_predictor(path).model
    if is_narrower(source, model):
        try:
            kept = widen_into(model, source, seed)
        except ValueError as err:
            raise BadInput(f"--init-model {path}: cannot widen {source.name} into "
                           f"{model.name}: {err}") from None
        print(f"widened {source.name} into {model.name}", file=sys.stderr)
    else:
        kept = copy_matching_weights(model, source)
    misfits = [name for name in kept if not is_head_layer(name)]
    if misfits:
        raise BadInput(f"--init-model {path}: {source.name} does not fit {model.name} "
                       f"(its {misfits[0]} is missing or of another shape)")
    print(f"started from {path}; fresh heads: {', '.join(kept) or 'none'}", file=sys.stderr)


def build_qat(config: TrainConfig, spec: ModelSpec, strategy, steps: int, model):
    """Shadows of `model`'s kernels, their optimizer and the on-grid train step."""
    from face_keypoints.model.quantize import WeightGrid

    with strategy.scope():
        grid = WeightGrid(model)
        optimizer = _optimizer(config.qat_learning_rate, config.weight_decay,
                               steps * config.qat_epochs, 0, grid.variables)
    step = _compile_step(strategy, model, optimizer, _loss_function(config, spec, model), grid)
    return grid, optimizer, step


def _weights_misfit(config: TrainConfig, err: ValueError) -> str:
    """One line for backbone weights Keras could not load into this network: usually a
    file of keras-applications for another width, which its name tells
    (mobilenet_<width>_<size>_tf_no_top.h5)."""
    given = f"--backbone-weights {config.backbone_weights}"
    text = (str(err).strip() or type(err).__name__).splitlines()[0]
    if "not found" in text:
        return f"{given}: {text.split(': ', 1)[-1]}"
    named = re.search(r"mobilenet_(\d_\d)_", Path(config.backbone_weights).name)
    width = {code: alpha for alpha, code in KERAS_WIDTHS.items()}.get(
        named.group(1) if named else "")
    if width is not None and width != config.alpha:
        return (f"{given}: holds MobileNet weights of width {width:g}, and --alpha is "
                f"{config.alpha:g}; give keras-applications' file of that width "
                f"(mobilenet_{KERAS_WIDTHS.get(config.alpha, '?')}_224_tf_no_top.h5) or "
                f"--alpha {width:g}")
    return f"{given}: these weights do not fit a MobileNet of width {config.alpha:g} ({text})"
