"""Errors a user sees as one line (never a traceback), with the exit code they carry."""

from __future__ import annotations


class FaceKeypointsError(Exception):
    """A failure caused by input or settings: printed as one line, exits with `code`."""

    code = 2


class BadInput(FaceKeypointsError):
    """A file or argument that cannot be used as given."""

    code = 2


def located(path: object, message: str, line: int | None = None) -> str:
    """Format 'FILE[:LINE]: message', the shape of every per-item report."""
    where = f"{path}:{line}" if line else f"{path}"
    return f"{where}: {message}"
