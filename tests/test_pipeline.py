"""BatchStream on small synthetic caches: shapes, head masks, determinism, clean stops."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from face_keypoints.data.augment import AugmentConfig, model_input
from face_keypoints.data.cache import Cache
from face_keypoints.data.face import ABSENT, OCCLUDED, VISIBLE
from face_keypoints.data.pipeline import BatchStream
from face_keypoints.schemes import get_scheme, map_points, mapping_matrix

CACHE_SIZE = 80
SIZE = 48
HEADS = ["ibug68", "aflw21"]
IBUG, AFLW = get_scheme("ibug68"), get_scheme("aflw21")


def synthetic(scheme: str, count: int, tag: int, seed: int) -> Cache:
    """A cache of flat images whose grey level names the sample (tag + row), so a batch
    shows which samples it holds; points scattered over the model frame."""
    k = get_scheme(scheme).num_points
    rng = np.random.default_rng(seed)
    images = np.empty((count, CACHE_SIZE, CACHE_SIZE, 3), dtype=np.uint8)
    images[:] = (tag + np.arange(count, dtype=np.uint8))[:, None, None, None]
    points = rng.uniform(22, 58, (count, k, 2)).astype(np.float32)
    visibility = np.full((count, k), VISIBLE, dtype=np.uint8)
    manifest = {"scheme": scheme, "size": CACHE_SIZE, "count": count}
    faces = [{"split": "train"} for _ in range(count)]
    return Cache(Path(scheme), manifest, images, points, visibility, faces)


@pytest.fixture
def caches() -> tuple[Cache, Cache]:
    ibug, aflw = synthetic("ibug68", 7, 10, seed=1), synthetic("aflw21", 6, 100, seed=2)
    # Sample 0: an outer eye corner absent, another point occluded.
    ibug.visibility[0, IBUG.outer_eyes[0]] = ABSENT
    ibug.points[0, IBUG.outer_eyes[0]] = 0.0
    ibug.visibility[0, IBUG.outer_eyes[1]] = OCCLUDED
    aflw.visibility[1, AFLW.outer_eyes[1]] = ABSENT
    aflw.points[1, AFLW.outer_eyes[1]] = 0.0
    return ibug, aflw


def make(caches: tuple[Cache, ...], **options: object) -> BatchStream:
    settings = {"batch_size": 4, "input_size": SIZE, "augment": AugmentConfig(), "seed": 5}
    return BatchStream([(c, np.arange(len(c))) for c in caches], HEADS,
                       **(settings | options))


def ids(images: np.ndarray) -> list[int]:
    """Which samples a batch holds, read back from the flat grey levels."""
    return images[:, SIZE // 2, SIZE // 2, 0].astype(int).tolist()


def collect(iterator) -> list:
    return [(images.copy(), targets, masks) for images, targets, masks in iterator]


def assert_same_batches(a: list, b: list) -> None:
    assert len(a) == len(b)
    for (ia, ta, ma), (ib, tb, mb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(ia, ib)
        for head in HEADS:
            np.testing.assert_array_equal(ta[head], tb[head])
            np.testing.assert_array_equal(ma[head], mb[head])


def test_shapes_dtypes_and_remainder(caches: tuple[Cache, Cache]) -> None:
    train = make(caches)
    batches = collect(train.epoch(0))
    assert len(train) == len(batches) == 13 // 4
    for images, targets, masks in batches:
        assert images.shape == (4, SIZE, SIZE, 3) and images.dtype == np.float32
        for head in HEADS:
            k = get_scheme(head).num_points
            assert targets[head].shape == (4, k, 2) and targets[head].dtype == np.float32
            assert masks[head].shape == (4, k) and masks[head].dtype == np.float32
    val = make(caches, augment=None, shuffle=False)
    sizes = [len(images) for images, _, _ in val.epoch(0)]
    assert len(val) == 4 and sizes == [4, 4, 4, 1]


def test_masks_and_targets_of_a_mixed_stream(caches: tuple[Cache, Cache]) -> None:
    ibug, aflw = caches
    val = make(caches, augment=None, shuffle=False, batch_size=13)
    [(images, targets, masks)] = collect(val.epoch(0))
    assert ids(images) == [10 + i for i in range(7)] + [100 + i for i in range(6)]
    for row, (cache, i) in enumerate([(ibug, i) for i in range(7)] + [(aflw, i)
                                                                       for i in range(6)]):
        _, placed = model_input(cache.images[i], cache.points[i], cache.visibility[i], SIZE)
        present = cache.visibility[i] != ABSENT  # occluded points count
        for head in HEADS:
            matrix = mapping_matrix(cache.scheme.name, head)
            needs = np.nan_to_num(matrix) > 0
            expected = ~np.isnan(matrix).any(axis=1) & ~(needs & ~present).any(axis=1)
            np.testing.assert_array_equal(masks[head][row], expected)
            mapped, _ = map_points(placed, cache.scheme.name, head)
            np.testing.assert_allclose(targets[head][row][expected], mapped[expected],
                                       atol=1e-6)
            assert (targets[head][row][~expected] == 0).all()
    # Named checks of the rules above.
    assert masks["ibug68"][0, IBUG.outer_eyes[0]] == 0  # absent
    assert masks["ibug68"][0, IBUG.outer_eyes[1]] == 1  # occluded still counts
    assert masks["aflw21"][0, AFLW.outer_eyes[0]] == 0  # its source point is absent
    assert masks["aflw21"][0, AFLW.pupils[0][0]] == 0  # a mean over an absent point
    assert masks["aflw21"][1, AFLW.names.index("LeftEar")] == 0  # iBUG has no ears
    assert masks["aflw21"][1].sum() == AFLW.num_points - 2
    assert masks["aflw21"][8, AFLW.outer_eyes[1]] == 0  # aflw sample 1's absent point
    defined = map_points(np.zeros((AFLW.num_points, 2)), "aflw21", "ibug68")[1]
    assert masks["ibug68"][7].sum() == defined.sum() > 0


def test_augmented_masks_follow_visibility(caches: tuple[Cache, Cache]) -> None:
    """Augmentation may mirror (renaming points) but never invents or drops a point."""
    for _, targets, masks in make(caches, batch_size=13, drop_remainder=False).epoch(3):
        assert masks["ibug68"].sum(axis=1).tolist().count(IBUG.num_points - 1) == 1
        assert ((targets["ibug68"] != 0).any(axis=2) == (masks["ibug68"] > 0)).all()


def test_epoch_order_is_a_function_of_seed_and_epoch(caches: tuple[Cache, Cache]) -> None:
    a, b = make(caches, augment=None), make(caches, augment=None)
    np.testing.assert_array_equal(a.order(2), b.order(2))
    assert not np.array_equal(a.order(0), a.order(1))
    assert not np.array_equal(a.order(0), make(caches, augment=None, seed=6).order(0))
    assert sorted(a.order(0).tolist()) == list(range(13))
    seen = [ids(images) for images, _, _ in a.epoch(0)]
    assert seen == [ids(images) for images, _, _ in b.epoch(0)]
    flat = [i for batch in seen for i in batch]
    assert len(set(flat)) == len(flat) == 12  # once each; the 13th is the dropped remainder
    assert any(min(batch) < 100 <= max(batch) for batch in seen), "schemes should mix"


def test_weights_set_each_sources_share_of_an_epoch(caches: tuple[Cache, Cache]) -> None:
    """Weight 2.5 gives every face of a source twice and half of them a third time,
    drawn anew each epoch; weight 0.5 half the faces; both seeded like the order."""
    ibug, aflw = caches
    stream = make(caches, augment=None, weights=[2.5, 0.5], drop_remainder=False)
    assert stream.epoch_size == round(2.5 * len(ibug)) + round(0.5 * len(aflw))
    assert len(stream) == -(-stream.epoch_size // 4)
    epochs = [stream.order(e) for e in range(4)]
    for order in epochs:
        counts = np.bincount(order, minlength=len(ibug) + len(aflw))
        assert set(counts[: len(ibug)].tolist()) == {2, 3}
        assert (counts[: len(ibug)] == 3).sum() == round(0.5 * len(ibug))
        assert set(counts[len(ibug):].tolist()) == {0, 1}
        assert counts[len(ibug):].sum() == round(0.5 * len(aflw))
    assert len({tuple(np.sort(order)) for order in epochs}) > 1, "extra draws should vary"
    again = make(caches, augment=None, weights=[2.5, 0.5], drop_remainder=False)
    np.testing.assert_array_equal(again.order(3), epochs[3])
    with pytest.raises(ValueError, match="weight"):
        make(caches, weights=[1.0, 0.0])


def test_unit_weights_keep_the_unweighted_order(caches: tuple[Cache, Cache]) -> None:
    """Configs written before weights existed see the same epochs."""
    plain, weighted = make(caches), make(caches, weights=[1.0, 1.0])
    expected = np.random.default_rng([5, 2]).permutation(len(plain.samples))
    np.testing.assert_array_equal(plain.order(2), expected)
    np.testing.assert_array_equal(weighted.order(2), expected)


def test_resume_and_thread_count_give_identical_batches(caches: tuple[Cache, Cache]) -> None:
    straight = make(caches)
    collect(straight.epoch(0))
    reference = collect(straight.epoch(1))
    assert_same_batches(collect(make(caches).epoch(1)), reference)
    assert_same_batches(collect(make(caches).epoch(1, first_batch=2)), reference[2:])
    assert_same_batches(collect(make(caches, workers=2, prefetch=1).epoch(1)), reference)
    assert not np.array_equal(collect(straight.epoch(2))[0][0], reference[0][0])


def stream_threads_after(before: set[threading.Thread]) -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()} - before


def test_stops_without_leaking_threads(caches: tuple[Cache, Cache]) -> None:
    before = set(threading.enumerate())
    with make(caches, workers=2, prefetch=1) as stream:
        batches = stream.epoch(0)
        next(batches)
        assert stream_threads_after(before), "workers should be running mid-epoch"
    assert not stream_threads_after(before)
    assert list(batches) == []  # a closed stream's epoch ends

    stream = make(caches, workers=2, prefetch=1)
    batches = stream.epoch(0)
    next(batches)
    del batches  # an abandoned epoch stops its workers too
    assert not stream_threads_after(before)

    for _ in stream.epoch(1):  # break out of a for loop
        break
    assert not stream_threads_after(before)


def test_a_worker_error_reaches_the_consumer(caches: tuple[Cache, Cache]) -> None:
    before = set(threading.enumerate())
    ibug, _ = caches
    broken = BatchStream([(ibug, np.array([0, 1, 99]))], HEADS, batch_size=1, input_size=SIZE,
                         augment=None, seed=0, shuffle=False, workers=2)
    with pytest.raises(IndexError):
        collect(broken.epoch(0))
    assert not stream_threads_after(before)
