"""evaluate, the predictors and the minimal TFLite export, on small caches of real faces.

The caches are made here with `prepare` from a handful of faces of ../shared/data (AFW,
MERL-RAV, the four real WFLW fixture faces); the model is a tiny random MobileNet, so the
numbers are meaningless but must be identical however the model is run. One TFLite
conversion per module.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

pytestmark = [
    pytest.mark.skipif(
        not SHARED_DATA.is_dir(),
        reason=f"real data {SHARED_DATA} is absent (it sits beside the repository on CI and "
               "developer machines, not in a fresh clone)",
    ),
]

SIZE = 96
AFW_FACES = 16


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evaluate")


@pytest.fixture(scope="module")
def afw_cache(work: Path) -> Path:
    """16 AFW faces, a quarter of the identities held out as "val"."""
    from face_keypoints.prepare import prepare

    source = work / "afw"
    source.mkdir()
    for pts in sorted((SHARED_DATA / "300w" / "afw").glob("*.pts"))[:AFW_FACES]:
        for path in (pts, pts.with_suffix(".jpg")):
            (source / path.name).symlink_to(path)
    prepare(format="300w", input=source, output=work / "afw_cache", size=128,
            val_fraction=0.25, progress=False, log=lambda line: None)
    return work / "afw_cache"


@pytest.fixture(scope="module")
def merl_cache(work: Path) -> Path:
    """MERL-RAV faces, the first three of each |yaw| bin: profiles lack an outer eye."""
    from face_keypoints.prepare import prepare

    source = work / "merl"
    source.mkdir()
    (source / "images").symlink_to(SHARED_DATA / "aflw21" / "images")
    with open(SHARED_DATA / "aflw_merl68" / "landmarks68.csv", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        picked: dict[int, list[list[str]]] = {0: [], 1: [], 2: []}
        for row in reader:
            group = min(int(abs(float(row[1])) // 30), 2)
            if len(picked[group]) < 3:
                picked[group].append(row)
            if all(len(rows) == 3 for rows in picked.values()):
                break
    rows = [*picked[0], *picked[1], *picked[2]]
    for row in rows:  # one split, so that no face is held out and all nine are scored
        row[header.index("merl_split")] = "trainset"
    with open(source / "landmarks68.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    prepare(format="merl68", input=source, output=work / "merl_cache", size=128,
            progress=False, log=lambda line: None)
    return work / "merl_cache"


WFLW_FLAGS = [  # pose expression illumination make-up occlusion blur
    [1, 0, 0, 0, 1, 0],
    [0, 1, 0, 0, 1, 0],
    [1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 1],
]


@pytest.fixture(scope="module")
def wflw_cache(work: Path) -> Path:
    """The four real WFLW fixture faces written as a WFLW list with chosen attribute flags."""
    from face_keypoints.prepare import prepare

    fixture = SHARED_DATA / "fixtures" / "wflw"
    coco = json.loads((fixture / "test_wflw.json").read_text())
    names = {image["id"]: image["file_name"] for image in coco["images"]}
    source = work / "wflw"
    (source / "WFLW_images").mkdir(parents=True)
    (source / "WFLW_annotations").mkdir()
    lines = []
    for annotation, flags in zip(coco["annotations"], WFLW_FLAGS, strict=True):
        xy = np.array(annotation["keypoints"], dtype=float).reshape(-1, 3)[:, :2]
        x, y, w, h = annotation["bbox"]
        name = names[annotation["image_id"]]
        lines.append(" ".join([*(f"{v:.3f}" for v in xy.ravel()),
                               *(f"{v:.3f}" for v in (x, y, x + w, y + h)),
                               *map(str, flags), name]))
        link = source / "WFLW_images" / name
        if not link.exists():
            link.symlink_to(fixture / name)
    (source / "WFLW_annotations" / "list_98pt_rect_attr_test.txt").write_text(
        "\n".join(lines) + "\n")
    prepare(format="wflw", input=source, output=work / "wflw_cache", size=128,
            progress=False, log=lambda line: None)
    return work / "wflw_cache"


def _tiny(schemes: list[str], head: str = "gap"):
    from face_keypoints.model.network import ModelSpec, build_model

    return build_model(ModelSpec(alpha=0.25, depth=3, input_size=SIZE, head=head,
                                 schemes=schemes))


@pytest.fixture(scope="module")
def models(work: Path) -> dict[str, Path]:
    """A two-scheme model as .keras and as fp32 .tflite + model.json (one conversion)."""
    import keras

    from face_keypoints.export.tflite import convert, write_model_json
    from face_keypoints.model.heads import output_name

    keras.utils.set_random_seed(0)
    model = _tiny(["ibug68", "aflw21"], head="flatten")
    # Heads start with a zero kernel (every prediction at the start shape); give them
    # random weights so the points depend on the image and a Keras/TFLite mismatch would
    # show in the NME.
    rng = np.random.default_rng(0)
    for scheme in ("ibug68", "aflw21"):
        layer = model.get_layer(output_name(scheme))
        kernel, bias = layer.get_weights()
        layer.set_weights([rng.normal(0.0, 5.0, kernel.shape).astype(np.float32), bias])
    folder = work / "model"
    folder.mkdir()
    model.save(folder / "model.keras")
    convert(model, folder / "model_fp32.tflite")
    write_model_json(folder, model, {"fp32": "model_fp32.tflite"}, source_run="runs/test")
    return {"keras": folder / "model.keras", "tflite": folder / "model_fp32.tflite"}


def run_cli(capfd: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """`face-keypoints ARGS` in-process; stdout and stderr captured at the file-descriptor
    level, so C++ logging that would reach the terminal is seen too."""
    from face_keypoints.cli import main

    capfd.readouterr()
    code = main([str(a) for a in args])
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def test_model_json_describes_the_export(models: dict[str, Path]):
    import hashlib

    card = json.loads((models["tflite"].parent / "model.json").read_text())
    assert card["format_version"] == 1
    assert card["input"]["size"] == SIZE and card["input"]["range"] == [0, 255]
    assert card["input"]["crop"]["scale"] == 1.25
    outputs = {o["scheme"]: o for o in card["outputs"]}
    assert set(outputs) == {"ibug68", "aflw21"}
    assert outputs["ibug68"]["num_points"] == len(outputs["ibug68"]["point_names"]) == 68
    entry = card["files"]["fp32"]
    data = models["tflite"].read_bytes()
    assert entry == {"file": "model_fp32.tflite", "size_bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest()}
    assert card["source_run"] == "runs/test"


def test_tflite_has_batch_one_and_matches_keras_point_for_point(models: dict[str, Path],
                                                                 afw_cache: Path):
    from face_keypoints.runtime import load_predictor

    images = np.random.default_rng(1).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    keras_model, tflite = load_predictor(models["keras"]), load_predictor(models["tflite"])
    assert tflite.input_size == keras_model.input_size == SIZE
    assert set(tflite.schemes) == set(keras_model.schemes) == {"ibug68", "aflw21"}
    expected, got = keras_model.predict(images), tflite.predict(images)
    for scheme in ("ibug68", "aflw21"):
        assert got[scheme].shape == expected[scheme].shape
        np.testing.assert_allclose(got[scheme], expected[scheme], atol=1e-4)
    assert expected["ibug68"].std(axis=0).mean() > 1e-3  # the points do depend on the image


def test_keras_and_tflite_give_the_same_nme(models: dict[str, Path], afw_cache: Path):
    from face_keypoints.evaluate import evaluate

    keras_result = evaluate(models["keras"], afw_cache)
    tflite_result = evaluate(models["tflite"], afw_cache, threads=1)
    assert keras_result["model_kind"] == "keras" and tflite_result["model_kind"] == "tflite"
    for key in ("nme", "nme_ip", "nme_box"):
        assert tflite_result[key] == pytest.approx(keras_result[key], rel=1e-3)
    np.testing.assert_allclose(tflite_result["per_point"], keras_result["per_point"],
                               rtol=1e-3)


def test_evaluate_scores_the_val_split_framed_like_the_model_contract(
        models: dict[str, Path], afw_cache: Path):
    """Recompute the NME the long way: model_matrix + warp, transform_points / S."""
    from face_keypoints import geometry, metrics
    from face_keypoints.data.cache import open_cache
    from face_keypoints.evaluate import evaluate
    from face_keypoints.runtime import load_predictor
    from face_keypoints.schemes import IBUG68

    result = evaluate(models["keras"], afw_cache)
    cache = open_cache(afw_cache)
    val = cache.indices("val")
    assert result["split"] == "val" and 0 < result["n"] == len(val) < AFW_FACES
    matrix = geometry.model_matrix(cache.size, SIZE)
    images = np.stack([geometry.warp(cache.images[i], matrix, SIZE) for i in val])
    pred = load_predictor(models["keras"]).predict(images.astype(np.float32))["ibug68"]
    truth = geometry.transform_points(cache.points[val], matrix) / SIZE
    nme = metrics.face_nme(pred, truth, metrics.present_mask(cache.visibility[val]), IBUG68)
    assert result["nme"] == pytest.approx(100 * np.mean(nme["inter_ocular"]), rel=1e-4)
    assert result["nme_box"] == pytest.approx(100 * np.mean(nme["box"]), rel=1e-4)


def test_json_output_schema_and_pictures(models: dict[str, Path], afw_cache: Path,
                                         work: Path, capfd: pytest.CaptureFixture[str]):
    pictures = work / "pictures" / "afw"  # created, parents too
    code, out, _ = run_cli(capfd, "evaluate", "--model", models["tflite"], "--data",
                           afw_cache, "--json", "--output", pictures, "--threads", 2)
    assert code == 0
    result = json.loads(out)  # exactly one JSON object, nothing else on stdout
    assert out.strip().count("\n") == 0
    for key, kind in [("model", str), ("data", str), ("scheme", str), ("n", int),
                      ("nme", float), ("nme_ip", float), ("nme_box", float), ("fr10", float),
                      ("auc10", float), ("n_nme", int), ("n_ip", int), ("n_box", int),
                      ("per_point", list), ("subsets", dict), ("ced", dict)]:
        assert isinstance(result[key], kind), key
    assert result["scheme"] == result["data_scheme"] == "ibug68"
    assert len(result["per_point"]) == 68 and result["points_scored"] == 68
    assert result["n_nme"] == result["n_box"] == result["n"]
    assert 0.0 <= result["fr10"] <= 100.0 and 0.0 <= result["auc10"] <= 1.0
    assert result["subsets"] == {}  # AFW records neither attributes nor yaw
    assert len(result["ced"]["nme_percent"]) == len(result["ced"]["fraction"])

    shapes = {}
    for name in ("ced", "predictions", "ground_truth"):
        path = pictures / f"{name}.png"
        assert result["pictures"][name] == str(path)
        image = cv2.imread(str(path))
        assert image is not None, path
        shapes[name] = image.shape
    assert shapes["predictions"] == shapes["ground_truth"]
    assert not [p for p in pictures.iterdir() if p.name.startswith(".")]  # no temp files


def test_table_without_json(models: dict[str, Path], afw_cache: Path,
                            capfd: pytest.CaptureFixture[str]):
    code, out, _ = run_cli(capfd, "evaluate", "--model", models["keras"], "--data", afw_cache)
    assert code == 0
    assert "NME inter-ocular" in out and "AUC@10%" in out and "{" not in out


def test_profiles_without_an_outer_eye_leave_the_inter_ocular_mean(models: dict[str, Path],
                                                                   merl_cache: Path):
    from face_keypoints.evaluate import evaluate

    result = evaluate(models["tflite"], merl_cache)
    assert result["split"] == "all" and result["n"] == 9  # no "val" split: every face
    # Only the three near-frontal faces have both outer eye corners.
    assert result["n_nme"] == 3 and result["n_box"] == 9
    subsets = result["subsets"]
    assert list(subsets) == ["yaw_0_30", "yaw_30_60", "yaw_60_90"]
    for name in subsets:
        assert subsets[name]["n"] == 3
        assert set(subsets[name]) >= {"n", "nme", "nme_box", "fr10", "auc10"}
    assert subsets["yaw_0_30"]["n_nme"] == 3 and subsets["yaw_60_90"]["n_nme"] == 0
    assert subsets["yaw_60_90"]["nme"] is None  # undefined is null, never NaN, in JSON
    assert subsets["yaw_60_90"]["nme_box"] > 0
    json.dumps(result, allow_nan=False)


def test_wflw_attributes_and_ground_truth_mapped_onto_the_model_scheme(
        models: dict[str, Path], wflw_cache: Path, work: Path):
    from face_keypoints.evaluate import evaluate

    result = evaluate(models["keras"], wflw_cache, output=work / "pictures" / "wflw")
    assert result["data_scheme"] == "wflw98" and result["scheme"] == "ibug68"
    assert result["points_scored"] == 68 and result["n"] == 4
    flags = np.array(WFLW_FLAGS)
    names = ["pose", "expression", "illumination", "make-up", "occlusion", "blur"]
    assert list(result["subsets"]) == names
    for column, name in enumerate(names):
        assert result["subsets"][name]["n"] == flags[:, column].sum()
    assert result["subsets"]["illumination"]["nme"] is None


def test_mapping_scores_only_the_points_it_defines(work: Path, afw_cache: Path):
    from face_keypoints.evaluate import evaluate

    path = work / "aflw21_only.keras"
    _tiny(["aflw21"]).save(path)
    result = evaluate(path, afw_cache)
    # iBUG 68 -> AFLW 21 defines every point but the two ears.
    assert result["scheme"] == "aflw21" and result["points_scored"] == 19
    assert [v is None for v in result["per_point"]].count(True) == 2


def one_line_error(capfd: pytest.CaptureFixture[str], *args: object) -> str:
    code, out, err = run_cli(capfd, "evaluate", *args)
    assert code == 2
    assert out == ""
    lines = [line for line in err.splitlines() if line.startswith("face-keypoints")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_inputs_are_one_line_errors(models: dict[str, Path], afw_cache: Path, work: Path,
                                        capfd: pytest.CaptureFixture[str]):
    junk = work / "junk.keras"
    junk.write_text("not a model\n")
    assert "not a loadable Keras model" in one_line_error(capfd, "--model", junk, "--data",
                                                          afw_cache)
    text = work / "model.txt"
    text.write_text("x")
    assert "not a model file" in one_line_error(capfd, "--model", text, "--data", afw_cache)
    assert "no such model file" in one_line_error(capfd, "--model", work / "absent.keras",
                                                  "--data", afw_cache)

    lonely = work / "lonely"
    lonely.mkdir()
    shutil.copy(models["tflite"], lonely / "model.tflite")
    assert "model.json" in one_line_error(capfd, "--model", lonely / "model.tflite", "--data",
                                          afw_cache)
    broken = work / "broken"
    broken.mkdir()
    (broken / "model.tflite").write_bytes(b"not a flatbuffer")
    shutil.copy(models["tflite"].parent / "model.json", broken / "model.json")
    assert "not a loadable TFLite model" in one_line_error(
        capfd, "--model", broken / "model.tflite", "--data", afw_cache)

    assert "no such cache folder" in one_line_error(capfd, "--model", models["keras"],
                                                    "--data", work / "absent_cache")


def test_models_that_are_not_ours_or_cannot_map_are_refused(
        work: Path, afw_cache: Path, capfd: pytest.CaptureFixture[str]):
    import keras

    inputs = keras.Input((4,))
    other = work / "other.keras"
    keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs)).save(other)
    assert "no points_<scheme> outputs" in one_line_error(capfd, "--model", other, "--data",
                                                          afw_cache)
    # COFW's 29 points map onto no other scheme: a 68-point model cannot score them.
    from face_keypoints.prepare import prepare

    cofw_cache = work / "cofw_cache"
    if not cofw_cache.exists():
        prepare(format="coco", input=FIXTURES / "coco" / "cofw",
                annotations=FIXTURES / "coco" / "cofw" / "test_cofw.json", output=cofw_cache,
                size=128, progress=False, log=lambda line: None)
    ibug_only = work / "ibug_only.keras"
    _tiny(["ibug68"]).save(ibug_only)
    message = one_line_error(capfd, "--model", ibug_only, "--data", cofw_cache)
    assert "map onto none" in message and "ibug68" in message

