"""The README's commands stay runnable as written: each `face-keypoints` line of the
"Train your own: a first small run" section parses with the program's own parser, and every
local file it reads is where the line says (relative to the repository, ../shared beside
it)."""

from __future__ import annotations

import shlex

import pytest
from conftest import REPO, SHARED_DATA

from face_keypoints.cli import build_parser


def _section(title: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    body = text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]
    block = body.split("```\n", 2)[1]
    return [line for line in block.splitlines() if line.startswith("face-keypoints ")]


def test_the_first_small_run_commands_parse_and_chain():
    commands = _section("Train your own: a first small run")
    assert [shlex.split(c)[1] for c in commands] == ["prepare", "train", "evaluate",
                                                     "export", "predict"]
    parser = build_parser()
    written: set[str] = set()
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])
        for name in ("data", "val", "model"):  # what a step reads, an earlier one wrote
            value = getattr(args, name, None)
            for item in value if isinstance(value, list) else [value]:
                assert item is None or item in written, f"{command}: {item} is written by no step"
        written.add(args.output)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent")
def test_the_first_small_run_reads_files_that_exist():
    files = [token for command in _section("Train your own: a first small run")
             for token in shlex.split(command) if token.startswith(("../", "examples/"))]
    assert files, "the section names no local file"
    for token in files:
        assert (REPO / token).exists(), token
