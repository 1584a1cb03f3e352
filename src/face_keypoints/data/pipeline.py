"""Batches for the trainer, made in background threads so the model does not wait.

Every random choice of a batch comes from (seed, epoch, batch index) alone: the epoch order
is a permutation seeded by (seed, epoch) and each batch's augmentations by (seed, epoch,
batch). So the batches do not depend on how many threads made them, and a run resumed at
any epoch (or batch) sees exactly the batches the uninterrupted run would have.

A sample of scheme X fills every model head: head X with its own points, another head Y
with the points `schemes.map_points` defines from X, masked where Y has no counterpart or
a source point is absent. Occluded points have annotated positions, so they count.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from face_keypoints.data.augment import AugmentConfig, Augmenter, model_input
from face_keypoints.data.cache import Cache
from face_keypoints.data.face import ABSENT, OCCLUDED, VISIBLE
from face_keypoints.data.readers import MARKS_VISIBILITY
from face_keypoints.data.targets import EXTRA_TARGETS, PRESENCE, VISIBILITY, visible_name
from face_keypoints.schemes import get_scheme, map_points, mapping_matrix

Batch = tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]

_POLL = 0.1  # seconds between checks of the stop flag while a queue is full or empty


@dataclass(frozen=True)
class Route:
    """How one source scheme fills one head: points via map_points, and which source
    points each head point needs present (a (K_head, K_src) bool matrix)."""

    src: str
    dst: str
    needs: np.ndarray
    defined: np.ndarray

    @classmethod
    def between(cls, src: str, dst: str) -> Route:
        matrix = mapping_matrix(src, dst)
        defined = ~np.isnan(matrix).any(axis=1)
        return cls(src, dst, np.nan_to_num(matrix, nan=0.0) > 0, defined)

    def fill(self, points: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, K_dst, 2) points and (N, K_dst) float32 masks from (N, K_src, ...) samples."""
        mapped, _ = map_points(points, self.src, self.dst)
        absent = visibility == ABSENT
        mask = self.defined & ~(self.needs[None] & absent[:, None, :]).any(axis=2)
        return np.where(mask[..., None], mapped, 0.0).astype(np.float32), mask.astype(np.float32)


class BatchStream:
    """(images, targets, masks) batches over one or more caches, for every model head.

    images are float32 (B, S, S, 3) RGB 0..255; targets[scheme] (B, K, 2) float32 in
    normalised model-crop coordinates; masks[scheme] (B, K) float32. `augment=None` frames
    samples as validation does; `align` rotates every crop so that the ground truth's
    eyes are level (augment.Augmenter). `extras` adds the targets of extra heads:
    "presence" ((B,) 1 for a face, 0 for a crop the augmentation made to frame none,
    `augment.negative_p` of the training samples, whose points all count as absent) and
    "visibility" ("visible_<scheme>" (B, K) 1 seen, 0 hidden, masked to the points whose
    state is known: every point of a cache whose format marks visibility, and points the
    augmentation covered). The last partial batch is dropped when `drop_remainder`
    (default: when shuffling, i.e. training) and kept otherwise. `workers` threads make
    batches ahead, at most `prefetch` each. Stop early with `close()` or a `with` block.
    """

    def __init__(
        self,
        sources: list[tuple[Cache, np.ndarray]],
        schemes: list[str],
        batch_size: int,
        input_size: int,
        augment: AugmentConfig | None,
        seed: int,
        shuffle: bool = True,
        drop_remainder: bool | None = None,
        workers: int = 1,
        prefetch: int = 4,
        weights: list[float] | None = None,
        align: bool = False,
        extras: tuple[str, ...] | list[str] = (),
    ) -> None:
        if not schemes:
            raise ValueError("a stream needs at least one head scheme")
        if batch_size < 1 or workers < 1 or prefetch < 1:
            raise ValueError("batch_size, workers and prefetch must be at least 1")
        for name in schemes:
            get_scheme(name)
        self.caches = [cache for cache, _ in sources]
        self.schemes = list(schemes)
        self.batch_size = batch_size
        self.input_size = input_size
        self.augmenter = (Augmenter(augment, input_size, align) if augment is not None
                          else None)
        self.align = align
        self.extras = tuple(extras)
        unknown = set(self.extras) - set(EXTRA_TARGETS)
        if unknown:
            raise ValueError(f"no targets for extra heads {sorted(unknown)}")
        self.seed = seed
        self.shuffle = shuffle
        self.drop_remainder = shuffle if drop_remainder is None else drop_remainder
        self.workers = workers
        self.prefetch = prefetch
        self.weights = [1.0] * len(sources) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(sources) or any(w <= 0 for w in self.weights):
            raise ValueError("one weight above 0 per source")
        # One row per face: (source number, row in that cache).
        self.samples = np.concatenate(
            [np.stack([np.full(len(idx), n), np.asarray(idx, dtype=np.int64)], axis=1)
             for n, (_, idx) in enumerate(sources)]
            or [np.zeros((0, 2), dtype=np.int64)]
        ).astype(np.int64)
        self._source_rows = [np.flatnonzero(self.samples[:, 0] == n) for n in range(len(sources))]
        self.routes = {
            (c.scheme.name, head): Route.between(c.scheme.name, head)
            for c in self.caches for head in self.schemes
        }
        self._cached_order: tuple[int, np.ndarray] | None = None
        self._lock = threading.Lock()
        self._running: set[_Producer] = set()

    def __len__(self) -> int:
        """Batches per epoch."""
        n = self.epoch_size
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

    @property
    def epoch_size(self) -> int:
        """Samples an epoch draws: each source's faces times its weight."""
        return sum(round(w * len(rows)) for w, rows in zip(self.weights, self._source_rows,
                                                           strict=True))

    def order(self, epoch_index: int) -> np.ndarray:
        """Rows of `samples` in the order epoch `epoch_index` visits them.

        A source of weight w gives each of its faces floor(w) times, and a share w -
        floor(w) of them once more, drawn anew every epoch; so weights mix data sets by
        share without copying a cache, and weight 1 everywhere is every face once.
        """
        rng = np.random.default_rng([self.seed, epoch_index])
        drawn = []
        for weight, rows in zip(self.weights, self._source_rows, strict=True):
            whole, extra = int(weight), round(weight * len(rows)) - int(weight) * len(rows)
            drawn += [rows] * whole
            if extra:
                drawn.append(np.sort(rng.choice(rows, extra, replace=False)))
        epoch = np.concatenate(drawn or [np.zeros(0, np.int64)])
        return rng.permutation(epoch) if self.shuffle else epoch

    def make_batch(self, epoch_index: int, batch_index: int) -> Batch:
        """Batch `batch_index` of epoch `epoch_index`; a pure function of the stream's seed."""
        start = batch_index * self.batch_size
        rows = self.samples[self._order(epoch_index)[start : start + self.batch_size]]
        rng = np.random.default_rng([self.seed, epoch_index, batch_index])
        size = self.input_size
        images = np.empty((len(rows), size, size, 3), dtype=np.float32)
        placed: list[np.ndarray] = []
        visible: list[np.ndarray] = []
        negative = np.zeros(len(rows), bool)
        # Drawn only for a presence head, so that other runs keep their random stream.
        negatives = PRESENCE in self.extras and self.augmenter is not None
        for i, (source, row) in enumerate(rows):
            cache = self.caches[source]
            image, points, visibility = cache.images[row], cache.points[row], cache.visibility[row]
            if negatives and rng.random() < self.augmenter.config.negative_p:
                negative[i] = True
                images[i] = self.augmenter.negative(image, rng)
                where = np.zeros_like(points)
                visibility = np.full_like(visibility, ABSENT)
            elif self.augmenter is not None:
                images[i], where, visibility = self.augmenter(image, points, visibility,
                                                              cache.scheme, rng)
            else:
                images[i], where = model_input(image, points, visibility, size,
                                               cache.scheme if self.align else None)
            placed.append(where)
            visible.append(visibility)
        targets = {h: np.zeros((len(rows), get_scheme(h).num_points, 2), np.float32)
                   for h in self.schemes}
        masks = {h: np.zeros((len(rows), get_scheme(h).num_points), np.float32)
                 for h in self.schemes}
        # Map each source scheme's samples to every head in one call per (scheme, head).
        source_schemes = np.array([self.caches[s].scheme.name for s in rows[:, 0]])
        for name in np.unique(source_schemes):
            members = np.flatnonzero(source_schemes == name)
            points = np.stack([placed[m] for m in members])
            visibility = np.stack([visible[m] for m in members])
            for head in self.schemes:
                targets[head][members], masks[head][members] = self.routes[(name, head)].fill(
                    points, visibility)
        if self.extras:
            self._extra_targets(rows, visible, negative, targets, masks)
        return images, targets, masks

    def _extra_targets(self, rows: np.ndarray, visible: list[np.ndarray],
                       negative: np.ndarray, targets: dict, masks: dict) -> None:
        """Add the presence and visibility targets (see the class docstring)."""
        if PRESENCE in self.extras:
            targets[PRESENCE] = (~negative).astype(np.float32)
            masks[PRESENCE] = np.ones(len(rows), np.float32)
        if VISIBILITY not in self.extras:
            return
        for head in self.schemes:
            count = get_scheme(head).num_points
            seen = np.zeros((len(rows), count), np.float32)
            known = np.zeros((len(rows), count), np.float32)
            for i, (source, _) in enumerate(rows):
                cache = self.caches[source]
                if negative[i] or cache.scheme.name != head:
                    continue  # states are not mapped between schemes
                state = visible[i]
                seen[i] = state == VISIBLE
                marked = cache.manifest.get("format") in MARKS_VISIBILITY
                known[i] = np.ones(count) if marked else state == OCCLUDED
            targets[visible_name(head)], masks[visible_name(head)] = seen, known

    def _order(self, epoch_index: int) -> np.ndarray:
        """`order`, kept for the epoch in progress (workers ask once a batch)."""
        cached = self._cached_order
        if cached is None or cached[0] != epoch_index:
            cached = self._cached_order = (epoch_index, self.order(epoch_index))
        return cached[1]

    def epoch(self, epoch_index: int, first_batch: int = 0) -> Iterator[Batch]:
        """The batches of one epoch, from `first_batch` on (to resume mid-epoch).

        Threads start on the first `next()` and stop when the epoch ends, when the
        generator is closed or collected, or when the stream is closed.
        """
        producer = _Producer(self, epoch_index, range(first_batch, len(self)))
        with self._lock:
            self._running.add(producer)
        try:
            yield from producer
        finally:
            producer.stop()
            with self._lock:
                self._running.discard(producer)

    def close(self) -> None:
        """Stop every epoch in progress and join its threads."""
        with self._lock:
            running = list(self._running)
        for producer in running:
            producer.stop()

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Producer:
    """Worker w makes batches w, w + n, w + 2n... into its own bounded queue, so the
    consumer reads them back in order without any reordering buffer."""

    def __init__(self, stream: BatchStream, epoch_index: int, batches: range) -> None:
        self.batches = batches
        self.stop_flag = threading.Event()
        count = max(1, min(stream.workers, len(batches)))
        self.queues: list[queue.Queue] = [queue.Queue(stream.prefetch) for _ in range(count)]
        self.threads = [
            threading.Thread(target=self._work, args=(stream, epoch_index, w), daemon=True,
                             name=f"batch-stream-{epoch_index}-{w}")
            for w in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def _work(self, stream: BatchStream, epoch_index: int, worker: int) -> None:
        out = self.queues[worker]
        for batch_index in self.batches[worker :: len(self.queues)]:
            try:
                item: Batch | Exception = stream.make_batch(epoch_index, batch_index)
            except Exception as err:  # handed to the consumer, which re-raises it
                item = err
            while not self.stop_flag.is_set():
                try:
                    out.put(item, timeout=_POLL)
                    break
                except queue.Full:
                    continue
            if self.stop_flag.is_set() or isinstance(item, Exception):
                return

    def __iter__(self) -> Iterator[Batch]:
        for n in range(len(self.batches)):
            source, worker = self.queues[n % len(self.queues)], self.threads[n % len(self.queues)]
            while True:
                if self.stop_flag.is_set():
                    return
                try:
                    item = source.get(timeout=_POLL)
                    break
                except queue.Empty:
                    # A worker that ended without handing over its batch would hang us.
                    if not worker.is_alive() and source.empty():
                        raise RuntimeError(f"{worker.name} stopped before batch "
                                           f"{self.batches[n]}") from None
            if isinstance(item, Exception):
                raise item
            yield item

    def stop(self) -> None:
        self.stop_flag.set()
        for thread in self.threads:
            thread.join()
