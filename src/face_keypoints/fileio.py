"""Atomic file writes: a killed run leaves the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from face_keypoints.errors import BadInput


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary path beside `path`, then rename it into place.

    The temporary name keeps the suffix, for writers (Keras, matplotlib) that read it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; outputs are for everyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, data: object) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def check_writable_folder(folder: Path, option: str) -> None:
    """Create `folder` if needed and make sure a file can be written in it, so that work
    whose results go there fails before it starts rather than after (BadInput naming
    `option`, the setting that gave the folder)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{option} {folder}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise BadInput(f"{option} {folder}: cannot write there: {err.strerror or err}") \
            from None


@contextlib.contextmanager
def owned(output: Path) -> Iterator[None]:
    """Run the block as the one run writing `output`: an exclusive lock on the hidden
    `.NAME.lock` beside it, which the system releases when the run ends or is killed, so
    a lock is never left stale. A second run into the same output is refused in one line
    instead of mixing or deleting the first one's files."""
    output = Path(os.path.abspath(output))
    lock = output.with_name(f".{output.name}.lock")
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:  # a read-only or full disk: name the output, not the lock
            raise BadInput(f"{output}: cannot write there: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BadInput(f"{output}: another run is writing there now (it holds {lock}); "
                           "wait for it to end, or choose another output") from None
        try:  # the lock file the holder before us removed is not the one at `lock`
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)
