"""The codec heads: SimCC's and PIPNet's labels decode to their coordinates, their losses
are KL divergences that mask points, and each head's output is what its codec decodes
(the bins' expectation; the score-weighted votes of the cells)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from face_keypoints.model.codecs import CellGrid, SimCC  # noqa: E402

SIZE = 96


def test_labels_decode_to_their_coordinates_at_subpixel_precision() -> None:
    codec = SimCC(SIZE)
    assert codec.bins == round(1.5 * SIZE * 2)
    coords = np.array([[0.0, 0.2371, 0.5, 0.8133, 1.0, 1.1]], np.float32)
    labels = codec.encode(tf.constant(coords)).numpy()
    np.testing.assert_allclose(labels.sum(axis=-1), 1.0, atol=1e-5)
    decoded = labels @ codec.centres()
    np.testing.assert_allclose(decoded, coords, atol=1e-4 / SIZE)
    spread = np.sqrt((labels * (codec.centres() - coords[..., None]) ** 2).sum(axis=-1))
    np.testing.assert_allclose(spread, codec.sigma, rtol=0.02)


def test_loss_is_zero_at_the_labels_and_ignores_masked_points() -> None:
    codec = SimCC(SIZE)
    rng = np.random.default_rng(0)
    target = rng.uniform(0.1, 0.9, (2, 5, 2)).astype(np.float32)
    labels = codec.encode(tf.reshape(target, (2, -1)))
    perfect = tf.math.log(tf.maximum(labels, 1e-30))
    total, count = codec.loss(perfect, target, tf.ones((2, 5)))
    assert count.numpy() == 10 and abs(total.numpy()) < 1e-3

    wrong = perfect.numpy().copy()
    wrong[0, 0] = np.roll(wrong[0, 0], 20)  # point 0's x, 10 px off
    mask = np.ones((2, 5), np.float32)
    hurt, _ = codec.loss(tf.constant(wrong), target, tf.constant(mask))
    assert hurt.numpy() > 1.0
    mask[0, 0] = 0.0
    hidden, count = codec.loss(tf.constant(wrong), target, tf.constant(mask))
    assert count.numpy() == 9 and abs(hidden.numpy()) < 1e-3


def test_head_outputs_the_expectation_of_its_bins_from_the_start_shape() -> None:
    from face_keypoints.model.heads import SimCCHead, training_view
    from face_keypoints.model.network import ModelSpec, build_model

    start = np.random.default_rng(1).uniform(0.2, 0.8, (68, 2)).astype(np.float32)
    model = build_model(ModelSpec(alpha=0.25, depth=5, input_size=SIZE, head="simcc"),
                        start_shapes={"ibug68": start})
    images = np.random.default_rng(2).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(images)["points_ibug68"]),
                               np.tile(start.reshape(1, -1), (2, 1)), atol=1e-5)
    layer = model.get_layer(SimCCHead.logits_name("ibug68"))
    layer_before = model.get_layer("simcc_logits_ibug68")
    kernel, bias = layer_before.get_weights()
    rng = np.random.default_rng(3)
    layer_before.set_weights([rng.normal(0, 0.05, kernel.shape).astype(np.float32), bias])
    outputs = training_view(model, "simcc")(images)
    logits = np.asarray(outputs[SimCCHead.logits_name("ibug68")])
    assert logits.shape == (2, 136, SimCC(SIZE).bins)
    assert layer.name == SimCCHead.logits_name("ibug68")
    soft = np.exp(logits - logits.max(axis=-1, keepdims=True))
    soft /= soft.sum(axis=-1, keepdims=True)
    offset = model.get_layer("points_ibug68").bias.numpy()
    expected = soft @ SimCC(SIZE).centres() + offset
    np.testing.assert_allclose(np.asarray(outputs["points_ibug68"]), expected, atol=1e-5)


def test_cell_labels_centre_on_their_point_and_name_the_nearest_cells_outside() -> None:
    grid = CellGrid(8)
    inner = np.array([[[0.31, -0.12], [0.0, 0.05], [-0.2, 0.27]]], np.float32)  # centred
    labels = grid.encode(tf.constant(inner)).numpy()
    np.testing.assert_allclose(labels.sum(axis=-1), 1.0, atol=1e-5)
    cx, cy = grid.centres()
    decoded = np.stack([labels @ cx, labels @ cy], axis=-1)
    np.testing.assert_allclose(decoded, inner, atol=0.02)
    outside = grid.encode(tf.constant([[[0.9, -0.8]]])).numpy()[0, 0]
    assert np.argmax(outside) == 7  # the top-right cell: row 0, column 7


def test_cell_loss_is_zero_at_the_labels_and_ignores_masked_points() -> None:
    grid = CellGrid(8)
    rng = np.random.default_rng(4)
    target = rng.uniform(-0.4, 0.4, (2, 5, 2)).astype(np.float32)
    perfect = tf.math.log(tf.maximum(grid.encode(tf.constant(target)), 1e-30))
    total, count = grid.loss(perfect, tf.constant(target), tf.ones((2, 5)))
    assert count.numpy() == 10 and abs(total.numpy()) < 1e-3
    wrong = perfect.numpy().copy()
    wrong[1, 3] = np.roll(wrong[1, 3], 9)  # point 3 of face 1, a cell and a row off
    mask = np.ones((2, 5), np.float32)
    assert grid.loss(tf.constant(wrong), tf.constant(target), tf.constant(mask))[0] > 1.0
    mask[1, 3] = 0.0
    hidden, count = grid.loss(tf.constant(wrong), tf.constant(target), tf.constant(mask))
    assert count.numpy() == 9 and abs(hidden.numpy()) < 1e-3


def test_pip_head_starts_at_the_crop_centre_and_outputs_the_score_weighted_votes() -> None:
    import keras

    from face_keypoints.model.heads import HeatmapHead, training_view
    from face_keypoints.model.network import ModelSpec, build_model, copy_matching_weights
    from face_keypoints.resolve import resolve_model
    from face_keypoints.runtime.predictor import load_predictor

    keras.utils.set_random_seed(5)
    start = np.random.default_rng(1).uniform(0.2, 0.8, (68, 2)).astype(np.float32)
    model = build_model(ModelSpec(alpha=0.25, depth=13, input_size=SIZE, head="pip"),
                        start_shapes={"ibug68": start})
    # A random MobileNet's deep activations vanish; the lite model's backbone gives the
    # head features that vary from cell to cell.
    copy_matching_weights(model, load_predictor(resolve_model("lite:keras")).model)
    images = np.random.default_rng(2).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(images)["points_ibug68"]), 0.5, atol=1e-5)

    rng = np.random.default_rng(3)
    for name in ("pip_heat_ibug68", "pip_offset_x_ibug68", "pip_offset_y_ibug68"):
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([rng.normal(0, 0.05, kernel.shape).astype(np.float32), bias])
    model.get_layer("points_ibug68").bias.assign(np.full(136, 0.52, np.float32))
    outputs = training_view(model, "pip")(images)
    scores = np.asarray(outputs[HeatmapHead.logits_name("ibug68")])
    grid = CellGrid(SIZE // HeatmapHead.STRIDE)
    assert scores.shape == (2, 68, grid.cells ** 2)
    offsets = keras.Model(model.input, [model.get_layer("pip_dx_ibug68").output,
                                        model.get_layer("pip_dy_ibug68").output])(images)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    votes = [centres + grid.cell * np.asarray(offset)
             for centres, offset in zip(grid.centres(), offsets, strict=True)]
    expected = np.stack([(weights * v).sum(axis=-1) for v in votes], axis=-1) + 0.52
    np.testing.assert_allclose(np.asarray(outputs["points_ibug68"]),
                               expected.reshape(2, -1), atol=1e-5)
    assert np.ptp(expected) > 0.01  # the scores and offsets moved the points
