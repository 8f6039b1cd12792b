"""The app's structure as contracts: importing it does nothing, and (issue #12) its rooms keep their jobs."""

from __future__ import annotations

import subprocess
import sys

from tests.test_app_server import ROOT

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


def test_importing_the_app_has_no_side_effects() -> None:
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
