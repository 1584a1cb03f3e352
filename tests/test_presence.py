"""A model's face-presence and per-point visibility outputs wherever a user meets them:
model.json, predict's JSON and pictures, FaceLandmarker's faces, and the tracker, which
keeps a face on the model's presence alone and runs no detector on tracked crops.

The models here are built through the head registry (build_model with the presence and
visibility heads), with the shipped default model's backbone and 68-point head. The extra
heads' kernels are zero, so each output is the sigmoid of its bias whatever the crop: a
presence steered honestly to any value, and visibility that says "hidden" for the mouth's
points and "seen" for the rest. That pins the plumbing (outputs read, named, carried and
drawn) and the tracker's threshold; what a trained head says of real crops is the
training's to measure. A twin without the extra heads stands for the exports written
before them, which keep working (the tracker falls back to the detector on the crop).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, needs_model

from face_keypoints.card import ModelCard
from face_keypoints.data.images import read_rgb
from face_keypoints.errors import BadInput
from face_keypoints.runtime.detector import BlazeFace
from face_keypoints.schemes import IBUG68
from face_keypoints.testing import shaken_clip

pytestmark = [needs_model, pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")]

PHOTO = FIXTURES / "300w" / "afw" / "261068_1.jpg"
SEEN, HIDDEN = 3.0, -3.0  # visibility logits: sigmoid 0.953 and 0.047
MOUTH = [i for i, name in enumerate(IBUG68.names) if "lip" in name]


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def _build(folder: Path, presence: float | None) -> Path:
    """A model built through the registry, its backbone and 68-point head copied from the
    shipped default model; with `presence`, the presence and visibility heads too,
    steered to `presence` and to SEEN/HIDDEN (the mouth hidden); without, a model of the
    kind exported before those heads existed. Saved as .keras."""
    import keras

    from face_keypoints.model.network import ModelSpec, build_model, copy_matching_weights
    from face_keypoints.resolve import resolve_model

    source = keras.models.load_model(resolve_model("default:keras").path, compile=False)
    extras = [] if presence is None else ["presence", "visibility"]
    spec = ModelSpec(alpha=0.5, depth=13, input_size=128, head="gap",
                     schemes=[IBUG68.name], extras=extras)
    model = build_model(spec)
    model.name = source.name
    fresh = copy_matching_weights(model, source)
    assert f"points_{IBUG68.name}" not in fresh  # the shipped model's points
    if presence is not None:
        bias = np.full(68, SEEN, np.float32)
        bias[MOUTH] = HIDDEN
        for layer, value in (("presence_logit", np.full(1, _logit(presence), np.float32)),
                             (f"visible_logits_{IBUG68.name}", bias)):
            kernel, _ = model.get_layer(layer).get_weights()
            model.get_layer(layer).set_weights([np.zeros_like(kernel), value])
    path = folder / ("plain.keras" if presence is None else f"presence_{presence:g}.keras")
    model.save(path)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The export folder (fp32 .tflite + model.json) of a model whose presence is 0.9."""
    from face_keypoints.export.export import export

    folder = tmp_path_factory.mktemp("presence")
    export(_build(folder, 0.9), folder / "export", precisions=["fp32"])
    return folder / "export"


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The export folder of a model without the extra heads, as exported before them."""
    from face_keypoints.export.export import export

    folder = tmp_path_factory.mktemp("plain")
    export(_build(folder, None), folder / "export", precisions=["fp32"])
    return folder / "export"


@pytest.fixture(scope="module")
def steered(tmp_path_factory: pytest.TempPathFactory):
    """steered(p): a .keras model whose presence is p."""
    folder = tmp_path_factory.mktemp("steered")
    made: dict[float, Path] = {}

    def make(presence: float) -> Path:
        if presence not in made:
            made[presence] = _build(folder, presence)
        return made[presence]

    return make


class CountingBlazeFace(BlazeFace):
    """BlazeFace that counts its searches of tracked faces' crops (region given)."""

    crops = 0

    def detect(self, image, region=None, min_score=None):
        if region is not None:
            self.crops += 1
        return super().detect(image, region, min_score)


def test_model_json_lists_presence_and_visibility_and_old_cards_have_neither(
        exported: Path, plain: Path) -> None:
    card = ModelCard.read(exported)
    assert card.has_presence and card.visible == {IBUG68.name: 68}
    assert card.outputs == {IBUG68.name: 68}
    kinds = {o["name"]: o["kind"] for o in card.data["outputs"]}
    assert kinds == {"points_ibug68": "points", "presence": "presence",
                     "visible_ibug68": "visible"}
    old = ModelCard.read(plain)
    assert not old.has_presence and old.visible == {}
    assert old.outputs == {IBUG68.name: 68}


def test_predict_json_carries_presence_and_visibility_rounded(exported: Path, plain: Path,
                                                              tmp_path: Path) -> None:
    from face_keypoints import predict

    result = predict([PHOTO], model=exported, output=tmp_path / "out")
    (face,) = result.results[0]["faces"]
    assert face["presence"] == 0.9
    visible = np.array(face["visible"])
    assert visible.shape == (68,) and visible[MOUTH].max() == 0.047
    assert np.delete(visible, MOUTH).min() == 0.953
    written = json.loads((tmp_path / "out" / f"{PHOTO.stem}.json").read_text())
    assert written["faces"][0]["visible"] == face["visible"]
    (old,) = predict([PHOTO], model=plain).results[0]["faces"]
    assert old["presence"] is None and old["visible"] is None
    assert set(old) == set(face) == {"box", "score", "scheme", "points", "presence", "visible",
                                     "roll"}


def test_face_landmarker_faces_carry_presence_and_visibility(exported: Path) -> None:
    from face_keypoints import FaceLandmarker

    landmarker = FaceLandmarker(exported)
    (face,) = landmarker.detect(PHOTO)
    assert face.presence == pytest.approx(0.9, abs=1e-4)
    assert face.visible.shape == (68,)
    np.testing.assert_array_equal(face.hidden, np.isin(np.arange(68), MOUTH))
    frame, _ = next(shaken_clip(read_rgb(PHOTO), 1))
    (tracked,) = landmarker.track(frame)
    assert tracked.presence == pytest.approx(0.9, abs=1e-4)
    np.testing.assert_array_equal(tracked.hidden, face.hidden)


def test_hidden_points_are_drawn_as_rings_and_seen_points_as_dots(exported: Path,
                                                                  plain: Path) -> None:
    from face_keypoints import FaceLandmarker
    from face_keypoints.draw import HIDDEN_COLOUR, POINT_COLOUR
    from face_keypoints.predict import annotate

    photo = read_rgb(PHOTO)
    (face,) = FaceLandmarker(exported).detect(photo)
    (unmarked,) = FaceLandmarker(plain).detect(photo)
    assert unmarked.visible is None

    def near(drawn: np.ndarray, point: np.ndarray, colour: tuple, reach: int) -> bool:
        x, y = np.round(point).astype(int)
        patch = drawn[y - reach : y + reach + 1, x - reach : x + reach + 1].astype(int)
        return bool((np.abs(patch - colour).max(axis=2) < 40).any())

    drawn, undrawn = annotate(photo, [face]), annotate(photo, [unmarked])
    jaw_and_eyes = [*range(17), *range(36, 48)]
    assert all(near(drawn, face.points[i], POINT_COLOUR, 0)
               and not near(drawn, face.points[i], HIDDEN_COLOUR, 2) for i in jaw_and_eyes)
    assert all(near(drawn, face.points[i], HIDDEN_COLOUR, 4)
               and not near(drawn, face.points[i], POINT_COLOUR, 0) for i in MOUTH)
    assert all(near(undrawn, unmarked.points[i], POINT_COLOUR, 0)
               and not near(undrawn, unmarked.points[i], HIDDEN_COLOUR, 4) for i in MOUTH)


def test_the_tracker_keeps_a_present_face_without_running_the_detector_on_its_crop(
        steered, plain: Path) -> None:
    from face_keypoints.runtime.landmarker import Landmarker
    from face_keypoints.runtime.tracker import Tracker

    frames = [frame for frame, _ in shaken_clip(read_rgb(PHOTO), 8, seed=4)]
    crops = {}
    for model in (plain, steered(0.9)):
        detector = CountingBlazeFace()
        tracker = Tracker(detector, Landmarker(model), redetect_every=100)
        counts = [len(tracker.step(frame, i / 30.0)) for i, frame in enumerate(frames)]
        assert counts == [1] * len(frames)
        crops[str(model)] = detector.crops
    assert crops[str(plain)] == len(frames) - 1  # the fallback checks every tracked crop
    assert crops[str(steered(0.9))] == 0


@pytest.mark.parametrize(("presence", "threshold", "kept"),
                         [(0.4, 0.5, False), (0.4, 0.3, True), (0.6, 0.5, True),
                          (0.6, 0.7, False)])
def test_a_face_is_kept_only_while_its_presence_reaches_the_threshold(
        steered, presence: float, threshold: float, kept: bool) -> None:
    from face_keypoints import FaceLandmarker

    landmarker = FaceLandmarker(steered(presence), min_tracking_confidence=threshold)
    frames = [frame for frame, _ in shaken_clip(read_rgb(PHOTO), 4, seed=5)]
    counts = [len(landmarker.track(frame)) for frame in frames]
    assert counts == [1 if kept else 0] * len(frames)


@pytest.mark.parametrize("value", ["-0.1", "1.5", "nan"])
def test_min_tracking_confidence_outside_0_to_1_is_one_line(run_cli, tmp_path: Path,
                                                             value: str) -> None:
    from face_keypoints import FaceLandmarker

    result = run_cli("predict", PHOTO, "--output", tmp_path / "out",
                     "--min-tracking-confidence", value)
    assert result.code == 2 and result.out == "" and not (tmp_path / "out").exists()
    (line,) = result.err.strip().splitlines()
    assert "min_tracking_confidence" in line.replace("-", "_")
    if value != "nan":
        with pytest.raises(BadInput, match="min_tracking_confidence"):
            FaceLandmarker(min_tracking_confidence=float(value))
