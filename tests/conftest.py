"""Shared test helpers: where the fixtures and the real data live, and how to run the CLI.

The small real-data fixtures under tests/fixtures travel with the repository (see
tests/README.md). The bigger real data sets live beside the repository in
../shared/data on CI and developer machines; tests that need them skip, saying so,
when that folder is absent (a user's fresh clone).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    return SHARED_DATA.joinpath(*parts)


def needs_shared(*parts: str) -> pytest.MarkDecorator:
    """Skip unless ../shared/data/<parts> exists beside the repository."""
    path = shared_path(*parts)
    return pytest.mark.skipif(
        not path.exists(),
        reason=f"real data {path} is absent (the shared data folder sits beside the "
               "repository on CI and developer machines, not in a fresh clone)",
    )


def _missing_model() -> str | None:
    """Why the shipped default landmark model cannot be used, or None when it can."""
    from face_keypoints.errors import BadInput
    from face_keypoints.resolve import resolve_model

    try:
        resolve_model("default")
    except BadInput as err:
        return str(err)
    return None


_MISSING_MODEL = _missing_model()
needs_model = pytest.mark.skipif(
    _MISSING_MODEL is not None,
    reason=f"needs the shipped default landmark model: {_MISSING_MODEL}")


def tree_digest(root: Path) -> str:
    """A hash of every path, file mode and file content under `root`."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        digest.update(str(path.relative_to(root)).encode("utf-8", "surrogateescape"))
        digest.update(oct(stat.st_mode).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def skip_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("skipped ")]

    @property
    def last_line(self) -> str:
        lines = self.out.strip().splitlines()
        return lines[-1] if lines else ""


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run `face-keypoints ARGS` in this process; returns exit code, stdout, stderr."""
    from face_keypoints.cli import main

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse errors
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def copy_fixture(tmp_path: Path):
    """Copy tests/fixtures/<name> (or a shared data folder) into tmp_path, writable."""

    def copy(name: str | Path, dest: str | None = None) -> Path:
        source = Path(name) if Path(name).is_absolute() else FIXTURES / name
        target = tmp_path / "in" / (dest or source.name)
        shutil.copytree(source, target)
        for path in [target, *target.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return target

    return copy


def cli_command() -> list[str]:
    """The installed CLI as a subprocess command (same interpreter as the tests)."""
    return [sys.executable, "-m", "face_keypoints.cli"]


@pytest.fixture
def small_disk(tmp_path: Path):
    """make(size) mounts a tmpfs of `size` ("64k") in tmp_path and returns it: a disk to
    fill up, or to remount read-only. Needs root; the test skips where mount is refused.
    Everything mounted is unmounted afterwards."""
    mounted: list[Path] = []

    def make(size: str) -> Path:
        mount = tmp_path / f"disk{len(mounted)}"
        mount.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(mount)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()})")
        mounted.append(mount)
        return mount

    yield make
    for mount in reversed(mounted):
        subprocess.run(["umount", str(mount)], check=True)


def run_on_a_terminal(*args: object) -> tuple[int, str, str]:
    """The CLI in a subprocess whose stderr is a terminal (a pseudo-terminal), as a user at
    a shell has it: (exit code, stdout, what reached the terminal)."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    main, child = pty.openpty()
    # A real terminal has a size; tqdm draws nothing on a 0-column one.
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    done = subprocess.run([*cli_command(), *map(str, args)], stdout=subprocess.PIPE,
                          stderr=child, stdin=subprocess.DEVNULL, text=True, timeout=600)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the terminal's other side is closed and drained
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return done.returncode, done.stdout, b"".join(chunks).decode("utf-8", "replace")
