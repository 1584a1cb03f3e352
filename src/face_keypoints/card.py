"""model.json, the card an export writes beside its files: the one module that reads and
writes it.

A card tells a runtime what the flatbuffer cannot: the input size and range, which output
is which landmark scheme, the file of each precision (with its sha256 and size), and the
file a CPU should run (`cpu`, measured by export/tflite.record_cpu_precision). Every verb
that loads an export goes through `ModelCard`, so a damaged card is reported in the same
line wherever it is met.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from face_keypoints.errors import BadInput
from face_keypoints.fileio import write_json_atomic

MODEL_JSON = "model.json"
FORMAT_VERSION = 1
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

    @cached_property
    def outputs(self) -> dict[str, int]:
        """{scheme: number of points}, in the order of the model's heads."""
        outputs = {str(o["scheme"]): int(o["num_points"]) for o in self.data["outputs"]}
        if not outputs or not all(outputs) or min(outputs.values()) < 1:
            raise ValueError("no outputs")
        return outputs

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

    @property
    def cpu_precision(self) -> str | None:
        """The precision the export measured fastest on a CPU within the tolerance of fp32's
        NME, or None when it has no such record (or picked the .keras)."""
        cpu = self.data.get("cpu")
        pick = cpu.get("precision") if isinstance(cpu, dict) else None
        return pick if isinstance(pick, str) and pick != "keras" else None

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
