"""A model with two heads (iBUG 68 and WFLW 98 points) wherever a user meets the scheme:
export's model.json, `predict --scheme`, FaceLandmarker(scheme=...) on photos and streams
(tracking and smoothing), `evaluate` and the pictures.

The models are made here from the shipped model's 68-point head, whatever else it has:
that head alone (a one-head model), and that head with a 98-point head beside it. The
98-point head is the 68-point head followed by a linear shape regression fitted on the
279 real WFLW faces of ../shared/data/wflw_partial (each of the 98 points a weighted sum
of the 68, 0.7 % inter-ocular NME on those faces), so its points sit on real faces and
tracking can follow them. One TFLite conversion per module.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, needs_model, needs_shared, shared_path

from face_keypoints.errors import BadInput
from face_keypoints.schemes import IBUG68, WFLW98, map_points
from face_keypoints.testing import shaken_clip

pytestmark = [needs_model, needs_shared("wflw_partial")]

WFLW_LIST = ("WFLW_annotations", "list_98pt_rect_attr_train_test")
WFLW_PHOTOS = FIXTURES / "wflw" / "WFLW_images"
AFW_PHOTO = FIXTURES / "300w" / "afw" / "261068_1.jpg"


def _wflw_faces(path: Path) -> tuple[np.ndarray, list[str]]:
    """(N, 98, 2) points and image names of a WFLW annotation list."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    points = np.array([[float(v) for v in row[:196]] for row in rows]).reshape(-1, 98, 2)
    return points, [row[-1] for row in rows]


def _shape_regression() -> np.ndarray:
    """(98, 68) weights, rows summing to 1: each WFLW point from the 68 iBUG points the
    schemes' mapping gives, least squares over the wflw_partial faces."""
    faces, _ = _wflw_faces(shared_path("wflw_partial", *WFLW_LIST,
                                       "list_98pt_rect_attr_train.txt"))
    ibug, _ = map_points(faces, WFLW98.name, IBUG68.name)
    centre = ibug.mean(axis=1, keepdims=True)
    a = (ibug - centre).transpose(0, 2, 1).reshape(-1, IBUG68.num_points)
    b = (faces - centre).transpose(0, 2, 1).reshape(-1, WFLW98.num_points)
    ridge = 1e-3 * len(a) * np.mean(a**2) * np.eye(IBUG68.num_points)
    weights = np.linalg.solve(a.T @ a + ridge, a.T @ b).T
    return weights + (1.0 - weights.sum(axis=1, keepdims=True)) / IBUG68.num_points


@pytest.fixture(scope="module")
def two_heads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two-head model as .keras and as its fp32 export (.tflite + model.json), and
    the one-head model as .keras."""
    import keras

    from face_keypoints.export.export import export
    from face_keypoints.model.heads import output_name
    from face_keypoints.resolve import resolve_model

    folder = tmp_path_factory.mktemp("two_heads")
    source = keras.models.load_model(resolve_model("default:keras").path, compile=False)
    head = source.get_layer(output_name(IBUG68.name))
    kernel, bias = head.get_weights()
    keras.Model(source.input, {head.name: head.output}, name=source.name).save(
        folder / "one_head.keras")
    weights = _shape_regression()
    wflw = keras.layers.Dense(2 * WFLW98.num_points, name=output_name(WFLW98.name))
    model = keras.Model(source.input, {head.name: head.output, wflw.name: wflw(head.input)},
                        name=source.name)
    features = kernel.shape[0]
    wflw.set_weights([
        np.einsum("kj,fjc->fkc", weights, kernel.reshape(features, -1, 2))
        .reshape(features, -1).astype(np.float32),
        (weights @ bias.reshape(-1, 2)).reshape(-1).astype(np.float32)])
    model.save(folder / "two_heads.keras")
    result = export(folder / "two_heads.keras", folder / "export", precisions=["fp32"])
    (tflite,) = [f.path for f in result.files]
    return {"keras": folder / "two_heads.keras", "tflite": tflite, "export": folder / "export",
            "one_head": folder / "one_head.keras"}


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Caches of the real fixture faces: WFLW (4 faces, 98 points), AFW (3, 68 points)."""
    from face_keypoints.prepare import prepare

    folder = tmp_path_factory.mktemp("two_heads_caches")
    for name, format, source in (("wflw", "wflw", FIXTURES / "wflw"),
                                 ("afw", "300w", FIXTURES / "300w" / "afw")):
        prepare(format, source, folder / name, size=128, progress=False, log=lambda line: None)
    return {"wflw": folder / "wflw", "afw": folder / "afw"}


def test_model_json_lists_both_heads_with_their_point_names(two_heads: dict[str, Path]) -> None:
    card = json.loads((two_heads["export"] / "model.json").read_text())
    outputs = {o["scheme"]: o for o in card["outputs"]}
    assert set(outputs) == {IBUG68.name, WFLW98.name}
    for scheme in (IBUG68, WFLW98):
        assert outputs[scheme.name]["num_points"] == scheme.num_points
        assert outputs[scheme.name]["point_names"] == list(scheme.names)


def test_predict_reports_the_asked_scheme_near_the_annotation_and_draws_its_contours(
        run_cli, two_heads: dict[str, Path], tmp_path: Path) -> None:
    annotated, names = _wflw_faces(FIXTURES / "wflw" / WFLW_LIST[0] / WFLW_LIST[1]
                                   / "list_98pt_rect_attr_test.txt")
    for scheme in (WFLW98, IBUG68):
        out = tmp_path / scheme.name
        result = run_cli("predict", WFLW_PHOTOS, "--model", two_heads["tflite"], "--scheme",
                         scheme.name, "--output", out, "--json")
        assert result.code == 0, result.err
        records = [json.loads(line) for line in result.out.splitlines()]
        assert len(records) == 2
        errors = []
        for record in records:
            assert record["scheme"] == scheme.name
            photo = Path(record["image"])
            faces = [np.array(f["points"]) for f in record["faces"]]
            assert {f["scheme"] for f in record["faces"]} == {scheme.name}
            assert all(points.shape == (scheme.num_points, 2) for points in faces)
            for truth, name in zip(annotated, names, strict=True):
                if photo.name != Path(name).name:
                    continue
                truth, _ = map_points(truth, WFLW98.name, scheme.name)
                found = min(faces, key=lambda p: np.abs(p.mean(0) - truth.mean(0)).sum())
                a, b = scheme.outer_eyes
                errors.append(np.linalg.norm(found - truth, axis=1).mean()
                              / np.linalg.norm(truth[a] - truth[b]))
            # Every segment of the scheme's contours inside the photo is drawn.
            picture = cv2.imread(str(out / photo.relative_to(WFLW_PHOTOS).with_suffix(".png")))
            changed = np.abs(picture.astype(int) - cv2.imread(str(photo)).astype(int)).max(2)
            height, width = changed.shape
            for points in faces:
                for contour, closed in zip(scheme.contours, scheme.closed, strict=True):
                    path = [*contour, contour[0]] if closed else list(contour)
                    for i, j in itertools.pairwise(path):
                        x, y = np.round((points[i] + points[j]) / 2).astype(int)
                        if 1 <= x < width - 1 and 1 <= y < height - 1:
                            assert changed[y - 1 : y + 2, x - 1 : x + 2].max() > 40, (i, j)
        # The four annotated faces, found and placed as the 68-point model places them.
        assert len(errors) == 4 and np.mean(errors) < 0.08, errors


def test_a_scheme_the_model_has_no_head_for_is_one_line(run_cli,
                                                        two_heads: dict[str, Path]) -> None:
    result = run_cli("predict", AFW_PHOTO, "--model", two_heads["one_head"], "--scheme",
                     WFLW98.name)
    assert result.code == 2, result.err
    (line,) = result.err.strip().splitlines()
    assert f"has no {WFLW98.name} head; its heads: {IBUG68.name}" in line
    assert run_cli("predict", AFW_PHOTO, "--scheme", "lips").code == 2


def test_face_landmarker_tracks_and_smooths_98_points(two_heads: dict[str, Path]) -> None:
    from face_keypoints import FaceLandmarker
    from face_keypoints.data.images import read_rgb

    with pytest.raises(BadInput, match="has no aflw21 head; its heads: ibug68, wflw98"):
        FaceLandmarker(two_heads["tflite"], scheme="aflw21")
    photo = read_rgb(AFW_PHOTO)
    a, b = WFLW98.outer_eyes
    raw, shifts = [], []
    landmarker = FaceLandmarker(two_heads["tflite"], scheme=WFLW98.name, smoothing=False)
    assert landmarker.scheme == WFLW98.name
    for frame, shift in shaken_clip(photo, 60, shake=0.7, sweep=25.0, seed=1):
        (face,) = landmarker.track(frame)
        assert face.scheme == WFLW98.name and face.points.shape == (WFLW98.num_points, 2)
        raw.append(face.points)
        shifts.append(shift)
    # Undo the known camera motion: what is left is the tracking error.
    still = np.array(raw) - np.array(shifts)[:, None, :]
    ocular = np.linalg.norm(still[:, a] - still[:, b], axis=1).mean()
    spread = np.linalg.norm(still - np.median(still, axis=0), axis=2).mean(axis=1) / ocular
    assert spread.max() < 0.06

    jitter = {}
    for smoothing in (False, True):
        landmarker = FaceLandmarker(two_heads["tflite"], scheme=WFLW98.name,
                                    smoothing=smoothing)
        points = np.array([landmarker.track(frame)[0].points
                           for frame, _ in shaken_clip(photo, 40, shake=0.5, seed=2)])[5:]
        ocular = np.linalg.norm(points[:, a] - points[:, b], axis=1).mean()
        jitter[smoothing] = np.linalg.norm(np.diff(points, axis=0), axis=2).mean() / ocular
    assert jitter[True] <= 0.5 * jitter[False]


def test_evaluate_scores_the_head_of_the_caches_scheme_and_says_which(
        two_heads: dict[str, Path], caches: dict[str, Path]) -> None:
    from face_keypoints.evaluate import evaluate, format_table

    wflw = {kind: evaluate(two_heads[kind], caches["wflw"]) for kind in ("keras", "tflite")}
    for result in wflw.values():
        assert result["head"] == WFLW98.name and result["heads"] == [IBUG68.name, WFLW98.name]
        assert result["points_scored"] == WFLW98.num_points and result["n"] == 4
    assert wflw["tflite"]["nme"] == pytest.approx(wflw["keras"]["nme"], abs=1e-3)
    assert "head   wflw98 scored, on the cache's own points" in format_table(wflw["keras"])

    afw = evaluate(two_heads["keras"], caches["afw"])
    assert afw["head"] == IBUG68.name and afw["points_scored"] == IBUG68.num_points
    one_head = evaluate(two_heads["one_head"], caches["wflw"])
    assert one_head["head"] == IBUG68.name and one_head["heads"] == [IBUG68.name]
    assert "through the wflw98 -> ibug68 mapping" in format_table(one_head)
    # The 98-point head is the 68-point one plus a shape fit: on the same faces it scores
    # near what the 68-point head scores through the mapping.
    assert wflw["keras"]["nme"] == pytest.approx(one_head["nme"], rel=0.1)
