"""Model files shipped inside the package: BlazeFace and the default landmark model.

`face_detection_short_range.tflite` is MediaPipe's (Apache-2.0; see NOTICE). The default
landmark model is an export (`face-keypoints export`) copied into `default/`: its .tflite
files, the .keras they were converted from, and the model.json that names them all.

Wherever a model is asked for (`--model` of evaluate, benchmark, predict and export, and
the Python functions behind them), the string `default` means the shipped model at its
default precision and `default:PRECISION` one file of it (`resolve_model`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from face_keypoints.errors import BadInput

DEFAULT = "default"
DEFAULT_PRECISIONS = ("fp16", "fp32")  # fp16 first: half the size, the same points
KERAS = ("keras",)  # what `default` means where a .keras is needed (export)
_MODEL_JSON = "model.json"


def default_folder() -> Path:
    """The folder of the shipped default landmark model (default/ of this package)."""
    return Path(str(resources.files(__name__).joinpath(DEFAULT)))


def is_default(model: object) -> bool:
    """Whether `model` is a string naming the shipped model: `default` or `default:...`."""
    return isinstance(model, str) and (model == DEFAULT or model.startswith(f"{DEFAULT}:"))


def resolve_model(model: str | Path | None, prefer: tuple[str, ...] = DEFAULT_PRECISIONS,
                  folder: Path | None = None) -> Path:
    """The model file `model` names.

    None and the string `default` give the shipped model's first file of `prefer` that
    exists (fp16, then fp32); `default:fp32`, `default:fp16`, `default:int8` and
    `default:keras` give that one file. Any other string or a Path is a file path, taken
    as it is (a file really called `default` is reached as `./default`). `folder`
    replaces the shipped folder (a copy of it). An unknown precision or a missing file is
    a one-line BadInput naming what the folder has.
    """
    if model is not None and not is_default(model):
        return Path(model)
    folder = default_folder() if folder is None else Path(folder)
    files = _shipped_files(folder)
    available = [p for p, name in files.items() if name and (folder / name).is_file()]
    have = ("it has " + ", ".join(f"{DEFAULT}:{p}" for p in available) if available
            else "none of its files is there")
    precision = None if model in (None, DEFAULT) else str(model).partition(":")[2]
    if precision is None:
        for candidate in prefer:
            if candidate in available:
                return folder / files[candidate]
        wanted = " or ".join(f"{DEFAULT}:{p}" for p in prefer)
        raise BadInput(f"{DEFAULT}: the shipped model in {folder} has no {wanted} ({have}); "
                       "pass --model FILE")
    if precision not in files:
        raise BadInput(f"{model}: the shipped model has no precision {precision!r}; {have}")
    if precision not in available:
        raise BadInput(f"{model}: {folder / str(files[precision])} is missing; {have}")
    return folder / files[precision]


def default_model_path() -> Path:
    """The shipped default landmark model at its default precision (fp16, else fp32)."""
    return resolve_model(DEFAULT)


def _shipped_files(folder: Path) -> dict[str, str | None]:
    """{precision: file name} as the folder's model.json records them."""
    card = folder / _MODEL_JSON
    try:
        files = json.loads(card.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict):
            raise TypeError(f'"files" is a {type(files).__name__}, not an object')
        return {str(p): entry.get("file") if isinstance(entry, dict) else None
                for p, entry in files.items()}
    except FileNotFoundError:
        raise BadInput("no default landmark model is shipped with this installation "
                       f"({card} is missing): pass --model FILE.tflite") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BadInput(f"{card}: unreadable model description: {err}") from None
