"""Widening (model/widen.py): a wider network started from a trained narrower one predicts
what it did, and its copied channels are free to part."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import FIXTURES

from face_keypoints.model.network import ModelSpec, build_model
from face_keypoints.model.widen import is_narrower, widen_into

SIZE = 96


def _network(alpha: float, head: str = "gap"):
    return build_model(ModelSpec(alpha=alpha, depth=7, input_size=SIZE, head=head))


def _trained_like(alpha: float, head: str):
    """A narrow network whose batch-norm statistics and head are not their neutral
    starts (zero kernel, unit variance), so every layer's widening shows in the output."""
    model = _network(alpha, head)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        weights = layer.get_weights()
        if layer.name.endswith("_bn"):
            gamma, beta, mean, variance = weights
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2, variance.shape)])
        elif layer.name.startswith("points_"):
            layer.set_weights([rng.normal(0, 0.05, weights[0].shape), weights[1]])
    return model


def _faces() -> np.ndarray:
    paths = sorted((FIXTURES / "300w" / "afw").glob("*.jpg"))
    return np.stack([cv2.resize(cv2.imread(str(p))[..., ::-1], (SIZE, SIZE))
                     for p in paths]).astype(np.float32)


@pytest.mark.parametrize("head", ["gap", "flatten", "dwpool"])
def test_widening_keeps_the_narrow_models_predictions_and_separates_the_copies(
        head: str) -> None:
    source = _trained_like(0.25, head)
    faces = _faces()
    expected = np.asarray(source(faces, training=False)["points_ibug68"])
    assert np.ptp(expected) > 0.05  # the check below would be empty for a constant output

    exact = _network(0.5, head)
    assert is_narrower(source, exact) and not is_narrower(exact, source)
    assert widen_into(exact, source, noise=0.0) == []
    np.testing.assert_allclose(exact(faces, training=False)["points_ibug68"], expected,
                               atol=1e-4)
    kernel = exact.get_layer("conv_pw_5").get_weights()[0].reshape(-1, exact.get_layer(
        "conv_pw_5").filters)
    assert np.unique(kernel, axis=1).shape[1] < kernel.shape[1]  # without noise, copies stay

    noisy = _network(0.5, head)
    widen_into(noisy, source)
    got = np.asarray(noisy(faces, training=False)["points_ibug68"])
    assert 0 < np.abs(got - expected).max() < 0.02  # within 2 % of the crop
    kernel = noisy.get_layer("conv_pw_5").get_weights()[0].reshape(-1, kernel.shape[1])
    assert np.unique(kernel, axis=1).shape[1] == kernel.shape[1]


def test_only_a_chain_of_layers_is_widened_and_never_narrowed() -> None:
    source = _network(0.25)
    with pytest.raises(ValueError, match="only a chain"):
        widen_into(_network(0.5, head="msgap"), source)
    with pytest.raises(ValueError, match="cannot narrow"):
        widen_into(source, _network(0.5))
