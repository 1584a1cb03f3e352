"""Build step of the package: the wheel (and the sdist) carry the LiteRT.js files that
the page of `serve` loads, fetched by `npm ci` from the committed lockfile when the
package is built, so an installed package needs neither npm nor node_modules
(src/face_keypoints/litert_files.py says which files). An editable install is left to
`npm ci --prefix src/face_keypoints/web`, as a source checkout serves from node_modules.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
WEB = Path("src") / "face_keypoints" / "web"


def _litert_files():
    spec = importlib.util.spec_from_file_location(
        "litert_files", HERE / "src" / "face_keypoints" / "litert_files.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and the like look a module up by name
    spec.loader.exec_module(module)
    return module


def _bundle(destination: Path) -> None:
    litert = _litert_files()
    try:
        litert.build(HERE / WEB, destination)
    except litert.LiteRtMissing as err:
        sys.exit(f"error: {err}")


class BuildPy(build_py):
    """build_py, then LiteRT.js's files into the built package's web/litert/."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            _bundle(Path(self.build_lib) / "face_keypoints" / "web" / "litert")


class Sdist(sdist):
    """sdist with LiteRT.js's files in src/face_keypoints/web/litert/, so a wheel built
    from it needs no npm."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        _bundle(Path(base_dir) / WEB / "litert")


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
