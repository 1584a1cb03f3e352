"""Exporting trained Keras models for on-device runtimes (TFLite / LiteRT)."""
