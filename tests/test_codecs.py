"""SimCC's codec and head: labels decode to their coordinates, the loss is a KL
divergence that masks points, and the head's output is the bins' expectation."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from face_keypoints.model.codecs import SimCC  # noqa: E402

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
    from face_keypoints.model.heads import logits_name, training_view
    from face_keypoints.model.network import ModelSpec, build_model

    start = np.random.default_rng(1).uniform(0.2, 0.8, (68, 2)).astype(np.float32)
    model = build_model(ModelSpec(alpha=0.25, depth=5, input_size=SIZE, head="simcc"),
                        start_shapes={"ibug68": start})
    images = np.random.default_rng(2).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(images)["points_ibug68"]),
                               np.tile(start.reshape(1, -1), (2, 1)), atol=1e-5)
    layer = model.get_layer(logits_name("ibug68"))
    layer_before = model.get_layer("simcc_logits_ibug68")
    kernel, bias = layer_before.get_weights()
    rng = np.random.default_rng(3)
    layer_before.set_weights([rng.normal(0, 0.05, kernel.shape).astype(np.float32), bias])
    outputs = training_view(model, "simcc")(images)
    logits = np.asarray(outputs[logits_name("ibug68")])
    assert logits.shape == (2, 136, SimCC(SIZE).bins) and layer.name == logits_name("ibug68")
    soft = np.exp(logits - logits.max(axis=-1, keepdims=True))
    soft /= soft.sum(axis=-1, keepdims=True)
    offset = model.get_layer("points_ibug68").bias.numpy()
    expected = soft @ SimCC(SIZE).centres() + offset
    np.testing.assert_allclose(np.asarray(outputs["points_ibug68"]), expected, atol=1e-5)
