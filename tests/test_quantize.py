"""The int8 weight grid: kernels trained on it are what a full-integer export stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from face_keypoints.model.quantize import LEVELS, WeightGrid, off_grid, project


def _small_model():
    import keras

    image = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, name="conv")(image)
    x = keras.layers.DepthwiseConv2D(3, name="dw")(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(6, name="dense")(x)
    model = keras.Model(image, out)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 1, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def test_projection_has_127_levels_per_channel_and_is_idempotent() -> None:
    kernel = np.random.default_rng(1).normal(0, 1, (3, 3, 8, 5)).astype(np.float32)
    kernel[..., 2] *= 100  # one loud channel must not coarsen the others
    snapped = project(kernel, -1).numpy()
    for c in range(5):
        step = np.abs(kernel[..., c]).max() / LEVELS
        levels = snapped[..., c] / step
        np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
        assert np.abs(snapped[..., c] - kernel[..., c]).max() <= step / 2 + 1e-6
    np.testing.assert_allclose(project(snapped, -1).numpy(), snapped, rtol=1e-6)


def test_a_snapped_model_is_exactly_what_the_int8_export_stores(tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from face_keypoints.export.tflite import convert

    model = _small_model()
    assert off_grid(model) > 0.3
    WeightGrid(model).snap()
    assert off_grid(model) < 1e-3
    rng = np.random.default_rng(2)
    convert(model, tmp_path / "m.tflite", "int8",
            representative=lambda: (rng.uniform(0, 255, (1, 16, 16, 3)).astype(np.float32)
                                    for _ in range(8)))
    interpreter = Interpreter(model_path=str(tmp_path / "m.tflite"))
    stored = {}
    for tensor in interpreter.get_tensor_details():
        q = tensor["quantization_parameters"]
        if tensor["dtype"] == np.int8 and len(q["scales"]) > 1:
            values = interpreter.get_tensor(tensor["index"]).astype(np.float64)
            shape = [1] * values.ndim
            shape[q["quantized_dimension"]] = -1
            stored[values.size] = values * q["scales"].reshape(shape)
    for layer in ("conv", "dw", "dense"):
        kernel = model.get_layer(layer).kernel.numpy()
        exported = stored[kernel.size]
        np.testing.assert_allclose(np.sort(exported.ravel()), np.sort(kernel.ravel()),
                                   rtol=1e-5, atol=1e-7)
