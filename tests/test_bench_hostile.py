"""The hostile harness (issue #22, ``bench/bench_hostile.py``): its event discovery covers every dependency of a
config, an event added to a page is attacked with the worst input its components allow, and a smoke run of the
harness against ``python app.py`` completes with every figure of its report.

Memory and refusals are held to the budgets; the latencies to a margin of regression (a ratio of timings is noise
on a loaded machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import gradio as gr
import numpy as np
import pytest

from bench import bench_hostile
from bench.gradio_raw import RawClient
from bench.hostile_inputs import (
    MULTISELECT_MAX,
    Arsenal,
    Component,
    Event,
    discover,
    loads_a_download,
    worst_inputs,
    worst_value,
)
from bench.hostile_phases import Target, worst_phase
from tests.helpers import ROOT


def _small_page(calls: list[tuple[str, Any]]) -> gr.Blocks:
    """A photo event that starts a session, a dummy queued event and an instant one, and a browser-only step."""

    def new_photo(photo: np.ndarray | None) -> tuple[Any, ...]:
        calls.append(("new_photo", None if photo is None else photo.shape))
        return "analysed", gr.update(choices=["x", "y"], value="x")

    def dummy(session: str, amount: float, on: bool, menu: str, picked: list[str], note: str) -> str:
        calls.append(("dummy", (session, amount, on, menu, picked, note)))
        return "done"

    def instant(session: str, amount: float) -> str:
        calls.append(("instant", (session, amount)))
        return "ok"

    with gr.Blocks() as demo:
        photo = gr.Image(label="Photo")
        session = gr.State(None)
        amount = gr.Slider(2, 7, value=3, step=1, label="amount")
        on = gr.Checkbox(False, label="on")
        menu = gr.Dropdown(["a", "b", "c"], value="a", label="menu")
        picked = gr.Dropdown([], value=[], multiselect=True, label="picked")
        note = gr.Textbox("hello", label="note")
        out = gr.Textbox()
        photo.change(new_photo, photo, [session, picked], api_name="new_photo")
        gr.Button("go").click(dummy, [session, amount, on, menu, picked, note], out, api_name="dummy")
        amount.change(instant, [session, amount], out, queue=False, api_name="instant")
        out.change(None, None, None, js="() => 1")
    return demo


def test_discovery_covers_every_dependency_and_the_dummy_event_is_attacked(tmp_path: Path) -> None:
    calls: list[tuple[str, Any]] = []
    demo = _small_page(calls)
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    try:
        config = demo.get_config_file()
        found = discover(config)
        indices = {e.fn_index for e in found.events} | set(found.skipped)
        assert found.total == len(config["dependencies"]) == len(indices) == 4
        assert [e.name for e in found.events] == ["new_photo", "dummy", "instant"]
        assert list(found.skipped.values()) == ["no server function (a browser-only js step)"]
        components = [Component(c["id"], c["type"], c.get("props", {})) for c in config["components"]]
        dummy = found.events[1]
        values, event_data = worst_inputs(dummy, Arsenal(), components)
        assert values == [None, 7, True, "c", [], "hello"] and event_data is None  # slider at its maximum, ...

        picture = tmp_path / "big.png"
        cv2.imwrite(str(picture), np.full((64, 96, 3), 200, np.uint8))
        with RawClient(demo.local_url) as client:
            (payload,) = client.upload([picture])
        target = Target(demo.local_url, os.getpid(), found.events, components, timeout=60)
        rows = worst_phase(target, Arsenal(big_photo=payload), lambda row: None)
    finally:
        demo.close()
    assert [(r.name, r.status) for r in rows] == [("new_photo", "ok"), ("dummy", "ok"), ("instant", "ok")]
    assert ("new_photo", (64, 96, 3)) in calls  # the photo event ran first, on the uploaded photo
    assert ("dummy", ("analysed", 7, True, "c", ["x", "y"], "hello")) in calls  # its session, the learnt choices
    assert ("instant", ("analysed", 7)) in calls
    assert all(r.wall_s >= 0 and r.cpu_s >= 0 and r.peak_mb_above_before >= 0 for r in rows)


def test_every_dependency_of_the_app_is_attacked_or_runs_no_server_code(config: dict[str, Any]) -> None:
    found = discover(config)
    assert len(found.events) + len(found.skipped) == len(config["dependencies"])
    for fn_index in found.skipped:  # skipped: only browser-only steps
        assert not config["dependencies"][fn_index]["backend_fn"]
    names = {e.name for e in found.events}
    assert {"on_image", "explain", "run_evaluation", "segmentation_zip", "render_crf", "restore_link"} <= names
    photo = [e.name for e in found.events if e.is_photo_event]
    assert (
        photo[0] == "on_image"
    )  # the session's first event (taken by the harness), run before those reading its state
    assert set(photo) <= {"on_image", "on_image_loaded"}  # the same handler, rerun when a model finishes loading


def test_worst_values_follow_the_component_types() -> None:
    model = Component(
        1,
        "dropdown",
        {
            "label": "Model",
            "value": "lite",
            "choices": [["Lite (offline)", "lite"], ["Big (downloads weights)", "big"]],
        },
    )
    resolution = Component(
        2,
        "dropdown",
        {"label": "Resolution", "value": "448/16", "choices": [["a", "224/32"], ["b", "512/16"], ["c", "448/16"]]},
    )
    floor = Component(3, "slider", {"label": "probability floor", "minimum": 0.0, "maximum": 0.5})
    size = Component(4, "number", {"label": "input_size (API input)", "value": 448})
    image = Component(5, "image", {})
    photos = Component(6, "file", {"file_count": "multiple"})
    csv = Component(7, "file", {"file_count": "single", "file_types": [".csv"]})
    arsenal = Arsenal(big_photo={"path": "big"}, eval_photos=[{"path": "e"}], boxes_csv={"path": "csv"})
    parts = [model, resolution, floor, size, image, photos, csv]
    assert [worst_value(c, arsenal, parts) for c in parts] == [
        "lite", "512/16", 0.0, 512, {"path": "big"}, [{"path": "e"}], {"path": "csv"}]  # fmt: skip
    assert worst_value(model, arsenal, parts, download=True) == "big"  # a hub model, for the slow-load attack
    switch = Event(9, "on_model", True, "input", (model,), (), False, trigger_id=1)
    assert loads_a_download(switch, parts)
    from app.label_maps import MAX_PICKED

    assert MULTISELECT_MAX == MAX_PICKED  # the harness asks for as many classes as the app takes


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """``python -m bench.bench_hostile --smoke --json F`` against ``python app.py`` (about 40 s): report, output."""
    report_path = tmp_path_factory.mktemp("hostile") / "hostile.json"
    done = subprocess.run([sys.executable, "-m", "bench.bench_hostile", "--smoke", "--json", str(report_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(report_path.read_text()), done.stdout


@pytest.mark.slow
def test_the_smoke_run_completes_and_reports_every_figure(smoke: tuple[dict[str, Any], str]) -> None:
    report, printed = smoke
    for key in bench_hostile.KEYS:
        assert key in report, key
    assert set(report["budgets"]) == set(bench_hostile.BUDGETS)
    discovery = report["discovery"]
    assert len(discovery["attacked"]) + len(discovery["skipped"]) == discovery["dependencies"] > 0
    assert len(report["events"]) >= len(discovery["attacked"])  # each attacked event has its row
    assert {"long_jobs", "join_flood", "unqueued_flood"} <= set(report["phases"])
    assert report["victim_idle"]["uploads"] >= 1 and report["sessions"]["sessions"] > 0
    assert report["probes"]["link"]["probes"] > 0 and "budgets" in printed
    # items 5 and 7 (this branch): no link probe renders markup, headers everywhere, monitoring off, one line each
    probes = report["probes"]
    assert (
        probes["link"]["unsafe"] == 0 and probes["headers"]["missing"] == {} and probes["monitoring"]["exposed"] == []
    )
    assert probes["refusal_log"]["max_lines"] <= 1 and report["render_dirs_left"] == 0


@pytest.mark.slow
def test_the_smoke_run_meets_the_budgets(smoke: tuple[dict[str, Any], str]) -> None:
    """Memory and refusals are held to the budgets; the two latency figures are held to a margin of regression
    (the code before issue #22: a 60 s upload, an 88x slider): on a loaded CI machine a latency ratio is noise, not
    behaviour (4.3x was seen with two benches running beside the suite; 2.5-3.1x idle)."""
    report, _ = smoke
    timing = {"victim_upload_p95_s": 10.0, "victim_slider_p95_ratio": 15.0}
    missed = {
        key: budget["value"]
        for key, budget in report["budgets"].items()
        if not (budget["ok"] or (key in timing and budget["value"] is not None and budget["value"] <= timing[key]))
    }
    assert missed == {}
