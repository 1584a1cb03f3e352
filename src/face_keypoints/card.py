"""model.json, the card an export writes beside its files: the one module that reads and
writes it.

A card tells a runtime what the flatbuffer cannot: the input size and range, which output
is which landmark scheme, the file of each precision (with its sha256 and size), and the
NME of each file on the export's validation faces with the latency measured there (`cpu`,
written by export/tflite.record_cpu_precision; which files a CPU may run is read from its
NMEs, which one is fastest is measured where the model runs, runtime/cpu_precision.py), and
the extra outputs beside the points (a face-presence score, per-point visibility). Every verb
that loads an export goes through `ModelCard`, so a damaged card is reported in the same
line wherever it is met.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from face_keypoints.data.targets import PRESENCE, visible_name
from face_keypoints.errors import BadInput
from face_keypoints.fileio import write_json_atomic
from face_keypoints.model.heads import output_name

MODEL_JSON = "model.json"
FORMAT_VERSION = 1
POINTS_PREFIX = output_name("")  # a scheme's (2K,) points output: points_<scheme>
VISIBLE_PREFIX = visible_name("")  # a scheme's (K,) probabilities that each point is seen
CPU_TOLERANCE = 0.01  # a file whose NME is within 1 % of fp32's may run instead of it


def within_tolerance(nme: dict[str, float | None]) -> list[str]:
    """The precisions of `nme` ({precision: NME}) within CPU_TOLERANCE of fp32's (fp32
    itself always is); none without a finite NME for fp32."""
    reference = nme.get("fp32")
    if reference is None or not math.isfinite(reference):
        return []
    return [p for p, value in nme.items() if value is not None and math.isfinite(value)
            and value <= reference * (1.0 + CPU_TOLERANCE)]
PRECISIONS = ("fp32", "fp16", "int8")  # the .tflite files an export can write


@dataclass(frozen=True)
class ModelCard:
    """The parsed model.json of the export folder `folder`; `data` is the JSON object."""

    folder: Path
    data: dict

    @property
    def path(self) -> Path:
        return self.folder / MODEL_JSON

    @classmethod
    def exists(cls, folder: Path) -> bool:
        return (Path(folder) / MODEL_JSON).is_file()

    @classmethod
    def read(cls, folder: Path) -> ModelCard:
        """The card of `folder`; BadInput (one line naming model.json) when it is missing,
        unreadable, or lacks the input size, the outputs or the files."""
        path = Path(folder) / MODEL_JSON
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            card = cls(Path(folder), data)
            card.input_size  # noqa: B018 - checked now, so a bad card fails where it is read
            card.outputs  # noqa: B018
            card.files  # noqa: B018
        except FileNotFoundError:
            raise BadInput(f"{path}: missing; a .tflite needs the model.json written beside "
                           "it by export") from None
        except (OSError, ValueError, KeyError, TypeError) as err:
            text = str(err).strip() or type(err).__name__
            raise BadInput(f"{path}: unreadable model description: "
                           f"{text.splitlines()[0]}") from None
        return card

    @classmethod
    def find(cls, folder: Path) -> ModelCard | None:
        """The card of `folder`, or None when it has none or an unreadable one (whatever
        loads the model from there reports that, with `read`)."""
        try:
            return cls.read(folder)
        except BadInput:
            return None

    @classmethod
    def write(cls, folder: Path, data: dict) -> ModelCard:
        """Write `data` as `folder`'s model.json (atomically) and return its card."""
        card = cls(Path(folder), data)
        write_json_atomic(card.path, data)
        return card

    @property
    def input_size(self) -> int:
        return int(self.data["input"]["size"])

    @property
    def aligned(self) -> bool:
        """Whether the model was trained on crops turned to level the eyes (`input.crop.
        align`, written by export for a run with `align: true`): it must be run on crops
        turned by the face's roll. Cards written before it are upright."""
        crop = self.data["input"].get("crop")
        return isinstance(crop, dict) and crop.get("align") is True

    @cached_property
    def outputs(self) -> dict[str, int]:
        """{scheme: number of points} of the points outputs, in the order of the model's
        heads (entries without a "kind" are points: cards written before the others)."""
        outputs = {str(o["scheme"]): int(o["num_points"]) for o in self.data["outputs"]
                   if o.get("kind", "points") == "points"}
        if not outputs or not all(outputs) or min(outputs.values()) < 1:
            raise ValueError("no outputs")
        return outputs

    @property
    def has_presence(self) -> bool:
        """Whether the model has a face-presence output (older exports do not)."""
        return any(o.get("kind") == PRESENCE for o in self.data["outputs"])

    @property
    def visible(self) -> dict[str, int]:
        """{scheme: number of points} of the per-point visibility outputs (none in older
        exports)."""
        return {str(o["scheme"]): int(o["num_points"]) for o in self.data["outputs"]
                if o.get("kind") == "visible"}

    @staticmethod
    def describe_outputs(names: list[str]) -> list[dict]:
        """The "outputs" entries of a model whose outputs are `names` (points_<scheme>,
        presence, visible_<scheme>): what a runtime reads each one as."""
        from face_keypoints.schemes import get_scheme

        entries: list[dict] = []
        for name in names:
            if name == PRESENCE:
                entries.append({"name": name, "kind": PRESENCE, "shape": [1, 1],
                                "layout": "probability that the crop frames a face as "
                                          "training does"})
                continue
            if not name.startswith((POINTS_PREFIX, VISIBLE_PREFIX)):
                continue  # a training-only tensor, not exported
            kind, scheme = (("points", name.removeprefix(POINTS_PREFIX))
                            if name.startswith(POINTS_PREFIX) else
                            ("visible", name.removeprefix(VISIBLE_PREFIX)))
            points = get_scheme(scheme)
            entry = {"name": name, "kind": kind, "scheme": scheme,
                     "num_points": points.num_points}
            if kind == "points":
                entry |= {"point_names": list(points.names),
                          "layout": "x0,y0,x1,y1,... normalised to the crop (pixel / input "
                                    "size)"}
            else:
                entry["layout"] = "probability that each point is seen, in point order"
            entries.append(entry)
        return entries

    @cached_property
    def files(self) -> dict[str, str | None]:
        """{precision or "keras": file name}; None where an entry names no file."""
        files = self.data["files"]
        if not isinstance(files, dict):
            raise TypeError(f'"files" is a {type(files).__name__}, not an object')
        return {str(p): entry.get("file") if isinstance(entry, dict) else None
                for p, entry in files.items()}

    def entry(self, precision: str) -> dict:
        """The files entry of `precision` (file, sha256, size_bytes, quantisation)."""
        entry = self.data["files"].get(precision)
        return entry if isinstance(entry, dict) else {}

    def own_files(self) -> dict[str, str]:
        """{precision: file name} of the entries that are plain names inside the folder:
        nothing else is known to be this export's (what an overwrite may remove)."""
        return {p: n for p, n in self.files.items()
                if isinstance(n, str) and n and Path(n).name == n}

    def file_for(self, precision: str) -> Path | None:
        """Where the file of `precision` is, or None when the card names none."""
        name = self.files.get(precision)
        return self.folder / name if name else None

    def precision_of(self, path: Path) -> str | None:
        """Which precision the card's file `path` is, or None when it names no such file."""
        if Path(path).parent.resolve() != self.folder.resolve():
            return None
        return next((p for p, name in self.files.items() if name == Path(path).name), None)

    def cpu_candidates(self) -> list[str]:
        """The precisions a CPU may run in place of fp32: those whose NME the export
        measured within CPU_TOLERANCE of fp32's (its "cpu" record), in the card's order;
        none when the card has no such record (an export without --val)."""
        cpu = self.data.get("cpu")
        files = cpu.get("files") if isinstance(cpu, dict) else None
        if not isinstance(files, dict):
            return []
        nme = {str(p): entry.get("nme_pct") for p, entry in files.items()
               if isinstance(entry, dict) and isinstance(entry.get("nme_pct"), int | float)}
        return [p for p in within_tolerance(nme) if p != "keras"]

    def check_file(self, path: Path) -> None:
        """BadInput when `path`, a file the card names, is not the file it describes (its
        sha256 differs): the files of an interrupted export, or one replaced by hand, are
        refused rather than run under a card that is not theirs."""
        precision = self.precision_of(path)
        digest = self.entry(precision).get("sha256") if precision else None
        if not isinstance(digest, str):
            return
        if sha256(path) != digest:
            raise BadInput(f"{path}: is not the file its {MODEL_JSON} describes (sha256 "
                           "differs): an export into this folder was interrupted or the file "
                           "was replaced; export again")

    def with_cpu(self, entry: dict) -> ModelCard:
        """The card with `entry` as its "cpu" record, written to disk."""
        return ModelCard.write(self.folder, {**self.data, "cpu": entry})


def sha256(path: Path) -> str:
    """The hex digest of a file, read in blocks (a .keras may be tens of megabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
