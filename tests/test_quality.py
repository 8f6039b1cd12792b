"""Lint and type checks run with the tests, so CI enforces them (style.md rule 10)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from typing import Any

import pytest

from app.inputs import CONTROL_FIELDS
from app.tabs import crf as crf_tab
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


IMPORT_EVERYTHING = """
import glob, sys, tempfile
import matplotlib
backend = dict.__getitem__(matplotlib.rcParams, "backend")
folders = set(glob.glob(tempfile.gettempdir() + "/cam-explainer-*"))
import app.ui, app.files
assert app.files._render_dir is None, "a render folder was created at import"
assert set(glob.glob(tempfile.gettempdir() + "/cam-explainer-*")) == folders, "a folder was created at import"
assert dict.__getitem__(matplotlib.rcParams, "backend") == backend, "the matplotlib backend was set at import"
assert "matplotlib.pyplot" not in sys.modules, "pyplot (global figure state) was imported"
"""


GRADIO_FREE = """
import sys
import app.explanation, app.views, app.inputs, app.checks, app.gt_boxes, app.resolutions
assert "gradio" not in sys.modules, "a Gradio-free module imported gradio"
"""


def _field(component: dict[str, Any]) -> str:
    """The entrance field a component feeds, from its elem_id (or the CRF slider's label)."""
    props = component["props"]
    if component["type"] == "state":
        return "session" if props.get("value") is None else f"state:{props.get('value')}"
    by_id = {"class-pick": "class_choice", "gt-box": "gt_text", **{n.replace("_", "-"): n for n in CONTROL_FIELDS}}
    by_label = {spec[3]: name for name, spec in crf_tab.CRF_SLIDERS.items()}
    return by_id.get(props.get("elem_id") or "", by_label.get(props.get("label") or "", "?"))


def test_no_function_in_the_app_is_long() -> None:
    long = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if node.end_lineno is not None and node.end_lineno - start + 1 > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.name} ({node.end_lineno - start + 1} lines)")
    assert not long, long
