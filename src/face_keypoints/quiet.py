"""Stderr is for our own messages: the libraries' log lines only with --verbose.

TensorFlow, absl and LiteRT write from C++ straight to file descriptor 2, apart from
Python's logging: TensorFlow's oneDNN note and absl's "before InitializeLog" warning when
it is loaded (once per shared library), LiteRT's XNNPACK note for every interpreter.
TF_CPP_MIN_LOG_LEVEL does not stop the first two, so while a verb runs descriptor 2
points at /dev/null and Python's `sys.stderr` at a copy of the real one: our lines,
progress bars and tracebacks still reach the terminal, the native lines do not.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator

# Python loggers of the libraries, kept to errors unless verbose.
LIBRARY_LOGGERS = ("tensorflow", "absl", "keras", "h5py")

_verbose = False


def set_verbose(verbose: bool) -> None:
    """Let the libraries log (True) or keep their lines out of stderr (False, the
    default); call before TensorFlow is imported, which reads TF_CPP_MIN_LOG_LEVEL once."""
    global _verbose
    _verbose = verbose
    # A level the user set in the environment wins either way.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "3")
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.ERROR)


def is_verbose() -> bool:
    return _verbose


def _writes_to_fd2(stream: object) -> bool:
    try:
        return stream.fileno() == 2  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Inside the block, what native code writes to descriptor 2 is dropped, while
    `sys.stderr` keeps writing where it did; a no-op when verbose. Nests."""
    if _verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    replacement: io.TextIOWrapper | None = None
    if _writes_to_fd2(python_stderr):
        replacement = os.fdopen(os.dup(saved), "w", buffering=1,
                                encoding=getattr(python_stderr, "encoding", None) or "utf-8",
                                errors="backslashreplace")
        sys.stderr = replacement
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        if replacement is not None:
            replacement.flush()
            if sys.stderr is replacement:
                sys.stderr = python_stderr
            replacement.close()
        os.dup2(saved, 2)
        os.close(saved)
