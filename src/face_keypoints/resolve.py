"""What `--model` names, resolved once: the model file and the card (model.json) beside it.

The shipped files live in shipped/ beside this module: `face_detection_short_range.tflite`
is MediaPipe's (Apache-2.0; see shipped/NOTICE), and each shipped landmark model is an
export (`face-keypoints export`) copied into a folder of its own: `shipped/default/` (the
default model), `shipped/lite/` (a smaller, faster one) and `shipped/full/` (a larger,
more accurate one for photos), where this installation has them: its .tflite files, the
.keras they were converted from, and the model.json that names them all.

Wherever a model is asked for (`--model` of evaluate, benchmark, predict, export and
serve, and the Python functions behind them, FaceLandmarker included), `resolve_model`
turns what the user wrote into a `ResolvedModel`, which is passed down from there:
- `default`, `lite` or `full`: that shipped model at its default precision, and
  `default:PRECISION` (`lite:...`, `full:...`) one file of it;
- a folder: an export folder (it holds model.json) means its files as the shipped ones
  do (`FOLDER:PRECISION` picks one), a training run's folder (it holds best.keras) that
  model;
- anything else is a file path, taken as it is (a file really called `default` is
  reached as `./default`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from face_keypoints.card import MODEL_JSON, ModelCard
from face_keypoints.errors import BadInput

DEFAULT = "default"
LITE = "lite"
FULL = "full"
SHIPPED = (DEFAULT, LITE, FULL)
SHIPPED_FOLDER = "shipped"  # the package's folder of shipped model files
DEFAULT_PRECISIONS = ("fp16", "fp32")  # fp16 first: half the size, the same points
KERAS = ("keras",)  # what a model folder means where a .keras is needed (export)
RUN_MODEL = "best.keras"  # what train leaves in a run folder
RUN_CONFIG = "config.yaml"  # the recipe beside it (training/run_folder.CONFIG)
_LISTED = 8  # names of a folder's content shown in a "no model" message
Chooser = Callable[[ModelCard], "str | None"]  # a folder's card -> the precision to run


@dataclass(frozen=True)
class ResolvedModel:
    """A model file, the card that names it (None for a file without one, such as a run's
    best.keras) and its precision by that card (`keras` for a .keras without a card)."""

    path: Path
    card: ModelCard | None
    named: str  # what the user wrote, for messages

    @property
    def precision(self) -> str | None:
        if self.card is not None:
            found = self.card.precision_of(self.path)
            if found is not None:
                return found
        return "keras" if self.path.suffix == ".keras" else None

    @property
    def aligned(self) -> bool:
        """Whether the model runs on crops turned to level the eyes: what its card says,
        else, for a run's .keras, its run's config.yaml (`align`); a file with neither
        was trained upright."""
        if self.card is not None:
            return self.card.aligned
        config = self.path.parent / RUN_CONFIG
        if self.path.suffix != ".keras" or not config.is_file():
            return False
        from face_keypoints.config import TrainConfig

        return TrainConfig.load(config).align


def shipped_folder(name: str = DEFAULT) -> Path:
    """The folder of a shipped landmark model (`default`, `lite` or `full`) here."""
    if name not in SHIPPED:
        raise BadInput(f"{name}: no shipped model of that name; choose {shipped_names()}")
    return shipped_file(name)


def shipped_names() -> str:
    """The shipped models' names for messages: "default, lite or full"."""
    return f"{', '.join(SHIPPED[:-1])} or {SHIPPED[-1]}"


def shipped_file(name: str) -> Path:
    """A file or folder of shipped/ in the installed package."""
    return Path(str(resources.files("face_keypoints").joinpath(SHIPPED_FOLDER, name)))


def default_folder() -> Path:
    """The folder of the shipped default landmark model (shipped/default/)."""
    return shipped_folder(DEFAULT)


def is_shipped(model: object) -> bool:
    """Whether `model` is a string naming a shipped model (`default`, `lite`, `full`),
    with or without `:PRECISION`."""
    return isinstance(model, str) and model.partition(":")[0] in SHIPPED


def is_default(model: object) -> bool:
    """Whether `model` is a string naming the shipped default model: `default` or
    `default:...`."""
    return isinstance(model, str) and model.partition(":")[0] == DEFAULT


def with_precision(model: str | Path | None, precision: str | None) -> str | Path | None:
    """`model` with `precision` (predict's --precision) as its `:PRECISION`, the same as
    writing MODEL:PRECISION; BadInput when `model` names another precision already or is
    one file (which has only its own)."""
    if precision is None:
        return model
    named = str(DEFAULT if model is None else model)
    head, colon, given = named.rpartition(":") if ":" in named else (named, "", "")
    if is_shipped(named) or Path(head).is_dir():
        if colon and given != precision:
            raise BadInput(f"--precision {precision}: --model {named} names {given} already")
        return f"{head}:{precision}"
    raise BadInput(f"--precision {precision}: --model {named} is one file; a precision "
                   f"picks a file of {shipped_names()} or an export folder")


def resolve_model(model: str | Path | ResolvedModel | None,
                  prefer: tuple[str, ...] = DEFAULT_PRECISIONS, folder: Path | None = None,
                  choose: Chooser | None = None) -> ResolvedModel:
    """The model file `model` names (see the module docstring), with its card.

    None means `default`. Without a precision, a model folder gives its first file of
    `prefer` that exists (fp16, then fp32); with `choose`, the precision it picks from
    the folder's card (runtime/cpu_precision.fastest: the file fastest on this CPU within
    1 % of fp32's NME), where it picks one. `folder` replaces the
    shipped folder (a copy of it). An unknown precision, a missing file or a folder
    without a model is a one-line BadInput naming what the folder has. A model already
    resolved is returned as it is.
    """
    if isinstance(model, ResolvedModel):
        return model
    named = str(DEFAULT if model is None else model)
    if model is None or is_shipped(model):
        name, _, precision = named.partition(":")
        if folder is None:
            folder = shipped_folder(name)
            if name != DEFAULT and not ModelCard.exists(folder):
                raise BadInput(f"{model}: the {name} model is not shipped in this "
                               f"installation (no {folder / MODEL_JSON}); use default or "
                               "pass --model FILE")
        return _pick(Path(folder), precision or None, prefer, name, choose)
    path = Path(model)
    if path.is_dir():
        return _in_folder(path, prefer, named, choose)
    head, colon, precision = named.rpartition(":")
    if colon and not path.exists() and ModelCard.exists(Path(head)):
        return _pick(Path(head), precision, prefer, head, choose)
    if not path.exists() and isinstance(model, str) and "/" not in named:
        _suggest_shipped(named)
    card = ModelCard.find(path.parent) if path.is_file() else None
    return ResolvedModel(path, card, named)


def _suggest_shipped(named: str) -> None:
    """BadInput when a name that is no file is close to a shipped model's (`defualt`)."""
    name, _, precision = named.partition(":")
    close = difflib.get_close_matches(name, SHIPPED, n=1, cutoff=0.6)
    if close:
        meant = close[0] + (f":{precision}" if precision else "")
        raise BadInput(f"{named}: no such model file; did you mean {meant}?")


def _in_folder(folder: Path, prefer: tuple[str, ...], named: str,
               choose: Chooser | None) -> ResolvedModel:
    """The model of an export folder (model.json) or of a run folder (best.keras)."""
    if ModelCard.exists(folder):
        return _pick(folder, None, prefer, str(folder), choose)
    if (folder / RUN_MODEL).is_file():
        return ResolvedModel(folder / RUN_MODEL, None, named)
    raise BadInput(f"{folder}: no model in this folder (an export folder holds "
                   f"{MODEL_JSON}, a training run's folder {RUN_MODEL}); it holds "
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


def _pick(folder: Path, precision: str | None, prefer: tuple[str, ...], label: str,
          choose: Chooser | None) -> ResolvedModel:
    """One file of a model folder: `precision`, else what `choose` picks from the card,
    else the first of `prefer` there. `label` is how the user named the folder
    (a shipped model's name or its path)."""
    card = _read_card(folder, label)
    named = label if precision is None else f"{label}:{precision}"
    files = card.files
    available = [p for p, name in files.items() if name and (folder / name).is_file()]
    have = ("it has " + ", ".join(f"{label}:{p}" for p in available) if available
            else "none of its files is there")
    if precision is None:
        pick = choose(card) if choose is not None else None
        for candidate in ((pick,) if pick else ()) + prefer:
            if candidate in available:
                return ResolvedModel(folder / str(files[candidate]), card, named)
        wanted = " or ".join(f"{label}:{p}" for p in prefer)
        raise BadInput(f"{label}: the model in {folder} has no {wanted} ({have}); "
                       "pass --model FILE")
    if precision not in files:
        raise BadInput(f"{label}:{precision}: the model has no precision {precision!r}; {have}")
    if precision not in available:
        raise BadInput(f"{label}:{precision}: {folder / str(files[precision])} is missing; "
                       f"{have}")
    return ResolvedModel(folder / str(files[precision]), card, named)


def _read_card(folder: Path, label: str) -> ModelCard:
    """The card of a model folder, with a message for a shipped model that is missing."""
    if not ModelCard.exists(folder):
        if label not in SHIPPED:
            raise BadInput(f"{label}: no {MODEL_JSON} in {folder}; it holds "
                           f"{listing(folder)}")
        raise BadInput(f"no {label} landmark model is shipped with this installation "
                       f"({folder / MODEL_JSON} is missing): pass --model FILE.tflite")
    return ModelCard.read(folder)
