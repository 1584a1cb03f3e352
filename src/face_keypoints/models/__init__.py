"""Model files shipped inside the package: BlazeFace and the default landmark model.

`face_detection_short_range.tflite` is MediaPipe's (Apache-2.0; see NOTICE). The default
landmark model is an export (`face-keypoints export`) copied into `default/`: its .tflite
files and the model.json that names them.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from face_keypoints.errors import BadInput

DEFAULT_PRECISIONS = ("fp16", "fp32")  # fp16 first: half the size, the same points


def default_model_path() -> Path:
    """The shipped default landmark model, as named by default/model.json."""
    folder = Path(str(resources.files(__name__).joinpath("default")))
    card = folder / "model.json"
    try:
        files = json.loads(card.read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        raise BadInput("no default landmark model is shipped with this installation "
                       f"({card} is missing): pass --model FILE.tflite") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BadInput(f"{card}: unreadable model description: {err}") from None
    for precision in DEFAULT_PRECISIONS:
        name = files.get(precision, {}).get("file") if isinstance(files, dict) else None
        if name and (folder / name).is_file():
            return folder / name
    raise BadInput(f"{card} names no {' or '.join(DEFAULT_PRECISIONS)} .tflite file that "
                   "exists beside it: pass --model FILE.tflite")
