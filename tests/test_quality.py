"""Lint and type checks run with the tests, so CI enforces them (style.md rule 10)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        [sys.executable, "-m", "mypy", "cam_core", "app"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_quality(command: list[str]) -> None:
    if command[0] == "ruff" and shutil.which("ruff") is None:
        pytest.skip("ruff is not installed (pip install -r requirements-dev.txt)")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_library_never_imports_the_app_or_gradio() -> None:
    for path in (ROOT / "cam_core").rglob("*.py"):
        text = path.read_text()
        for banned in ("import gradio", "from gradio", "from app", "import app", "matplotlib"):
            assert banned not in text, f"{path.name} must not use {banned!r}"


MAX_FUNCTION_LINES = 60


def test_no_function_in_the_app_is_long() -> None:
    long = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if node.end_lineno is not None and node.end_lineno - start + 1 > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.name} ({node.end_lineno - start + 1} lines)")
    assert not long, long
