"""The `evaluate` verb: a model (Keras or TFLite) over a prepared cache; numbers and pictures.

Both model kinds go through the same predictor interface, so a model and its export are
scored by identical code. Faces are framed exactly as in training (the input pipeline
without augmentation) and scored on the cache's held-out faces (Cache.indices("val"):
the "val" split, else a published "test" split, else every face). When the cache's
landmark scheme is not one the model predicts, the ground truth is mapped onto a model
scheme (schemes.map_points, via the pipeline) and only the points the mapping defines,
from present source points, are scored.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from face_keypoints import draw, metrics
from face_keypoints.data.cache import Cache, open_cache
from face_keypoints.data.pipeline import BatchStream
from face_keypoints.errors import BadInput
from face_keypoints.fileio import check_writable_folder
from face_keypoints.resolve import ResolvedModel, resolve_model
from face_keypoints.runtime.predictor import Predictor, load_predictor
from face_keypoints.schemes import Scheme, get_scheme, mapping_matrix

PICTURES = 16  # faces in each picture grid (4 x 4)
PICTURE_NAMES = ("ced", "predictions", "ground_truth")  # the .png files of --output
YAW_BINS = {"yaw_0_30": (0.0, 30.0), "yaw_30_60": (30.0, 60.0), "yaw_60_90": (60.0, math.inf)}


def evaluate(model: str | Path | ResolvedModel | Predictor, data: str | Path,
             output: str | Path | None = None, threads: int | None = None,
             batch_size: int = 64, align: bool | None = None,
             on_scores: Callable[[dict], None] | None = None) -> dict:
    """Score `model` (a path, `default`, `default:PRECISION` or a Predictor) on the cache
    `data`; with `output`, also write ced.png, predictions.png and ground_truth.png there.
    `align` frames faces with level eyes (the ground truth's roll), as a model trained
    with `align` saw them; None takes it from the model (its card, or its run's config:
    ResolvedModel.aligned), and a Predictor passed as such is framed upright unless told.
    Returns a JSON-ready dict (NaN -> None)."""
    cache = open_cache(Path(data))
    predictor, align = _opened(model, threads, align)
    scheme = _target_scheme(cache.scheme, predictor.schemes, cache.path)
    if output is not None:  # before the scoring, which the pictures would otherwise lose
        check_writable_folder(Path(output), "--output")
    indices = cache.indices("val")
    picked = np.unique(np.linspace(0, len(indices) - 1, min(PICTURES, len(indices)))
                       .round().astype(int))

    # The training pipeline without augmentation frames the faces and maps the ground
    # truth, so evaluate scores exactly what training validates on.
    stream = BatchStream([(cache, indices)], [scheme.name], batch_size, predictor.input_size,
                         augment=None, seed=0, shuffle=False, align=align)
    pred, truth, present, crops = [], [], [], []
    offset = 0
    # A bar on a terminal only (tqdm's disable=None): pipes and logs get the result alone.
    bar = tqdm(total=len(indices), unit="face", desc="evaluate", disable=None,
               file=sys.stderr, leave=False)
    with stream, bar:
        for images, targets, masks in stream.epoch(0):
            bar.update(len(images))
            pred.append(predictor.predict(images)[scheme.name])
            truth.append(targets[scheme.name])
            present.append(masks[scheme.name] > 0)
            inside = picked[(picked >= offset) & (picked < offset + len(images))]
            crops.extend(images[inside - offset])
            offset += len(images)
    pred, truth, present = (np.concatenate(a) for a in (pred, truth, present))

    errors = metrics.point_errors(pred, truth, present)
    lengths = metrics.normalisers(truth, present, scheme)
    nme = {name: metrics.nme(errors, length) for name, length in lengths.items()}
    ocular, pupil, box = (metrics.nme_summary(nme[n]) for n in metrics.NORMALISERS)
    x, fraction = metrics.ced(nme["inter_ocular"])
    result = {
        "model": str(predictor.path),
        "model_kind": predictor.kind,
        "aligned": align,  # faces framed with the ground truth's eyes level
        "data": str(cache.path),
        "split": ("all" if len(indices) == len(cache)
                  else ",".join(sorted({cache.faces[i]["split"] for i in indices}))),
        "scheme": scheme.name,
        "head": scheme.name,  # the model head scored, of the model's `heads`
        "heads": list(predictor.schemes),
        "data_scheme": cache.scheme.name,
        "points_scored": int(present.any(axis=0).sum()),
        "n": len(indices),
        "nme": ocular["nme"], "n_nme": ocular["n"],
        "nme_ip": pupil["nme"], "n_ip": pupil["n"],
        "nme_box": box["nme"], "n_box": box["n"],
        "fr10": ocular["fr"], "auc10": ocular["auc"],
        "fr10_box": box["fr"], "auc10_box": box["auc"],
        "ced": {"nme_percent": (100.0 * x).tolist(), "fraction": fraction.tolist()},
        "per_point": (100.0 * metrics.per_point(errors, lengths["inter_ocular"])).tolist(),
        "subsets": {name: _subset(nme, mask) for name, mask in _subsets(cache, indices).items()},
    }
    if output is not None:
        result["pictures"] = {name: str(Path(output) / f"{name}.png") for name in PICTURE_NAMES}
    result = _json_ready(result)
    if on_scores is not None:  # before the pictures: a disk that fills then loses nothing
        on_scores(result)
    if output is not None:
        title = f"{predictor.path.name} on {cache.path.name} ({len(indices)} faces)"
        try:
            _pictures(Path(output), scheme, np.stack(crops), pred[picked], truth[picked],
                      present[picked], nme, title)
        except OSError as err:
            raise BadInput(f"{output}: cannot write the pictures: {err.strerror or err} "
                           "(the scores were computed)") from None
    return result


def _opened(model: str | Path | ResolvedModel | Predictor, threads: int | None,
            align: bool | None) -> tuple[Predictor, bool]:
    """The predictor of `model` and whether its faces are levelled: `align`, else what
    the model says (ResolvedModel.aligned; a Predictor passed as such: upright)."""
    if not isinstance(model, str | Path | ResolvedModel):
        return model, bool(align)
    resolved = resolve_model(model)
    return (load_predictor(resolved, threads),
            resolved.aligned if align is None else align)


def _target_scheme(data_scheme: Scheme, model_schemes: list[str], where: Path) -> Scheme:
    """The cache's own scheme when the model predicts it, else the model scheme onto which
    the most ground-truth points map."""
    if data_scheme.name in model_schemes:
        return data_scheme
    defined = {}
    for name in model_schemes:
        try:
            matrix = mapping_matrix(data_scheme.name, name)
        except KeyError:
            continue
        defined[name] = int((~np.isnan(matrix).any(axis=1)).sum())
    if not defined or max(defined.values()) == 0:
        raise BadInput(f"{where}: holds {data_scheme.name} points, which map onto none of the "
                       f"model's schemes ({', '.join(model_schemes)})")
    return get_scheme(max(defined, key=defined.__getitem__))


def _subsets(cache: Cache, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks over `indices`: WFLW attribute flags, then |yaw| bins.

    A family appears only when the cache records it; |yaw| beyond 90 degrees (a few AFLW
    faces) counts in the last bin.
    """
    faces = [cache.faces[i] for i in indices]
    masks: dict[str, np.ndarray] = {}
    names = dict.fromkeys(name for face in faces for name in face.get("attributes") or {})
    for name in names:
        masks[name] = np.array([(face.get("attributes") or {}).get(name) == 1 for face in faces])
    yaw = np.array([np.nan if face.get("yaw") is None else abs(face["yaw"]) for face in faces])
    if np.isfinite(yaw).any():
        for name, (low, high) in YAW_BINS.items():
            masks[name] = (yaw >= low) & (yaw < high)
    return masks


def _subset(nme: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, float | int]:
    ocular = metrics.nme_summary(nme["inter_ocular"][mask])
    box = metrics.nme_summary(nme["box"][mask])
    return {"n": int(mask.sum()), "nme": ocular["nme"], "n_nme": ocular["n"],
            "nme_box": box["nme"], "n_box": box["n"], "fr10": ocular["fr"],
            "auc10": ocular["auc"]}


def _pictures(folder: Path, scheme: Scheme, crops: np.ndarray, pred: np.ndarray,
              truth: np.ndarray, present: np.ndarray, nme: dict[str, np.ndarray],
              title: str) -> None:
    """CED plot and two grids of the same faces, same order: predictions, ground truth."""
    paths = {name: folder / f"{name}.png" for name in PICTURE_NAMES}
    draw.save_png(paths["predictions"], draw.grid(
        [draw.draw_face(crop, p, scheme) for crop, p in zip(crops, pred, strict=True)]))
    draw.save_png(paths["ground_truth"], draw.grid(
        [draw.draw_face(crop, t, scheme, v)
         for crop, t, v in zip(crops, truth, present, strict=True)]))
    curves = {}
    for name, label in (("inter_ocular", "inter-ocular"), ("box", "box")):
        summary = metrics.nme_summary(nme[name])
        if summary["n"]:
            curves[f"{label}: NME {summary['nme']:.2f}%, AUC@10% {summary['auc']:.3f}"] = (
                metrics.ced(nme[name]))
    draw.save_ced(paths["ced"], curves, title=title)


def _json_ready(value: object) -> object:
    """Plain Python numbers with NaN as None: strict JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        return round(float(value), 6) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def format_table(result: dict) -> str:
    """A short human-readable report of an `evaluate` result."""

    def pct(value: float | None) -> str:
        return "     -" if value is None else f"{value:6.2f}"

    def auc(value: float | None) -> str:
        return "    -" if value is None else f"{value:5.3f}"

    lines = [
        f"model  {result['model']} ({result['model_kind']}, heads {' '.join(result['heads'])})",
        f"head   {result['head']} scored, "
        + ("on the cache's own points" if result["head"] == result["data_scheme"] else
           f"through the {result['data_scheme']} -> {result['head']} mapping"),
        f"data   {result['data']} ({result['data_scheme']}, split {result['split']}, "
        f"{result['n']} faces, {result['points_scored']} points scored)",
        f"NME inter-ocular {pct(result['nme'])} %  ({result['n_nme']} faces)",
        f"NME inter-pupil  {pct(result['nme_ip'])} %  ({result['n_ip']} faces)",
        f"NME box          {pct(result['nme_box'])} %  ({result['n_box']} faces)",
        f"FR@10%           {pct(result['fr10'])} %   box {pct(result['fr10_box'])} %",
        f"AUC@10%          {auc(result['auc10'])}    box {auc(result['auc10_box'])}",
    ]
    if result["subsets"]:
        lines.append(f"{'subset':<14}{'faces':>6}{'NME %':>8}{'box %':>8}{'FR %':>8}{'AUC':>7}")
        for name, s in result["subsets"].items():
            lines.append(f"{name:<14}{s['n']:>6}{pct(s['nme']):>8}{pct(s['nme_box']):>8}"
                         f"{pct(s['fr10']):>8}{auc(s['auc10']):>7}")
    for name, path in result.get("pictures", {}).items():
        lines.append(f"{name:<14}{path}")
    return "\n".join(lines)
