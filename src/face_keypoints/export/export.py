"""The `export` verb: a trained .keras -> one .tflite per precision, checked and compared.

Every file is converted into a staging folder inside the output folder and checked
against the GPU delegate's rules (gpu_ops); only when all pass (or `allow_cpu_fallback`)
is the staging folder, complete with a copy of the source .keras (`<name>.keras`, so the
folder holds the model they came from) and its model.json, renamed to `.export-commit`:
from then on the export is decided. Its files are moved into place, model.json last
(replacing the old one in one rename, never removing it first), so a failed export
leaves nothing half-done and never replaces an existing file without `overwrite`. A
killed export is finished by the next one (`.export-commit`) or its staging folder
removed (killed while converting). With `overwrite`, files an earlier export listed in
model.json and this one does not write (a precision left out this time) are removed, so
the folder holds one model's files.

Parity: each file, and the Keras model, are then scored by evaluate on a validation
cache (`val`, else the `representative` cache the int8 file was calibrated on) and their
NMEs printed side by side. A separate `val` is the cleaner measure: calibrating and
scoring on the same faces flatters int8 slightly.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from face_keypoints.card import MODEL_JSON, PRECISIONS, ModelCard
from face_keypoints.data.cache import Cache, open_cache
from face_keypoints.data.targets import PRESENCE
from face_keypoints.errors import BadInput
from face_keypoints.export.gpu_ops import GpuFallback, GpuReport, check_gpu
from face_keypoints.fileio import owned, write_atomic
from face_keypoints.resolve import KERAS, ResolvedModel, is_default, resolve_model

CALIBRATION_FACES = 200  # representative images for int8; evenly spread over the cache
CALIBRATION_NEGATIVE_EVERY = 3  # a crop framing no face after every third face
STAGING_PREFIX = ".export-"
COMMIT = ".export-commit"  # a complete staging folder whose files are being moved in
STALE = "stale.json"  # in COMMIT: the earlier export's files this one removes
INT8_TOLERANCE = 0.05  # int8 NME may exceed fp32's by this fraction before a warning


@dataclass
class ExportedFile:
    precision: str
    path: Path
    size_bytes: int
    gpu: GpuReport
    nme: float | None = None  # inter-ocular NME (%) on the parity cache
    parity_note: str | None = None  # why there is no NME


@dataclass
class ExportResult:
    output: Path
    model_json: Path
    files: list[ExportedFile]
    parity_data: Path | None = None
    keras_nme: float | None = None
    keras: Path | None = None  # the copy of the source .keras written beside the files
    warnings: list[str] = field(default_factory=list)
    cpu: dict | None = None  # model.json's "cpu": each file's drift and latency, the pick


def export(model: str | Path, output: str | Path,
           precisions: Sequence[str] = ("fp32", "fp16"),
           representative: str | Path | None = None, val: str | Path | None = None,
           int8_io: bool = False, allow_cpu_fallback: bool = False,
           overwrite: bool = False) -> ExportResult:
    """Write OUTPUT/<name>_<precision>.tflite for each precision and OUTPUT/<name>.keras
    (a copy of `model`), then OUTPUT/model.json. `model` may be `default` (the shipped
    model's .keras, `default:keras`)."""
    from face_keypoints.runtime.predictor import load_predictor

    named, output = model, Path(output)
    resolved = resolve_model(named, prefer=KERAS)
    model = resolved.path
    precisions = list(dict.fromkeys(precisions))
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        raise BadInput(f"precision {', '.join(unknown) or '(none)'}: choose from "
                       f"{', '.join(PRECISIONS)}")
    if "int8" in precisions and representative is None:
        raise BadInput("int8 needs --representative CACHE: faces to calibrate on")
    if int8_io and "int8" not in precisions:
        raise BadInput("--int8-io applies to the int8 file; add int8 to --precision")
    calibration = _open_nonempty(representative) if representative is not None else None
    parity = _open_nonempty(val) if val is not None else calibration
    if model.suffix != ".keras":
        shipped = " (the shipped one is default:keras)" if is_default(named) else ""
        raise BadInput(f"{model}: export takes the .keras model a training run saved"
                       + shipped)
    keras_model = load_predictor(resolved).model
    # Scored first: a parity cache the model cannot be scored on fails before any writing.
    keras_nme = _nme(model, parity) if parity is not None else None

    with owned(output):
        result = _publish(resolved, keras_model, output, precisions, calibration, int8_io,
                          allow_cpu_fallback, overwrite)
    result.keras_nme = keras_nme

    if parity is not None:
        _parity(result, parity, int8_io)
        from face_keypoints.export.tflite import record_cpu_precision

        result.cpu = record_cpu_precision(result.model_json,
                                          {f.precision: f.path for f in result.files},
                                          {f.precision: f.nme for f in result.files},
                                          parity.path)
    return result


def _publish(model: ResolvedModel, keras_model, output: Path, precisions: list[str],
             calibration: Cache | None, int8_io: bool, allow_cpu_fallback: bool,
             overwrite: bool) -> ExportResult:
    """Convert and check every file in a staging folder, then commit it (see the module
    docstring); the caller owns `output` meanwhile."""
    from face_keypoints.export.tflite import write_model_json

    names = {p: f"{keras_model.name}_{p}.tflite" for p in precisions}
    keras_copy = f"{keras_model.name}.keras"
    _recover(output)
    _check_output(output, [*names.values(), keras_copy, MODEL_JSON], overwrite)
    provenance = _provenance(model)
    aligned = model.aligned  # before any writing: a broken config.yaml fails here
    created = not output.exists()
    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=output))
    try:
        files = _convert_all(keras_model, staging, output, names, calibration, int8_io,
                             aligned)
        write_atomic(staging / keras_copy, lambda tmp: shutil.copyfile(model.path, tmp))
        result = ExportResult(output, output / MODEL_JSON, files, keras=output / keras_copy)
        blocked = [f.gpu.describe() for f in files if not f.gpu.ok]
        if blocked and not allow_cpu_fallback:
            raise GpuFallback(f"{' | '.join(blocked)}; nothing written (--allow-cpu-fallback "
                              "writes them anyway)")
        result.warnings += [f"{line} (written anyway: --allow-cpu-fallback)"
                            for line in blocked]
        write_model_json(staging, keras_model, {**names, "keras": keras_copy}, **provenance,
                         aligned=aligned)
        stale = set(_earlier_files(output).values()) - {*names.values(), keras_copy}
        write_atomic(staging / STALE, lambda tmp: tmp.write_text(json.dumps(sorted(stale))))
        os.rename(staging, output / COMMIT)
    except OSError as err:  # a full disk: name the output, not the file being copied
        raise BadInput(f"{output}: cannot write the export: {err.strerror or err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(output.iterdir()):
            output.rmdir()  # a failed export into a new folder leaves no trace
    _finish_commit(output)
    for file in files:
        file.gpu.path = file.path
    return result


def _convert_all(keras_model, staging: Path, output: Path, names: dict[str, str],
                 calibration: Cache | None, int8_io: bool,
                 aligned: bool) -> list[ExportedFile]:
    """Convert every precision into `staging` and check each file against the GPU
    delegate's rules; the files are described where they will be published."""
    from face_keypoints.export.tflite import convert

    size = int(keras_model.input_shape[1])
    files = []
    # A bar on a terminal only (tqdm's disable=None): conversions take seconds each.
    for precision, name in tqdm(names.items(), desc="export", unit="file", disable=None,
                                file=sys.stderr, leave=False):
        staged = staging / name
        convert(keras_model, staged, precision,
                representative=(lambda: _calibration_images(
                    calibration, size, aligned, PRESENCE in keras_model.output_names))
                if precision == "int8" else None,
                int8_io=int8_io and precision == "int8")
        files.append(ExportedFile(precision, output / staged.name, staged.stat().st_size,
                                  check_gpu(staged)))
    return files


def _recover(output: Path) -> None:
    """Finish the export a kill interrupted while moving its files in, and remove the
    staging folders of exports killed while converting."""
    if not output.is_dir():
        return
    if (output / COMMIT).is_dir():
        _finish_commit(output)
    for leftover in output.glob(f"{STAGING_PREFIX}*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)


def _finish_commit(output: Path) -> None:
    """Move the committed files into `output`, model.json last (one rename replaces the
    old one), then remove the earlier export's stale files. Safe to run again after a
    kill at any point."""
    commit = output / COMMIT
    try:
        stale = json.loads((commit / STALE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stale = []
    for path in sorted(commit.iterdir()):
        if path.name not in (MODEL_JSON, STALE):
            os.replace(path, output / path.name)
    if (commit / MODEL_JSON).exists():
        os.replace(commit / MODEL_JSON, output / MODEL_JSON)
    for name in stale:
        if isinstance(name, str) and Path(name).name == name:
            (output / name).unlink(missing_ok=True)
    shutil.rmtree(commit)


def _provenance(model: ResolvedModel) -> dict[str, str | None]:
    """The run `model` came from (its folder) and the cache its outputs were calibrated on
    (that run's metrics.json); for the .keras copy of an earlier export (such as
    `default:keras`), what that export's model.json says."""
    from face_keypoints.training.run_folder import FINISHED

    card = model.card
    if card is not None and card.own_files().get("keras") == model.path.name:
        recorded = card.data.get("source_run")
        if isinstance(recorded, str) and recorded:
            return {"source_run": recorded, "calibrated_on": card.data.get("calibrated_on")}
    run = model.path.resolve().parent
    try:
        calibration = json.loads((run / FINISHED).read_text(encoding="utf-8"))["calibration"]
        calibrated_on = str(calibration["cache"])
    except (OSError, ValueError, KeyError, TypeError):
        calibrated_on = None
    return {"source_run": str(run), "calibrated_on": calibrated_on}


def _earlier_files(folder: Path) -> dict[str, str]:
    """{precision or "keras": file name} of the earlier export in `folder` ({} without a
    readable model.json there)."""
    card = ModelCard.find(folder)
    return {} if card is None else card.own_files()


def _open_nonempty(path: str | Path) -> Cache:
    cache = open_cache(Path(path))
    if len(cache) == 0:
        raise BadInput(f"{cache.path}: empty cache (no faces)")
    return cache


def _check_output(output: Path, names: list[str], overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise BadInput(f"{output}: exists and is not a folder")
    taken = [name for name in names if (output / name).exists()]
    if taken and not overwrite:
        raise BadInput(f"{output}: {', '.join(taken)} already there; pass --overwrite to "
                       "replace")


def _calibration_images(cache: Cache, size: int, aligned: bool,
                        negatives: bool) -> Iterator[np.ndarray]:
    """Up to CALIBRATION_FACES crops framed as evaluate and predict frame them (turned to
    level the eyes for an `aligned` model); with `negatives` (a model with a presence
    output), crops that frame no face too, made as training makes them: calibrated on
    faces alone, int8's range for the presence logit stops at 0, and every crop without
    a face then reads a presence of 0.5."""
    from face_keypoints.data.augment import AugmentConfig, Augmenter, model_input

    picked = np.unique(np.linspace(0, len(cache) - 1, min(CALIBRATION_FACES, len(cache)))
                       .round().astype(int))
    augmenter, rng = Augmenter(AugmentConfig(), size), np.random.default_rng(0)
    for n, i in enumerate(picked):
        crop, _ = model_input(cache.images[i], cache.points[i], cache.visibility[i], size,
                              cache.scheme if aligned else None)
        yield crop[None].astype(np.float32)
        if negatives and n % CALIBRATION_NEGATIVE_EVERY == 0:
            yield augmenter.negative(cache.images[i], rng)[None].astype(np.float32)


def _nme(model: Path, cache: Cache) -> float | None:
    """Inter-ocular NME (%) by evaluate, the same code that scores any model."""
    from face_keypoints.evaluate import evaluate

    return evaluate(model, cache.path)["nme"]


def _parity(result: ExportResult, cache: Cache, int8_io: bool) -> None:
    """NME of each file on `cache` beside the Keras model's; a warning if int8 drifts."""
    result.parity_data = cache.path
    for file in result.files:
        if file.precision == "int8" and int8_io:
            file.parity_note = ("not scored: the predictor feeds float32 images, and this "
                                "file takes int8")
            continue
        file.nme = _nme(file.path, cache)
    nme = {f.precision: f.nme for f in result.files}
    reference, label = (nme["fp32"], "fp32") if nme.get("fp32") is not None else (
        result.keras_nme, "the Keras model")
    warning = int8_drift(nme.get("int8"), reference, label)
    if warning is not None:
        result.warnings.append(warning)


def int8_drift(int8: float | None, reference: float | None, label: str) -> str | None:
    """A warning when the int8 file's NME exceeds the reference's by more than
    INT8_TOLERANCE (relative); None when within it or either figure is missing."""
    if int8 is None or reference is None or not math.isfinite(reference) or \
            int8 <= reference * (1.0 + INT8_TOLERANCE):
        return None
    return (f"int8 NME {int8:.3f}% is {100.0 * (int8 / reference - 1.0):.1f}% worse than "
            f"{label} {reference:.3f}% (tolerance {100 * INT8_TOLERANCE:.0f}%)")


def format_report(result: ExportResult) -> str:
    """What export wrote, the GPU verdict of each file, and the parity table."""
    lines = []
    for f in result.files:
        lines.append(f"wrote {f.path}  {f.precision}  {f.size_bytes:,} bytes")
        lines.append(f"  GPU: {f.gpu.describe()}")
        lines += [f"  note: {note}" for note in f.gpu.notes]
    if result.keras is not None:
        lines.append(f"wrote {result.keras}  keras (copy of the source model)  "
                     f"{result.keras.stat().st_size:,} bytes")
    lines.append(f"wrote {result.model_json}")
    if result.parity_data is None:
        lines.append("parity: not measured (give --val or --representative)")
        return "\n".join(lines)

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f} %"

    lines.append(f"parity on {result.parity_data} (NME, inter-ocular):")
    lines.append(f"  keras  {pct(result.keras_nme)}")
    for f in result.files:
        lines.append(f"  {f.precision:<6} {pct(f.nme)}"
                     + (f"  ({f.parity_note})" if f.parity_note else ""))
    if result.cpu is not None:
        timing = ", ".join(f"{p} {v['median_us']:,.0f} us"
                           for p, v in result.cpu["files"].items())
        pick = result.cpu["precision"] or "its default file"
        lines.append(f"on this CPU ({timing}): fastest {pick} ({result.cpu['rule']}); "
                     "predict times those files again on the machine that runs it")
    return "\n".join(lines)
