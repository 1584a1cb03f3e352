"""A conversion the TFLite converter fails (here its int8 calibration) ends in one line
naming the file and the precision, not the converter's traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")


def test_a_failed_conversion_is_one_error_naming_the_file_and_precision(
        tmp_path: Path) -> None:
    import keras

    from face_keypoints.errors import FaceKeypointsError
    from face_keypoints.export.tflite import convert

    image = keras.Input((16, 16, 3), name="image")
    features = keras.layers.Conv2D(4, 3, name="conv")(image)
    model = keras.Model(image, {"points_ibug68": keras.layers.Flatten()(features)})

    def images():  # calibration images the model cannot take: the converter fails
        for seed in range(4):
            yield np.random.default_rng(seed).uniform(0, 255, (1, 9, 9, 3)).astype(
                np.float32)

    convert(model, tmp_path / "m_fp32.tflite", "fp32")
    with pytest.raises(FaceKeypointsError) as caught:
        convert(model, tmp_path / "m_int8.tflite", "int8", representative=images)
    message = str(caught.value)
    assert "m_int8.tflite" in message and "int8" in message and "\n" not in message
    assert not (tmp_path / "m_int8.tflite").exists()
