"""The models shipped in the package (src/face_keypoints/shipped/default/, lite/, full/).

Their files are the ones model.json names, byte for byte; at every precision each places
the points of real faces it never trained on near their human annotation, closer than a
mean shape or a left/right-mislabelled model could (so a broken or swapped file fails
here); `default[:PRECISION]`, `lite[:...]` and `full[:...]` name their files wherever a
model is asked for; all have the 68- and 98-point heads, and lite keeps its size bound.

The faces are the repository's 68-point 300-W fixtures (AFW: 3 faces; 300-W indoor: 2),
prepared and scored by the package's own prepare and evaluate. The models were trained
on HELEN, LFPW, MERL-RAV, YouTube-Faces and WFLW training faces; AFW was their
validation set.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, needs_model

from face_keypoints.errors import BadInput
from face_keypoints.resolve import SHIPPED, default_folder, resolve_model, shipped_folder

# Inter-ocular NME (%) of the shipped models on the five faces (the aligned models with
# presence and visibility outputs): default fp32 4.264, fp16 4.263, keras 4.264, int8
# 4.216; lite fp32 4.410, fp16 4.409, keras 4.410, int8 4.508; full (float files only)
# fp32 4.519, fp16 4.520, keras 4.519. The bound is ~1.4x the worst; a mean shape fitted
# to these very faces scores 16.1, the default with its left and right points exchanged 62.
NME_BOUND = 6.5
LITE_FP16_BYTES = 1_000_000  # the lite model's bound: an fp16 file of at most 1 MB

# Keras 3.15 under numpy 2.4 warns from inside Keras when loading; nothing to fix here.
def _card(name: str = "default") -> dict:
    return json.loads((shipped_folder(name) / "model.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The 68-point 300-W fixture faces as caches, made by prepare."""
    from face_keypoints.prepare import prepare

    work = tmp_path_factory.mktemp("default_model")
    prepare(format="300w", input=FIXTURES / "300w" / "afw", output=work / "afw",
            progress=False, log=lambda line: None)
    prepare(format="coco", input=FIXTURES / "coco" / "300w",
            annotations=FIXTURES / "coco" / "300w" / "test_300w.json",
            output=work / "indoor", progress=False, log=lambda line: None)
    return [work / "afw", work / "indoor"]


def _nme(model, caches: list[Path]) -> float:
    """Inter-ocular NME (%) over the faces of all caches, as evaluate scores them."""
    from face_keypoints.evaluate import evaluate

    results = [evaluate(model, cache) for cache in caches]
    assert sum(r["n"] for r in results) == 5
    return sum(r["nme"] * r["n_nme"] for r in results) / sum(r["n_nme"] for r in results)


@needs_model
@pytest.mark.parametrize("name", SHIPPED)
def test_every_file_model_json_names_is_there_with_its_sha256_and_size(name: str):
    card = _card(name)
    folder = shipped_folder(name)
    assert {"fp32", "fp16", "keras"} <= set(card["files"])
    for precision, entry in card["files"].items():
        data = (folder / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], precision
        assert len(data) == entry["size_bytes"], precision
        suffix = ".keras" if precision == "keras" else f"_{precision}.tflite"
        assert entry["file"] == f"{card['name']}{suffix}"
    named = {entry["file"] for entry in card["files"].values()}
    assert {p.name for p in folder.iterdir()} == named | {"model.json"}


@needs_model
@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8", "keras"])
def test_the_shipped_model_is_near_the_annotation_of_real_faces(name: str, precision: str,
                                                                caches: list[Path]):
    if precision not in _card(name)["files"]:
        pytest.skip(f"no {precision} file is shipped")
    assert _nme(f"{name}:{precision}", caches) < NME_BOUND


@needs_model
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_has_the_68_and_98_point_heads(name: str):
    from face_keypoints.runtime import load_predictor
    from face_keypoints.schemes import get_scheme

    outputs = {o["scheme"]: o for o in _card(name)["outputs"] if o["kind"] == "points"}
    assert set(outputs) == {"ibug68", "wflw98"}
    for scheme, output in outputs.items():
        assert output["point_names"] == list(get_scheme(scheme).names)
    assert load_predictor(resolve_model(f"{name}:fp16")).schemes == ["ibug68", "wflw98"]


@needs_model
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_runs_on_levelled_crops_and_answers_presence_and_visibility(
        name: str):
    from face_keypoints.card import ModelCard

    card = ModelCard.read(shipped_folder(name))
    assert card.aligned
    assert card.has_presence
    assert card.visible == {"ibug68": 68, "wflw98": 98}


@needs_model
@pytest.mark.parametrize("name", SHIPPED)
def test_every_file_of_a_shipped_model_tells_a_face_from_a_crop_without_one(name: str):
    """Presence at every precision: int8 calibrated on faces alone once read 0.5 on
    every crop without a face, and tracking then kept faces on empty frames."""
    from face_keypoints import geometry
    from face_keypoints.data.images import read_rgb
    from face_keypoints.runtime.landmarker import Landmarker, crop_square

    photo = FIXTURES / "300w" / "afw" / "261068_1.jpg"
    image = read_rgb(photo)
    lines = photo.with_suffix(".pts").read_text().splitlines()[3:71]
    face = crop_square(np.array([[float(v) for v in line.split()] for line in lines]))
    away = geometry.Square(face.cx - face.side, face.cy, face.side)  # beside the face
    grey = np.full_like(image, 110)
    for precision in _card(name)["files"]:
        landmarker = Landmarker(f"{name}:{precision}")
        assert landmarker.read(image, face).presence > 0.9, precision
        assert landmarker.read(image, away).presence < 0.5, precision
        assert landmarker.read(grey, face).presence < 0.1, precision


@needs_model
def test_lite_is_the_smaller_faster_network_with_an_fp16_file_under_1_mb():
    lite, default = _card("lite"), _card("default")
    assert lite["files"]["fp16"]["size_bytes"] <= LITE_FP16_BYTES
    assert lite["files"]["fp16"]["size_bytes"] < default["files"]["fp16"]["size_bytes"] / 2
    assert lite["cpu"]["files"]["fp32"]["median_us"] < default["cpu"]["files"]["fp32"]["median_us"]


class _Wrong:
    """A predictor that is not the shipped model: a fixed mean shape, or the shipped
    model's points under the wrong labels (left and right exchanged)."""

    kind = "wrong"

    def __init__(self, schemes: list[str], input_size: int, mean: np.ndarray | None = None,
                 relabel=None) -> None:
        self.path, self.schemes, self.input_size = Path("wrong"), schemes, input_size
        self._mean, self._relabel = mean, relabel

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if self._mean is not None:
            return {self.schemes[0]: np.repeat(self._mean[None], len(images), axis=0)}
        return self._relabel(images)


@needs_model
def test_a_mean_shape_or_mislabelled_points_would_break_the_bound(caches: list[Path]):
    from face_keypoints import geometry
    from face_keypoints.data.cache import open_cache
    from face_keypoints.runtime import load_predictor
    from face_keypoints.schemes import IBUG68

    shipped = load_predictor(resolve_model("default"))
    size = shipped.input_size
    truth = [geometry.transform_points(c.points, geometry.model_matrix(c.size, size)) / size
             for c in map(open_cache, caches)]
    # The best fixed shape there is for these faces: their own mean, framed as evaluate
    # frames them.
    mean = np.concatenate(truth).mean(axis=0).astype(np.float32)
    assert _nme(_Wrong(["ibug68"], size, mean=mean), caches) > 1.5 * NME_BOUND

    def exchanged(images: np.ndarray) -> dict[str, np.ndarray]:
        return {"ibug68": shipped.predict(images)["ibug68"][:, list(IBUG68.flip)]}

    assert _nme(_Wrong(["ibug68"], size, relabel=exchanged), caches) > 5 * NME_BOUND


@needs_model
@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_name_and_its_precisions_name_the_shipped_files(name: str):
    card, folder = _card(name), shipped_folder(name)
    for precision, entry in card["files"].items():
        assert resolve_model(f"{name}:{precision}").path == folder / entry["file"]
    fp16 = folder / card["files"]["fp16"]["file"]
    assert resolve_model(name).path == fp16
    assert resolve_model(name, prefer=("keras",)).path == folder / card["files"]["keras"]["file"]
    assert resolve_model(None).path == resolve_model("default").path
    # Anything else is a path, taken as it is.
    assert resolve_model("runs/x/best.keras").path == Path("runs/x/best.keras")
    assert resolve_model(Path("default")).path == Path("default")


@needs_model
def test_a_missing_file_is_one_line_naming_what_is_there(tmp_path: Path):
    copy = tmp_path / "default"
    shutil.copytree(default_folder(), copy)
    files = _card()["files"]
    (copy / files["int8"]["file"]).unlink()
    with pytest.raises(BadInput) as err:
        resolve_model("default:int8", folder=copy)
    message = str(err.value)
    assert "\n" not in message and "is missing" in message and files["int8"]["file"] in message
    assert "default:fp16" in message and "default:int8" not in message.partition(";")[2]
    (copy / files["fp16"]["file"]).unlink()  # `default` falls back to fp32
    assert resolve_model("default", folder=copy).path == copy / files["fp32"]["file"]


def _one_error_line(err: str, verb: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"face-keypoints {verb}: error: ")
    return lines[0]


@needs_model
def test_a_bad_default_precision_is_one_error_line_exit_2(run_cli, caches: list[Path]):
    sample = REPO / "examples" / "astronaut.jpg"
    cases = [
        (("evaluate", "--model", "default:fp8", "--data", caches[0]), "no precision 'fp8'"),
        (("benchmark", "--model", "default:bf16"), "no precision 'bf16'"),
        (("predict", sample, "--model", "default:fp64"), "no precision 'fp64'"),
        (("export", "--model", "default:int4", "--output", caches[0].parent / "x"),
         "no precision 'int4'"),
        (("benchmark", "--model", "default:keras"), "measures .tflite files only"),
        (("export", "--model", "default:fp16", "--output", caches[0].parent / "x"),
         "default:keras"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.code == 2, (args, result.err)
        line = _one_error_line(result.err, args[0])
        assert message in line, line
        if "no precision" in message:
            assert "default:fp16" in line and "default:keras" in line
    assert not (caches[0].parent / "x").exists()


@needs_model
@pytest.mark.parametrize("name", SHIPPED)
def test_evaluate_and_benchmark_take_a_shipped_name_on_the_command_line(
        run_cli, caches: list[Path], name: str):
    fp16 = str(resolve_model(name).path)
    result = run_cli("evaluate", "--model", name, "--data", caches[0], "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["model"] == fp16
    result = run_cli("benchmark", "--model", f"{name}:fp32", "--runs", 2, "--warmup", 0,
                     "--json")  # fp32: every shipped model has it (full has no int8)
    assert result.code == 0, result.err
    assert json.loads(result.out)["model"] == str(resolve_model(f"{name}:fp32").path)


@needs_model
def test_export_default_is_the_shipped_keras(run_cli, tmp_path: Path):
    """Refused before converting anything: the output already holds that .keras name."""
    card = _card()
    (tmp_path / card["files"]["keras"]["file"]).write_bytes(b"taken")
    result = run_cli("export", "--model", "default", "--output", tmp_path, "--precision",
                     "fp32")
    assert result.code == 2
    assert f"{card['files']['keras']['file']} already there" in _one_error_line(result.err,
                                                                                 "export")
    assert (tmp_path / card["files"]["keras"]["file"]).read_bytes() == b"taken"


@needs_model
@pytest.mark.parametrize("name", SHIPPED)
def test_on_a_cpu_the_shipped_model_runs_the_fastest_file_here_within_1_percent_of_fp32(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """model.json's "cpu" (written by tools/record_cpu_precision.py, as export writes it)
    records each file's NME: every file within 1 % of fp32's may run (lite's int8 drifts
    1.1 %, so it does not), and predict and
    FaceLandmarker run the one timed fastest on this machine (tests/test_cpu_precision.py
    pins that it is measured); an explicit `default:PRECISION` still wins."""
    from face_keypoints import FaceLandmarker
    from face_keypoints.card import ModelCard
    from face_keypoints.runtime.cpu_precision import choose, fastest

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    card, folder = _card(name), shipped_folder(name)
    cpu = card["cpu"]
    assert set(cpu["files"]) == {p for p in card["files"] if p != "keras"}
    within = [p for p in ("fp32", "fp16", "int8")
              if p in cpu["files"] and cpu["files"][p]["nme_drift_vs_fp32_pct"] <= 1.0]
    assert within[:2] == ["fp32", "fp16"]  # a float file always may run
    model_card = ModelCard.read(folder)
    assert model_card.cpu_candidates() == within
    choice = choose(model_card)
    assert choice is not None and list(choice.median_us) == within
    assert choice.precision == min(choice.median_us, key=choice.median_us.get)
    picked = folder / card["files"][choice.precision]["file"]
    here = partial(fastest, threads=1)
    assert resolve_model(name, choose=here).path == resolve_model(folder, choose=here).path \
        == picked
    assert resolve_model(f"{name}:fp16", choose=here).path == \
        folder / card["files"]["fp16"]["file"]
    assert FaceLandmarker(name).precision == choice.precision
    assert FaceLandmarker(f"{name}:fp16").precision == "fp16"
    if name == "default":
        assert resolve_model(None, choose=here).path == picked
        assert FaceLandmarker().precision == choice.precision
