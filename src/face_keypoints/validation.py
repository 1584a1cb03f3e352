"""Validation during training: the val cache framed once, NME after every epoch."""

from __future__ import annotations

import numpy as np

from face_keypoints.data.cache import Cache
from face_keypoints.data.pipeline import BatchStream
from face_keypoints.metrics import face_nme
from face_keypoints.model.heads import output_name


class ValidationSet:
    """Model inputs and normalised ground truth of a cache, made once, not per epoch.

    Framed by the same pipeline as training, with augmentation off (and eyes levelled
    where the run's crops are `align`ed). `role` picks the cache's faces
    (Cache.indices): "val" to validate, "train" to calibrate on.
    """

    def __init__(self, cache: Cache, input_size: int, batch_size: int = 128,
                 role: str = "val", align: bool = False) -> None:
        self.scheme, self.path, self.input_size = cache.scheme, cache.path, input_size
        head = cache.scheme.name
        stream = BatchStream([(cache, cache.indices(role))], [head], batch_size, input_size,
                             augment=None, seed=0, shuffle=False, align=align)
        with stream:
            batches = list(stream.epoch(0))
        self.batches = [images for images, _, _ in batches]
        self.points = np.concatenate([targets[head] for _, targets, _ in batches])
        self.present = np.concatenate([masks[head] for _, _, masks in batches]) > 0

    def predict(self, model) -> np.ndarray:
        """(N, K, 2) normalised points of the scheme's head."""
        key = output_name(self.scheme.name)
        return np.concatenate(
            [np.asarray(model(images, training=False)[key]) for images in self.batches]
        ).reshape(self.points.shape)

    def mean_error(self, predicted: np.ndarray) -> np.ndarray:
        """(K, 2) mean of ground truth minus `predicted` per point, normalised (0 for a
        point never present): what calibration.py adds to the model's outputs."""
        errors = np.where(self.present[..., None], self.points - predicted, 0.0)
        return errors.sum(axis=0) / np.maximum(self.present.sum(axis=0), 1)[:, None]

    def score(self, predicted: np.ndarray) -> float:
        """Mean inter-ocular NME in percent of `predicted` (faces without both outer eyes
        left out)."""
        errors = face_nme(predicted, self.points, self.present, self.scheme)["inter_ocular"]
        return float(np.nanmean(errors) * 100.0)

    def nme(self, model, reference: ValidationSet | None = None) -> float:
        """`score` of the model's predictions; with a `reference`, of the model as
        calibration on it would leave it."""
        predicted = self.predict(model)
        if reference is not None:
            predicted = predicted + reference.mean_error(reference.predict(model))
        return self.score(predicted)
