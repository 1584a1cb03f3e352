"""The mean shape: the floor every landmark model must beat, and its starting point.

Faces are framed as the model sees them (geometry.model_matrix), so the mean shape of a
training set is exactly what a model that ignored the image would best predict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from face_keypoints import geometry
from face_keypoints.data.cache import Cache
from face_keypoints.data.pipeline import Route
from face_keypoints.schemes import get_scheme


def mean_shapes(sources: list[tuple[Cache, np.ndarray]], schemes: list[str],
                input_size: int) -> dict[str, np.ndarray]:
    """{scheme: (K, 2)} mean normalised points per head over the given faces.

    A head's points come from every source whose scheme maps onto it; a point no face
    defines sits at the crop centre.
    """
    shapes = {}
    for head in schemes:
        k = get_scheme(head).num_points
        total, count = np.zeros((k, 2)), np.zeros(k)
        for cache, indices in sources:
            matrix = geometry.model_matrix(cache.size, input_size)
            points = geometry.transform_points(np.asarray(cache.points[indices], np.float64),
                                               matrix) / input_size
            placed, mask = Route.between(cache.scheme.name, head).fill(
                points, np.asarray(cache.visibility[indices]))
            total += (placed * mask[..., None]).sum(axis=0)
            count += mask.sum(axis=0)
        shapes[head] = np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None],
                                0.5).astype(np.float32)
    return shapes


class MeanShapePredictor:
    """Predicts the training set's mean shape for every face (the field's baseline)."""

    kind = "mean-shape"

    def __init__(self, train: Cache | list[Cache], input_size: int,
                 schemes: list[str] | None = None) -> None:
        """The mean over the training faces (Cache.indices("train")) of one or more caches;
        `schemes` defaults to the first cache's."""
        caches = train if isinstance(train, list) else [train]
        self.path = Path(f"mean shape of {'+'.join(c.path.name for c in caches)}")
        self.input_size = input_size
        self.schemes = schemes or [caches[0].scheme.name]
        self.shapes = mean_shapes([(c, c.indices("train")) for c in caches], self.schemes,
                                  input_size)

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.repeat(shape[None], len(images), axis=0)
                for name, shape in self.shapes.items()}
