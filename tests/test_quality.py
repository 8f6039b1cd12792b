"""Lint and type checks run with the tests, so CI enforces them (style.md rule 10)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        [sys.executable, "-m", "mypy", "cam_core"],
        [sys.executable, "-m", "mypy", "app"],
    ],
    ids=["ruff-check", "ruff-format", "mypy", "mypy-app"],
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
