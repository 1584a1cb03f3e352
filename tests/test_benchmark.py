"""The benchmark verb: benchmark_model's statistics, MACs that match the Keras layers, the
--json fields other tools read, peers measured when installed and reported when not, and
one-line errors (exit 2) for files it cannot measure."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from face_keypoints.benchmark import benchmark
from face_keypoints.peers import PeerMissing
from face_keypoints.runtime.flatbuffer import count_macs, read_graph
from face_keypoints.runtime.timing import latency_stats

SIZE = 96
JSON_KEYS = {"model", "threads", "runs", "init_us", "avg_us", "median_us", "p90_us", "fps",
             "size_bytes", "macs"}


def _cli(*args: object) -> tuple[int, str, str]:
    from face_keypoints.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _peers_installed() -> bool:
    """Cheaply: the MediaPipe file is found and dlib's modules are importable."""
    from face_keypoints.peers import mediapipe_landmark_model

    try:
        mediapipe_landmark_model()
    except PeerMissing:
        return False
    return all(importlib.util.find_spec(name) for name in ("dlib", "face_recognition_models"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """A tiny model, its fp32 .tflite and model.json."""
    import keras

    from face_keypoints.export.tflite import convert, write_model_json
    from face_keypoints.model.network import ModelSpec, build_model

    keras.utils.set_random_seed(0)
    model = build_model(ModelSpec(depth=3, input_size=SIZE, head="flatten"))
    folder = tmp_path_factory.mktemp("bench")
    convert(model, folder / "m_fp32.tflite")
    write_model_json(folder, model, {"fp32": "m_fp32.tflite"}, source_run=None)
    return model, folder / "m_fp32.tflite"


def test_latency_stats_match_benchmark_model():
    stats = latency_stats([float(v) for v in range(1, 11)])
    assert stats["count"] == 10
    assert (stats["min_us"], stats["max_us"], stats["avg_us"]) == (1.0, 10.0, 5.5)
    assert stats["median_us"] == 5.5
    assert stats["p90_us"] == pytest.approx(9.1)
    assert stats["std_us"] == pytest.approx(math.sqrt(8.25), abs=0.05)  # over the runs


def test_macs_match_the_keras_layers(exported):
    import keras

    model, path = exported
    expected = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            expected += h * w * c * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c = layer.output.shape
            expected += h * w * c * math.prod(layer.kernel.shape[:3])
        elif isinstance(layer, keras.layers.Dense):
            expected += math.prod(layer.kernel.shape)
    assert count_macs(read_graph(path)) == expected


def test_json_has_the_fields_other_tools_read(exported):
    _, path = exported
    code, out, err = _cli("benchmark", "--model", path, "--runs", 5, "--warmup", 1, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result) >= JSON_KEYS
    assert result["runs"] == 5 and result["threads"] == 1 and result["count"] == 5
    assert result["size_bytes"] == path.stat().st_size
    assert result["min_us"] <= result["median_us"] <= result["p90_us"] <= result["max_us"]
    assert result["fps"] == pytest.approx(1e6 / result["avg_us"], rel=1e-3)
    assert "peers" not in result


@pytest.mark.skipif(_peers_installed(),
                    reason="peers installed here; CI, which does not install them, runs this")
def test_missing_peers_are_reported_not_fatal(exported):
    result = benchmark(exported[1], runs=3, warmup=0, compare=True)
    assert result["count"] == 3
    assert set(result["peers"]) == {"mediapipe_face_landmark", "dlib_68"}
    for peer in result["peers"].values():
        assert set(peer) == {"missing"} and "pip install" in peer["missing"]
    code, out, err = _cli("benchmark", "--model", exported[1], "--runs", 3, "--warmup", 0,
                          "--compare")
    assert code == 0, err
    assert out.count("not measured: ") == 2 and out.count("pip install") == 2


@pytest.mark.skipif(not _peers_installed(),
                    reason="peers not installed (pip install '.[peers]')")
def test_compare_measures_the_peers_in_the_same_run(exported):
    _, path = exported
    code, out, err = _cli("benchmark", "--model", path, "--runs", 6, "--warmup", 1,
                          "--compare")
    assert code == 0, err
    assert "mediapipe_face_landmark:" in out and "dlib_68:" in out
    assert out.count("x our average time") == 2
    result = benchmark(path, runs=4, warmup=0, compare=True)
    mediapipe = result["peers"]["mediapipe_face_landmark"]
    assert mediapipe["count"] == 4 and mediapipe["threads"] == 1
    assert mediapipe["macs"] > 0
    assert mediapipe["avg_ratio"] == pytest.approx(mediapipe["avg_us"] / result["avg_us"],
                                                   rel=1e-2)
    assert result["peers"]["dlib_68"]["macs"] is None


def test_bad_input_is_one_line_exit_2(exported, tmp_path: Path):
    _, path = exported
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(np.arange(64, dtype=np.uint8).tobytes())
    lonely = tmp_path / "lonely.tflite"
    lonely.write_bytes(path.read_bytes())
    other = tmp_path / "other"
    other.mkdir()
    (other / "m.tflite").write_bytes(path.read_bytes())
    card = json.loads((path.parent / "model.json").read_text())
    card["input"]["size"] = 128
    (other / "model.json").write_text(json.dumps(card))
    half = tmp_path / "half" / "m.tflite"  # a copy cut short, beside its model.json
    half.parent.mkdir()
    half.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    (half.parent / "model.json").write_text((path.parent / "model.json").read_text())
    cases = {
        "not a TFLite model": garbage,
        "damaged TFLite model: truncated or corrupt (": half,
        "model.json: missing": lonely,
        "input is 96 px but model.json says 128": other / "m.tflite",
        "takes an exported .tflite": path.parent / "model.json",
    }
    for message, model in cases.items():
        code, _, err = _cli("benchmark", "--model", model, "--runs", 1)
        assert code == 2, (message, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("face-keypoints benchmark: error: ")
        assert message in lines[0]
