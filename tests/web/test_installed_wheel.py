"""The package as a user installs it: the wheel built from this checkout, installed into a
fresh venv outside the source tree (no npm, no node_modules there), serves a page that
finds a face on a photo in Chromium.

Building the wheel runs setup.py's step that fetches LiteRT.js with `npm ci` on the
committed lockfile, so this needs npm here; it skips saying so without it (fails in CI).
The venv takes the package from the wheel alone; its dependencies (numpy, LiteRT, ...)
are this interpreter's, through a .pth line, as installing them again would only test pip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from browser import CHROMIUM, in_ci, launch, open_page, photo_result
from conftest import REPO

ASTRONAUT = REPO / "examples" / "astronaut.jpg"
BUILD_SECONDS = 600


def _skip_or_fail(reason: str) -> None:
    if in_ci():
        pytest.fail(f"the installed-wheel test must run in CI: {reason}")
    pytest.skip(reason)


def _checkout_files() -> list[str]:
    """The files of this checkout that a clone has (committed or not yet, never ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=REPO, capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0")
            if name and (REPO / name).is_file()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a venv holding the wheel built from a clean copy of this checkout."""
    for tool, why in (("npm", "building the wheel fetches LiteRT.js with npm"),
                      ("git", "the files of the checkout are listed by git")):
        if shutil.which(tool) is None:
            _skip_or_fail(f"{tool} is not installed: {why}")
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    for name in _checkout_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    assert not (source / "src/face_keypoints/web/node_modules").exists()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(root / "dist"), str(source)],
                   check=True, capture_output=True, timeout=BUILD_SECONDS)
    (wheel,) = (root / "dist").glob("face_keypoints-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    site = Path(subprocess.run([venv / "bin" / "python", "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "dependencies.pth").write_text("\n".join(sorted(ours)) + "\n", encoding="utf-8")
    shutil.rmtree(source)  # nothing of the checkout is left to fall back on
    return venv / "bin"


def test_the_installed_wheel_serves_a_page_that_finds_a_face(installed: Path,
                                                             tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        _skip_or_fail(f"Chromium is not installed ({CHROMIUM})")
    pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    from playwright.sync_api import sync_playwright

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    where = subprocess.run([installed / "python", "-c",
                            "import face_keypoints; print(face_keypoints.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    package = Path(where.stdout.strip()).parent
    assert package.is_relative_to(installed.parent), package
    assert not (package / "web" / "node_modules").exists()
    process = subprocess.Popen([installed / "face-keypoints", "serve", "--host", "127.0.0.1",
                                "--port", "0"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        assert first.startswith("serving model default ("), first + process.stderr.read()
        url = process.stdout.readline().split()[0]
        with sync_playwright() as playwright:
            chromium = launch(playwright)
            try:
                page = open_page(chromium, url, "wasm")
                record = photo_result(page, ASTRONAUT)
            finally:
                chromium.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert record["image"] == ASTRONAUT.name and len(record["faces"]) == 1
    assert len(record["faces"][0]["points"]) == 68
