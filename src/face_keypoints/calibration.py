"""Output calibration: a trained model places points where one data set's annotators do.

Data sets of the same scheme place a landmark differently. Measured with the 128 px
default, against where the network puts the points, the labels lie on average 1.5
(300-W HELEN) to 2.1 (300-W AFW) source pixels to the right, 1.2 on YouTube-Faces and 0.4
on MERL-RAV. Mirror augmentation hides any horizontal offset from training: a label 1 px
right of a feature is 1 px left of it in the mirrored copy, so the network learns neither,
and a mixture of sources teaches it their average elsewhere.

Calibration measures the trained model's mean error per point on a reference cache's
training faces (framed as in validation, no augmentation) and adds it to the scheme's
output bias. That is a constant: the network, its speed and every exported precision are
otherwise unchanged, and calibrating again on the same cache changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from face_keypoints.errors import BadInput
from face_keypoints.model.heads import output_name
from face_keypoints.validation import ValidationSet


@dataclass
class Calibration:
    """What a calibration moved, in model-input pixels, and the reference set's NME."""

    cache: str
    faces: int
    shift: np.ndarray  # (K, 2) input pixels added to every prediction of the scheme
    nme_before: float
    nme_after: float

    def summary(self) -> dict:
        size = np.hypot(self.shift[:, 0], self.shift[:, 1])
        return {"cache": self.cache, "faces": self.faces,
                "mean_shift_px": [round(float(v), 3) for v in self.shift.mean(axis=0)],
                "largest_shift_px": round(float(size.max()), 3),
                "nme_before": round(self.nme_before, 4), "nme_after": round(self.nme_after, 4)}


def calibrate(model, frames: ValidationSet) -> Calibration:
    """Shift `model`'s output bias for the frames' scheme by its mean error on them (in
    place); `frames` is the reference cache's training faces (ValidationSet role "train")."""
    try:
        dense = model.get_layer(output_name(frames.scheme.name))
    except ValueError:
        raise BadInput(f"{frames.path}: calibration scheme {frames.scheme.name} is not one "
                       "of the model's heads") from None
    predicted = frames.predict(model)
    shift = frames.mean_error(predicted)
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias + shift.reshape(-1).astype(bias.dtype)])
    # The outputs move by exactly `shift`, so the new score needs no second pass.
    return Calibration(str(frames.path), len(frames.points), shift * frames.input_size,
                       frames.score(predicted), frames.score(predicted + shift))
