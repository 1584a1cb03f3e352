"""Running trained models: Keras or LiteRT behind one predictor interface."""

from face_keypoints.runtime.predictor import Predictor, load_predictor

__all__ = ["Predictor", "load_predictor"]
