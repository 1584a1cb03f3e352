"""BlazeFace, MediaPipe's face detector, run with LiteRT: anchors, decoding and weighted NMS.

The model file is MediaPipe's `face_detection_short_range.tflite` (Apache-2.0, shipped in
face_keypoints/shipped/ with its NOTICE). Only the flatbuffer is used: the anchors, box and
keypoint decoding and the non-maximum suppression are written here, so nothing heavier
than ai_edge_litert is imported at run time.

How the SSD head is laid out (MediaPipe's SsdAnchorsCalculator options for this model):
a grid per distinct stride, cells of `input size / stride`, anchor centres at the cell
centres, several anchors per cell (consecutive layers of one stride share a grid and
stack their anchors), every anchor of unit size. Each anchor predicts a box centre offset
and size and six keypoints, all in input pixels relative to the anchor centre, and a
logit. The image is letterboxed into the square input (aspect ratio kept, black bars),
which also downscales a large image, and the results are mapped back to image pixels.

The detector's box is not the box the landmark model was trained to crop around (the box
of the landmarks), so `landmark_square` maps a detection to the training crop with a
linear model fitted on annotated faces (benchmarks/detectors.py --fit).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from face_keypoints import geometry
from face_keypoints.errors import BadInput
from face_keypoints.resolve import shipped_file

SHORT_RANGE_FILE = "face_detection_short_range.tflite"
# The photo path's second pass sees the image at twice the model's input size.
ZOOM = 2
# That pass shows the model many more background patches than the first; below this
# score the faces it adds on AFW photos are mostly hair, hands and jewellery (the
# threshold the 3x3 tiles it replaced used; benchmarks/detectors.py --photos).
ZOOM_MIN_SCORE = 0.75
# A photo whose faces the first pass all found at least this fraction of its longer side
# is a close-up: the 2x pass is skipped (it costs 4x the first). On the 337 AFW and 2,032
# MERL-RAV test photos of benchmarks/detectors.py --photos it found no annotated face the
# first pass missed; of the six faces it added, five were ears beside a profile's face and
# one a bystander's face behind a close-up.
CLOSE_UP = 0.25
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")


@dataclass(frozen=True)
class SsdSpec:
    """How a BlazeFace-style SSD lays out its anchors and what it calls a face."""

    size: int  # square input in pixels
    strides: tuple[int, ...]  # one per output layer
    anchors_per_layer: int  # anchors each layer adds to a cell of its grid
    min_score: float


SHORT_RANGE = SsdSpec(size=128, strides=(8, 16, 16, 16), anchors_per_layer=2, min_score=0.5)
# The full-range model (192 px, faces up to ~5 m) is not shipped: benchmarks/detectors.py
# measures it (from the mediapipe wheel) with this spec, and on 450 px photos it finds
# fewer faces than the short-range model at 128 + 256 px, profiles above all.
FULL_RANGE = SsdSpec(size=192, strides=(4,), anchors_per_layer=1, min_score=0.6)


@dataclass(frozen=True)
class Detection:
    """A face found by the detector, in image pixels.

    `box` is (x0, y0, x1, y1); `keypoints` are the six of `KEYPOINTS` ("right" is the
    subject's right, on the image's left), (6, 2).
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray


def ssd_anchors(spec: SsdSpec) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1] input coordinates, in the order the model outputs."""
    centres = []
    i = 0
    while i < len(spec.strides):
        stride = spec.strides[i]
        j = i
        while j < len(spec.strides) and spec.strides[j] == stride:
            j += 1
        cells = -(-spec.size // stride)
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) / cells
        centres.append(np.repeat(grid, (j - i) * spec.anchors_per_layer, axis=0))
        i = j
    return np.concatenate(centres).astype(np.float32)


def letterbox_matrix(width: int, height: int, size: int) -> np.ndarray:
    """2x3 affine from image pixels into a size x size input that holds the whole image,
    aspect ratio kept and centred (pixel centres at integers on both sides)."""
    s = size / max(width, height)
    ox, oy = (size - s * width) / 2.0, (size - s * height) / 2.0
    return np.array([[s, 0.0, ox + 0.5 * s - 0.5], [0.0, s, oy + 0.5 * s - 0.5]])


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (4,) box with (N, 4) boxes, all x0, y0, x1, y1."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 threshold: float) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """Merge overlapping candidates into one detection each, best first.

    Like MediaPipe's WEIGHTED suppression: every candidate overlapping the best remaining
    one by more than `threshold` IoU is folded into it, box and keypoints averaged by
    score, which steadies the box from frame to frame more than keeping the best alone.
    """
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    merged = []
    remaining = np.arange(len(scores))
    while remaining.size:
        overlaps = iou(boxes[remaining[0]], boxes[remaining]) > threshold
        group = remaining[overlaps]
        weights = scores[group] / scores[group].sum()
        merged.append((weights @ boxes[group],
                       float(scores[group[0]]),
                       np.einsum("n,nkc->kc", weights, keypoints[group])))
        remaining = remaining[~overlaps]
    return merged


def detector_model_path() -> Path:
    """The BlazeFace file shipped inside the package."""
    path = shipped_file(SHORT_RANGE_FILE)
    if not path.is_file():
        raise BadInput(f"{path}: the face detector model is missing from the installed "
                       "package; reinstall face-keypoints")
    return path


class BlazeFace:
    """Faces in an RGB image: `detect(image)` -> detections, best first."""

    def __init__(self, path: str | Path | None = None, spec: SsdSpec = SHORT_RANGE,
                 threads: int | None = 1, min_score: float | None = None,
                 iou_threshold: float = 0.3, input_size: int | None = None) -> None:
        """`input_size` runs the model on a larger square than it was made for (it is
        fully convolutional): the image is seen larger, so smaller faces are found and
        the largest are not."""
        from face_keypoints.runtime.predictor import open_interpreter

        path = detector_model_path() if path is None else Path(path)
        self._interpreter = open_interpreter(path, threads)
        (image,) = self._interpreter.get_input_details()
        if tuple(image["shape"]) != (1, spec.size, spec.size, 3):
            raise BadInput(f"{path}: input {tuple(image['shape'])} is not the detector's "
                           f"(1, {spec.size}, {spec.size}, 3)")
        self._made_for, self._path, self._threads = spec, path, threads
        if input_size is not None and input_size != spec.size:
            spec = replace(spec, size=input_size)
            self._interpreter.resize_tensor_input(image["index"], [1, input_size, input_size, 3])
            self._interpreter.allocate_tensors()
        self.spec = spec
        self._zoomed: BlazeFace | None = None
        self._input = image["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda o: -o["shape"][-1])
        self._regressors, self._scores = (o["index"] for o in outputs)
        self._anchors = ssd_anchors(spec)
        if outputs[0]["shape"][1] != len(self._anchors):
            raise BadInput(f"{path}: {outputs[0]['shape'][1]} anchors, expected "
                           f"{len(self._anchors)}")
        self._min_score = spec.min_score if min_score is None else min_score
        self._min_logit = _logit(self._min_score)
        self._iou = iou_threshold

    def detect(self, image: np.ndarray, region: geometry.Square | None = None,
               min_score: float | None = None) -> list[Detection]:
        """Faces in an (H, W, 3) uint8 RGB image, best score first; with `region`, only
        in that square (resampled to the input, so a small face there is seen larger);
        `min_score` overrides the detector's threshold for this call."""
        height, width = image.shape[:2]
        size = self.spec.size
        matrix = (letterbox_matrix(width, height, size) if region is None
                  else geometry.crop_matrix(region, size))
        # Scaled to [-1, 1] straight into the interpreter's input: a third of the time of
        # a float copy scaled in place and then copied in by set_tensor.
        tensor = self._interpreter.tensor(self._input)()
        np.multiply(geometry.warp(image, matrix, size), np.float32(1.0 / 127.5),
                    out=tensor[0], dtype=np.float32)
        tensor -= np.float32(1.0)
        del tensor  # LiteRT refuses to run while a view of its buffers is held
        self._interpreter.invoke()
        logits = self._interpreter.get_tensor(self._scores)[0, :, 0]
        floor = self._min_logit if min_score is None else _logit(min_score)
        keep = np.flatnonzero(logits > floor)
        if keep.size == 0:
            return []
        raw = self._interpreter.get_tensor(self._regressors)[0, keep].astype(np.float64)
        anchors = self._anchors[keep] * size - 0.5  # input pixel centres
        centre = anchors + raw[:, 0:2]
        half = raw[:, 2:4] / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        keypoints = anchors[:, None, :] + raw[:, 4:16].reshape(-1, 6, 2)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -100.0, 100.0)))
        back = geometry.invert(matrix)
        faces = []
        for box, score, points in weighted_nms(boxes, keypoints, scores, self._iou):
            corners = geometry.transform_points(box.reshape(2, 2), back).ravel()
            faces.append(Detection(corners, score, geometry.transform_points(points, back)))
        return faces

    def detect_photo(self, image: np.ndarray) -> list[Detection]:
        """`detect` plus a second pass over the whole image at ZOOM x the input size, for
        photos: a face needs about 12 input pixels (MediaPipe's short-range model is
        made for faces near the camera), so in the first pass alone a face smaller than
        about a tenth of the image is missed; the second halves that. The model is fully
        convolutional, so one pass at 256 px sees what 3x3 half-size tiles at 128 px
        saw, with no tile borders to cut a face, in about half the time. A face it adds
        is kept when the first pass did not already find it. A close-up (every face the
        first pass found at least CLOSE_UP of the longer side) skips the second pass:
        small faces beside a large one are not searched for."""
        found = self.detect(image)
        height, width = image.shape[:2]
        if max(width, height) < ZOOM * self.spec.size:  # the first pass sees every pixel
            return found
        if found and min(d.box[2] - d.box[0] for d in found) >= CLOSE_UP * max(width, height):
            return found
        if self._zoomed is None:
            self._zoomed = BlazeFace(self._path, self._made_for, self._threads,
                                     iou_threshold=self._iou,
                                     input_size=ZOOM * self.spec.size)
        floor = max(ZOOM_MIN_SCORE, self._min_score)
        for detection in self._zoomed.detect(image, min_score=floor):
            if all(_covered(detection.box, kept.box) < 0.5 for kept in found):
                found.append(detection)
        return sorted(found, key=lambda d: -d.score)


def _logit(score: float) -> float:
    if not 0.0 < score < 1.0:
        raise BadInput(f"detector score threshold {score}: must lie between 0 and 1")
    return float(np.log(score / (1.0 - score)))


def _covered(box: np.ndarray, other: np.ndarray) -> float:
    """The fraction of `box`'s area that lies inside `other`."""
    w = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
    h = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
    return w * h / max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)


def landmark_square(detection: Detection) -> geometry.Square:
    """The landmark model's crop for a detection: the square MODEL_SCALE x the estimated
    landmark box, the framing the model was trained on."""
    box = detection.box
    side = float(box[2] - box[0])
    centre = (box[:2] + box[2:]) / 2.0
    features = np.concatenate([[1.0], ((detection.keypoints - centre) / side).ravel()])
    dx, dy, log_ratio = np.clip(features @ BOX_FIT, *BOX_RANGE)
    landmark_side = side * float(np.exp(log_ratio))
    return geometry.Square(float(centre[0] + dx * side), float(centre[1] + dy * side),
                           landmark_side * geometry.MODEL_SCALE)


def eye_roll(detection: Detection) -> float:
    """The face's roll by the detection's eye keypoints, in degrees as Scheme.roll gives
    it (image axes, y down; the line from the subject's right eye to the left one): what
    an aligned model's first crop levels, before any landmark is known."""
    right, left = (detection.keypoints[KEYPOINTS.index(k)] for k in ("right_eye", "left_eye"))
    dx, dy = left - right
    return float(np.degrees(np.arctan2(dy, dx)))


# Landmark box from a detection: centre offset (x, y) in detector box widths and the log
# of landmark-box longer side / detector box width, each linear in [1, keypoints relative
# to the detector box centre in box widths]. Fitted (ridge 1e-3) on the 870 HELEN faces
# of 300-W by `benchmarks/detectors.py --fit`; on AFW, held out, it misplaces the centre
# by 3.0% of the landmark box side (a constant offset: 4.1%) and the side by 3.3% (5.4%).
BOX_FIT = np.array([
    [-0.0302, -0.1477, -0.6633],
    [0.7481, 0.7692, 2.4354],
    [-0.0802, -1.8475, 2.0788],
    [0.1408, -0.4994, -4.2653],
    [-0.3794, -0.0050, -0.3691],
    [-0.1369, 0.3784, -0.6637],
    [0.4896, 1.6197, -1.7729],
    [-0.5625, -0.7434, 2.0441],
    [-0.3038, -0.4804, 1.2349],
    [-0.5744, -0.3281, -2.5830],
    [0.3922, 1.0103, -1.6984],
    [-0.2078, 0.1594, 2.3645],
    [-0.1128, -0.4133, 1.3768],
])
# The range of the HELEN targets: a face unlike them (a profile, which HELEN lacks) gets
# the nearest framing seen in the fit, not an extrapolation.
BOX_RANGE = (np.array([-0.093, -0.095, -0.242]), np.array([0.090, 0.174, 0.248]))

