"""The app's structure as contracts: importing it does nothing, and (issue #12) its rooms keep their jobs."""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cam_core
from app.inputs import CONTROL_FIELDS, CRF, DEFAULT_PRESET, DEFAULT_RESOLUTION, DRAG, RESOLUTIONS, VIEW, Controls
from app.tabs import crf as crf_tab
from cam_core.crf import CrfParams
from tests.test_app_server import ROOT

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


def test_importing_the_app_has_no_side_effects(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # its own temp folder: other processes cannot disturb the count
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]


GRADIO_FREE = """
import sys
import app.explanation, app.views, app.inputs, app.checks, app.gt_boxes, app.resolutions
assert "gradio" not in sys.modules, "a Gradio-free module imported gradio"
"""


def test_explanation_and_views_are_gradio_free() -> None:
    done = subprocess.run([sys.executable, "-c", GRADIO_FREE], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_no_function_in_the_app_is_long() -> None:
    long = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if node.end_lineno is not None and node.end_lineno - start + 1 > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.name} ({node.end_lineno - start + 1} lines)")
    assert not long, long


def _field(component: dict[str, Any]) -> str:
    """The entrance field a component feeds, from its elem_id (or the CRF slider's label)."""
    props = component["props"]
    if component["type"] == "state":
        return "session" if props.get("value") is None else f"state:{props.get('value')}"
    by_id = {"class-pick": "class_choice", "gt-box": "gt_text", **{n.replace("_", "-"): n for n in CONTROL_FIELDS}}
    by_label = {spec[3]: name for name, spec in crf_tab.CRF_SLIDERS.items()}
    return by_id.get(props.get("elem_id") or "", by_label.get(props.get("label") or "", "?"))


def test_view_events_send_their_inputs_in_the_entrance_order(config: dict[str, Any]) -> None:
    """Every event adapted by :func:`app.events.event` sends exactly its entrances' fields, in their order."""
    components = {c["id"]: c for c in config["components"]}
    expected = {"render_linked": VIEW.fields, "render_photo": VIEW.fields, "swipe_pair": VIEW.fields,
                "export_views": VIEW.fields,
                "draw_gt": DRAG.fields, "render_crf": VIEW.fields + CRF.fields}  # fmt: skip
    checked = 0
    for dep in config["dependencies"]:
        name = re.sub(r"_\d+$", "", dep.get("api_name") or "")
        fields = VIEW.fields if name.startswith("update_") else expected.get(name)
        if fields is None:
            continue
        sent = [_field(components[i]) for i in dep["inputs"]]
        assert tuple(sent[: len(fields)]) == fields, (name, sent)
        checked += 1
    assert checked >= 17  # 6 controls, class, GT submit and clear, photo, model, search, 2 drags, swipe, zip, CRF
    assert VIEW.fields == ("session", "class_choice", *CONTROL_FIELDS, "gt_text")
    assert CRF.fields == tuple(f.name for f in dataclasses.fields(CrfParams) if f.name != "max_side")


def test_sliders_read_their_defaults(config: dict[str, Any]) -> None:
    values = {_field(c): c["props"].get("value") for c in config["components"]}
    start, crf = Controls(), CrfParams()
    for name in CONTROL_FIELDS:
        assert values[name] == getattr(start, name), name
    for name in CRF.fields:
        assert values[name] == getattr(crf, name), name
    assert cam_core.PRESETS[DEFAULT_PRESET].theta_mas == start.theta_mas
    resolution = next(c for c in config["components"] if c["props"].get("elem_id") == "resolution")
    assert resolution["props"]["value"] == DEFAULT_RESOLUTION.value == "448/16"
    assert [choice[1] for choice in resolution["props"]["choices"]] == [c.resolution.value for c in RESOLUTIONS]
    preset = next(c for c in config["components"] if c["props"].get("label") == "Preset")
    assert preset["props"]["value"] == DEFAULT_PRESET == "sharp (448 px)"


def test_a_control_update_is_one_dependency_with_its_browser_steps(config: dict[str, Any]) -> None:
    """A slider move is one Gradio dependency: the Segmentation tab's follow step and the URL writer run in the
    update's own ``js``, in the browser before its request (a chained step cost the page a round of Gradio's
    bookkeeping between the answer and the drawn box), and a failing step cannot stop the update."""
    dependencies = config["dependencies"]
    for name in CONTROL_FIELDS:
        update = next(d for d in dependencies if d.get("api_name") == f"update_{name}")
        js = update["js"]
        assert "#seg-follow" in js and f'query.set("{name}"' in js and js.rstrip().endswith("return inputs;\n}"), name
        assert "catch (error)" in js
        chained = [d for d in dependencies if d.get("trigger_after") == update["id"]]  # only the rerun after a miss
        assert [(d["trigger_only_on_failure"], d["queue"]) for d in chained] == [(True, True)], name
