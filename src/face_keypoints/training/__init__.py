"""The parts of the `train` verb (train.py): the run folder, the distribution, the
training steps and the epoch loop."""
