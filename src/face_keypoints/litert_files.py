"""The LiteRT.js files the page of `serve` loads, and where they come from.

One list for both users of it: the wheel's build step (setup.py, which loads this file by
path, before the package or its dependencies exist) copies these files out of
`npm ci`'s node_modules into the package (web/litert/), so an installed package serves
the page without npm; `serve` in a source checkout finds them in web/node_modules. Only
the standard library is imported here.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

SCOPE = "@litertjs"  # the npm scope of the packages; web/litert/ mirrors its folders
BUNDLED = "litert"  # web/litert/: the copy inside a built package
# What the page fetches (the loader picks one of the WASM builds by browser features),
# and each package.json, which names the package's version and licence.
PATTERNS = ("core/package.json", "core/dist/index.js", "core/wasm/*.js", "core/wasm/*.wasm",
            "wasm-utils/package.json", "wasm-utils/dist/index.js")
REQUIRED = ("core/dist/index.js", "core/wasm/litert_wasm_internal.wasm",
            "wasm-utils/dist/index.js")
NPM_TIMEOUT = 600  # seconds for `npm ci`; its cache makes it a few


class LiteRtMissing(Exception):
    """The LiteRT.js files are nowhere; the message is the one line that says what to do."""


def complete(folder: Path) -> bool:
    """Whether `folder` (web/litert or node_modules/@litertjs) holds every required file."""
    return all((folder / name).is_file() for name in REQUIRED)


def find(web: Path) -> Path:
    """The folder the page's LiteRT.js files are served from: the copy a built package
    carries, else a source checkout's node_modules; LiteRtMissing when neither is
    complete."""
    for folder in (web / BUNDLED, web / "node_modules" / SCOPE):
        if complete(folder):
            return folder
    raise LiteRtMissing(f"{web / 'node_modules' / SCOPE / REQUIRED[0]} is missing: the "
                        "page's LiteRT.js packages are not installed; run "
                        f"`npm ci --prefix {web}` (needs Node.js and npm) and serve again")


def copy(source: Path, destination: Path) -> list[Path]:
    """Copy the files of PATTERNS from `source` (a folder laid out as node_modules/@litertjs)
    into `destination`; returns the files written."""
    written = []
    for pattern in PATTERNS:
        matches = sorted(source.glob(pattern))
        if not matches:
            raise LiteRtMissing(f"{source / pattern}: no such file in LiteRT.js's packages")
        for path in matches:
            target = destination / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            written.append(target)
    return written


def build(web: Path, destination: Path) -> list[Path]:
    """Put the page's LiteRT.js files into `destination` for a package: from web/litert
    when it is already there (an sdist made by this build), else from `npm ci` run on the
    committed lockfile in a scratch folder (a developer's node_modules is not trusted to
    match it). LiteRtMissing, in one line, when npm is needed and absent or fails."""
    if complete(web / BUNDLED):
        return copy(web / BUNDLED, destination)
    npm = shutil.which("npm")
    if npm is None:
        raise LiteRtMissing("building face-keypoints needs npm (Node.js) to fetch the page's "
                            f"LiteRT.js files from {web / 'package-lock.json'}, and no "
                            "prebuilt copy is in the source (build from an sdist, which "
                            "carries one, or install npm)")
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(web / name, Path(scratch) / name)
        try:
            subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                           cwd=scratch, check=True, capture_output=True, text=True,
                           timeout=NPM_TIMEOUT)
        except subprocess.CalledProcessError as err:
            last = (err.stderr or err.stdout or "").strip().splitlines()[-1:] or ["no output"]
            raise LiteRtMissing(f"`npm ci` on {web / 'package-lock.json'} failed: "
                                f"{last[0]}") from None
        except subprocess.TimeoutExpired:
            raise LiteRtMissing(f"`npm ci` on {web / 'package-lock.json'} took more than "
                                f"{NPM_TIMEOUT} s") from None
        return copy(Path(scratch) / "node_modules" / SCOPE, destination)
