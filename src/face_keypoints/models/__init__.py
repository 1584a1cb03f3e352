"""Model files shipped inside the package: BlazeFace and the landmark models.

`face_detection_short_range.tflite` is MediaPipe's (Apache-2.0; see NOTICE). Each shipped
landmark model is an export (`face-keypoints export`) copied into a folder of its own:
`default/` (the default model) and `lite/` (a smaller, faster one, where this
installation has it): its .tflite files, the .keras they were converted from, and the
model.json that names them all.

Wherever a model is asked for (`--model` of evaluate, benchmark, predict and export, and
the Python functions behind them, FaceLandmarker included), `resolve_model` turns what
the user wrote into one file:
- `default` or `lite`: that shipped model at its default precision, and
  `default:PRECISION` / `lite:PRECISION` one file of it;
- a folder: an export folder (it holds model.json) means its files as the shipped ones
  do (`FOLDER:PRECISION` picks one), a training run's folder (it holds best.keras) that
  model;
- anything else is a file path, taken as it is (a file really called `default` is
  reached as `./default`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from face_keypoints.errors import BadInput

DEFAULT = "default"
LITE = "lite"
SHIPPED = (DEFAULT, LITE)
DEFAULT_PRECISIONS = ("fp16", "fp32")  # fp16 first: half the size, the same points
KERAS = ("keras",)  # what a model folder means where a .keras is needed (export)
_MODEL_JSON = "model.json"
RUN_MODEL = "best.keras"  # what train leaves in a run folder
_LISTED = 8  # names of a folder's content shown in a "no model" message


def shipped_folder(name: str = DEFAULT) -> Path:
    """The folder of a shipped landmark model (`default` or `lite`) in this package."""
    if name not in SHIPPED:
        raise BadInput(f"{name}: no shipped model of that name; choose {' or '.join(SHIPPED)}")
    return Path(str(resources.files(__name__).joinpath(name)))


def default_folder() -> Path:
    """The folder of the shipped default landmark model (default/ of this package)."""
    return shipped_folder(DEFAULT)


def is_shipped(model: object) -> bool:
    """Whether `model` is a string naming a shipped model: `default`, `lite`, or either
    with `:PRECISION`."""
    return isinstance(model, str) and model.partition(":")[0] in SHIPPED


def is_default(model: object) -> bool:
    """Whether `model` is a string naming the shipped default model: `default` or
    `default:...`."""
    return isinstance(model, str) and model.partition(":")[0] == DEFAULT


def resolve_model(model: str | Path | None, prefer: tuple[str, ...] = DEFAULT_PRECISIONS,
                  folder: Path | None = None) -> Path:
    """The model file `model` names (see the module docstring).

    None means `default`. Without a precision, a model folder gives its first file of
    `prefer` that exists (fp16, then fp32). `folder` replaces the shipped folder (a copy
    of it). An unknown precision, a missing file or a folder without a model is a
    one-line BadInput naming what the folder has.
    """
    if model is None or is_shipped(model):
        name, _, precision = (model or DEFAULT).partition(":")
        if folder is None:
            folder = shipped_folder(name)
            if name == LITE and not (folder / _MODEL_JSON).exists():
                raise BadInput(f"{model}: the lite model is not shipped in this installation "
                               f"(no {folder / _MODEL_JSON}); use default or pass --model "
                               "FILE")
        return _pick(Path(folder), precision or None, prefer, name)
    path = Path(model)
    if path.is_dir():
        return _in_folder(path, prefer)
    head, colon, precision = str(model).rpartition(":")
    if colon and not path.exists() and (Path(head) / _MODEL_JSON).is_file():
        return _pick(Path(head), precision, prefer, head)
    return path


def default_model_path() -> Path:
    """The shipped default landmark model at its default precision (fp16, else fp32)."""
    return resolve_model(DEFAULT)


def _in_folder(folder: Path, prefer: tuple[str, ...]) -> Path:
    """The model of an export folder (model.json) or of a run folder (best.keras)."""
    if (folder / _MODEL_JSON).is_file():
        return _pick(folder, None, prefer, str(folder))
    if (folder / RUN_MODEL).is_file():
        return folder / RUN_MODEL
    raise BadInput(f"{folder}: no model in this folder (an export folder holds "
                   f"{_MODEL_JSON}, a training run's folder {RUN_MODEL}); it holds "
                   f"{listing(folder)}")


def listing(folder: Path) -> str:
    """What a folder holds, shortly: 'a, b, c and 4 more', or 'nothing' (for messages
    about a model that is not where the user said)."""
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    except OSError as err:
        return f"nothing readable ({err.strerror or err})"
    if not names:
        return "nothing"
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _pick(folder: Path, precision: str | None, prefer: tuple[str, ...], label: str) -> Path:
    """One file of a model folder: `precision`, else the first of `prefer` there.
    `label` is how the user named the folder (`default`, `lite` or its path)."""
    files = _shipped_files(folder, label)
    available = [p for p, name in files.items() if name and (folder / name).is_file()]
    have = ("it has " + ", ".join(f"{label}:{p}" for p in available) if available
            else "none of its files is there")
    if precision is None:
        for candidate in prefer:
            if candidate in available:
                return folder / str(files[candidate])
        wanted = " or ".join(f"{label}:{p}" for p in prefer)
        raise BadInput(f"{label}: the model in {folder} has no {wanted} ({have}); "
                       "pass --model FILE")
    if precision not in files:
        raise BadInput(f"{label}:{precision}: the model has no precision {precision!r}; {have}")
    if precision not in available:
        raise BadInput(f"{label}:{precision}: {folder / str(files[precision])} is missing; "
                       f"{have}")
    return folder / str(files[precision])


def _shipped_files(folder: Path, label: str = DEFAULT) -> dict[str, str | None]:
    """{precision: file name} as the folder's model.json records them."""
    card = folder / _MODEL_JSON
    try:
        files = json.loads(card.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict):
            raise TypeError(f'"files" is a {type(files).__name__}, not an object')
        return {str(p): entry.get("file") if isinstance(entry, dict) else None
                for p, entry in files.items()}
    except FileNotFoundError:
        if label not in SHIPPED:
            raise BadInput(f"{label}: no {_MODEL_JSON} in {folder}; it holds "
                           f"{listing(folder)}") from None
        raise BadInput(f"no {label} landmark model is shipped with this installation "
                       f"({card} is missing): pass --model FILE.tflite") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BadInput(f"{card}: unreadable model description: {err}") from None
