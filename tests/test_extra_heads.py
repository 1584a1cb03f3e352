"""Extra heads beside the points: the presence and visibility targets the pipeline makes
from real faces (negatives that frame no face, visibility only where it is known), the
heads' outputs and losses, and their files on the GPU delegate at every precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

from face_keypoints.data.augment import AugmentConfig
from face_keypoints.data.cache import Cache, open_cache
from face_keypoints.data.face import VISIBLE
from face_keypoints.data.pipeline import BatchStream
from face_keypoints.prepare import prepare

SIZE = 96
BOTH = ["presence", "visibility"]


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cache, Cache]:
    """MERL-RAV faces (visibility marked point by point) and 300-W faces (not marked)."""
    root = tmp_path_factory.mktemp("extra_heads")
    made = []
    for fmt, folder in (("merl68", "aflw_merl68"), ("300w", "300w/afw")):
        prepare(fmt, FIXTURES / folder, root / fmt, size=128, progress=False,
                log=lambda line: None)
        made.append(open_cache(root / fmt))
    return made[0], made[1]


def stream(caches: tuple[Cache, ...], extras: list[str], **augment: object) -> BatchStream:
    rows = [(c, np.tile(np.arange(len(c)), 8)) for c in caches]
    return BatchStream(rows, ["ibug68", "wflw98"], 16, SIZE, AugmentConfig(**augment),
                       seed=3, extras=extras)


def batches(source: BatchStream) -> list:
    with source:
        return list(source.epoch(0))


def test_negatives_are_the_share_asked_and_count_no_point(caches) -> None:
    drawn = batches(stream(caches, BOTH, negative_p=0.3))
    presence = np.concatenate([t["presence"] for _, t, _ in drawn])
    assert 0.2 < 1.0 - presence.mean() < 0.4
    for _, targets, masks in drawn:
        negative = targets["presence"] == 0
        assert (masks["presence"] == 1).all()
        for key in ("ibug68", "wflw98", "visible_ibug68", "visible_wflw98"):
            assert not masks[key][negative].any(), key
        assert masks["ibug68"][~negative].sum(axis=1).min() > 0


def test_a_visibility_head_alone_draws_no_negative_and_changes_no_image(caches) -> None:
    plain = batches(stream(caches, []))
    with_visibility = batches(stream(caches, ["visibility"]))
    for (a, ta, _), (b, tb, _) in zip(plain, with_visibility, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ta["ibug68"], tb["ibug68"])
        assert "presence" not in tb


def test_visibility_is_known_where_marked_or_covered_and_never_across_schemes(caches) -> None:
    merl, afw = caches
    assert (merl.visibility != VISIBLE).any()  # the fixture has hidden points
    for source, marked in ((merl, True), (afw, False)):
        for _, targets, masks in batches(stream((source,), ["visibility"], occlusion_p=0.5)):
            known, seen = masks["visible_ibug68"], targets["visible_ibug68"]
            if marked:
                assert (known == 1).all()
            else:  # only the points a painted rectangle covered, which are hidden
                assert (seen[known == 1] == 0).all()
            assert not masks["visible_wflw98"].any()
    merl_seen = np.concatenate([t["visible_ibug68"] for _, t, _ in
                                batches(stream((merl,), ["visibility"], occlusion_p=0.0,
                                               flip_p=0.0))])
    assert 0 < merl_seen.mean() < 1


def test_extra_heads_output_probabilities_and_learn_with_their_losses(caches) -> None:
    tf = pytest.importorskip("tensorflow")
    from face_keypoints.model.heads import loss_terms, training_view
    from face_keypoints.model.network import ModelSpec, build_model

    spec = ModelSpec(alpha=0.25, depth=5, input_size=SIZE, schemes=["ibug68", "wflw98"],
                     extras=BOTH)
    model = build_model(spec)
    images, targets, masks = batches(stream(caches, BOTH, negative_p=0.3))[0]
    outputs = model(images)
    assert outputs["presence"].shape == (16, 1)
    assert outputs["visible_ibug68"].shape == (16, 68)
    assert outputs["visible_wflw98"].shape == (16, 98)
    for key in ("presence", "visible_ibug68"):
        values = np.asarray(outputs[key])
        assert ((values > 0) & (values < 1)).all()
    view = training_view(model, spec.head)
    terms = loss_terms(model, spec.head, "wing", spec.schemes, spec.extras,
                       view(images), targets, masks)
    assert len(terms) == 3
    presence_sum, presence_count, _ = terms[1]
    assert float(presence_count) == 16
    logit = np.asarray(view(images)["presence_logit"]).reshape(-1)
    label = targets["presence"]
    expected = np.maximum(logit, 0) - logit * label + np.log1p(np.exp(-np.abs(logit)))
    np.testing.assert_allclose(float(presence_sum), expected.sum(), rtol=1e-4)
    _, visible_count, _ = terms[2]
    assert float(visible_count) == masks["visible_ibug68"].sum() + masks["visible_wflw98"].sum()
    assert tf.math.is_finite(terms[2][0])


def test_extra_heads_run_on_the_gpu_at_every_precision(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    import keras

    from face_keypoints.export.gpu_ops import check_gpu
    from face_keypoints.export.tflite import convert
    from face_keypoints.model.network import ModelSpec, build_model

    keras.utils.set_random_seed(0)
    model = build_model(ModelSpec(depth=7, input_size=SIZE, head="pip", extras=BOTH))

    def images():
        for seed in range(4):
            yield np.random.default_rng(seed).uniform(0, 255, (1, SIZE, SIZE, 3)).astype(
                np.float32)

    for precision in ("fp32", "fp16", "int8"):
        path = tmp_path / f"extras_{precision}.tflite"
        convert(model, path, precision, representative=images)
        report = check_gpu(path)
        assert report.ok, report.describe()


def test_an_unknown_extra_head_is_one_line_before_any_cache(run_cli, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("extras: [presense]\n")
    result = run_cli("train", "--config", config, "--data", "c", "--val", "c", "--output",
                     tmp_path / "run")
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "extras presense: choose from presence, visibility" in lines[0]
    assert not (tmp_path / "run").exists()
