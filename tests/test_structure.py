"""The code's shape, checked so that it stays as the developers' guide asks: data flows one
way (no module imports one that imports it back, at any depth), functions stay short, one
module owns model.json."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "face_keypoints"
MAX_FUNCTION_LINES = 80
MAX_TRAIN_LINES = 400


def _modules() -> dict[str, Path]:
    """{dotted name: file} of every module of the package."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = ("face_keypoints", *path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `path` imports, at the top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def _unit(module: str) -> str:
    """The floor a module belongs to: a subpackage (data, export, model, runtime) as a
    whole, or a top-level module on its own."""
    return ".".join(module.split(".")[:2])


def test_no_module_imports_one_that_imports_it_back():
    """Every import runs down the floors: the import graph of the top-level modules and
    subpackages has no cycle (export/tflite.py importing benchmark.py, which imports export/,
    is one). The package's __init__, the API's lazy front door, is left out: it sits on
    top of everything it exposes."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name == "face_keypoints":
            continue
        targets = {_unit(m) for m in _imports(path, modules) if m != "face_keypoints"}
        graph.setdefault(_unit(name), set()).update(targets - {_unit(name)})
    state: dict[str, int] = {}
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph.get(name, ())):
            if state.get(other) == 1:
                cycles.append(" -> ".join([*trail[trail.index(other):], other]))
            elif other not in state:
                visit(other, [*trail, other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "imports that run back up:\n" + "\n".join(cycles)


def test_no_function_is_longer_than_80_lines():
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, "\n".join(long)


def test_train_py_stays_under_400_lines():
    lines = len((SRC / "train.py").read_text(encoding="utf-8").splitlines())
    assert lines < MAX_TRAIN_LINES, f"train.py has {lines} lines"


def test_only_the_card_module_names_model_json():
    """model.json is read and written by card.ModelCard alone; others use its MODEL_JSON."""
    named = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value == "model.json":
                named.append(name)
    assert named == ["face_keypoints.card"]


def test_every_readme_section_a_comment_names_exists():
    """`README, "SECTION"` in a config or a source file names a heading the README has."""
    repo = SRC.parent.parent
    headings = {line.lstrip("#").strip().split(":")[0].strip()
                for line in (repo / "README.md").read_text(encoding="utf-8").splitlines()
                if line.startswith("##")}
    missing = []
    for path in [*(repo / "configs").glob("*.yaml"), *SRC.rglob("*.py")]:
        for name in re.findall(r'README, "([^"]+)"', path.read_text(encoding="utf-8")):
            if name not in headings:
                missing.append(f"{path.relative_to(repo)}: {name}")
    assert not missing, "\n".join(missing)
