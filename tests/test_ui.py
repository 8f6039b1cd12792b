"""Building the app (app/ui.py, app.py): importing it has no side effects; the Gradio-free modules stay so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

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


def test_importing_the_app_has_no_side_effects(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # its own temp folder: other processes cannot disturb the count
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]


def test_explanation_and_views_are_gradio_free() -> None:
    done = subprocess.run([sys.executable, "-c", GRADIO_FREE], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
