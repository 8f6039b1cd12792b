"""The page (app/page.py) as its Gradio config shows it: the layout, each event's inputs in their entrance's order, the
defaults, one dependency per control update, nothing costly on the slider path."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import cam_core
from app.inputs import CONTROL_FIELDS, CRF, DEFAULT_PRESET, DEFAULT_RESOLUTION, DRAG, RESOLUTIONS, VIEW, Controls
from app.tabs import crf as crf_tab
from cam_core.crf import CrfParams
from tests.helpers import config_component


def _field(component: dict[str, Any]) -> str:
    """The entrance field a component feeds, from its elem_id (or the CRF slider's label)."""
    props = component["props"]
    if component["type"] == "state":
        return "session" if props.get("value") is None else f"state:{props.get('value')}"
    by_id = {"class-pick": "class_choice", "gt-box": "gt_text", **{n.replace("_", "-"): n for n in CONTROL_FIELDS}}
    by_label = {spec[3]: name for name, spec in crf_tab.CRF_SLIDERS.items()}
    return by_id.get(props.get("elem_id") or "", by_label.get(props.get("label") or "", "?"))


def test_controls_sit_in_a_sticky_bar_above_the_tabs(config: dict[str, Any], app_module: Any) -> None:
    """Item 14: the preset, toggles and sliders are laid out before the tabs, inside ``#control-bar``."""
    bar = config_component(config, "control-bar")["id"]
    tabs = next(c["id"] for c in config["components"] if c["type"] == "tabs")

    def path(node: dict, target: int, trail: tuple[int, ...] = ()) -> tuple[int, ...] | None:
        if node["id"] == target:
            return (*trail, node["id"])
        for child in node.get("children", []):
            found = path(child, target, (*trail, node["id"]))
            if found:
                return found
        return None

    order = []  # depth-first order of the layout tree
    stack = [config["layout"]]
    while stack:
        node = stack.pop()
        order.append(node["id"])
        stack.extend(reversed(node.get("children", [])))
    for elem_id in ("preset", "tap", "nwc", "pas", "theta-mas", "theta-pas", "percentile", "notice"):
        component = config_component(config, elem_id)["id"]
        assert bar in (path(config["layout"], component) or ()), elem_id
    assert order.index(bar) < order.index(tabs)
    assert re.search(r"#control-bar\s*\{[^}]*position:\s*sticky", app_module.demo.css)


def test_the_views_redrawn_on_every_slider_move_skip_the_latex_scan(config: dict[str, Any]) -> None:
    """The caption and the notice are Markdown redrawn on every move; neither holds LaTeX, so the page is not
    asked to look for it (that cost ~7 ms per move in bench/bench_browser.py)."""
    for elem_id in ("caption", "notice"):
        assert config_component(config, elem_id)["props"]["latex_delimiters"] == [], elem_id


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
        follows = ("#seg-follow" in js) == (name != "method")  # the label maps are CAM's whatever the method
        assert follows and f'query.set("{name}"' in js and js.rstrip().endswith("return inputs;\n}"), name
        assert "catch (error)" in js
        chained = [d for d in dependencies if d.get("trigger_after") == update["id"]]  # only the rerun after a miss
        assert [(d["trigger_only_on_failure"], d["queue"]) for d in chained] == [(True, True)], name


def test_slider_events_stay_cheap_in_the_browser(config: dict[str, Any]) -> None:
    """Latency guard (structure, not timing): Gradio's browser code copies the props of every component that
    was ever an event output, on each status update; a 1000-choice class list among them cost a slider move
    ~100 ms in Chromium. And the slider-speed events run unqueued (one request, no status stream)."""
    components = {c["id"]: c for c in config["components"]}
    # browser-only (js) events do not touch the loading statuses, so only server events count
    outputs = {i for dep in config["dependencies"] if dep["backend_fn"] for i in dep["outputs"]}
    for i in outputs:
        assert len(components[i]["props"].get("choices") or []) <= 50, components[i]["props"].get("label")
    search = next(c for c in config["components"] if c["props"].get("elem_id") == "class-search")
    assert len(search["props"]["choices"]) == 1000 and search["id"] not in outputs
    sliders = [c["id"] for c in config["components"] if c["type"] == "slider"]
    theta_mas = next(i for i in sliders if components[i]["props"]["label"].startswith("θ for MaS"))
    updates = [
        dep
        for dep in config["dependencies"]
        if [theta_mas, "change"] in map(list, dep["targets"]) and dep["backend_fn"]
    ]  # fmt: skip  (the deep link's URL writer is browser-only)
    # one request per move: the main views' update; the Segmentation tab's check runs in its browser step (a
    # request only while that tab is open, when the main panels are hidden), and so does the URL writer
    (update,) = updates
    assert update["api_name"] == "update_theta_mas" and update["queue"] is False
    assert "#seg-follow" in update["js"] and "window.__camLink" in update["js"]
    index = config["dependencies"].index(update)
    # nothing chained but the queued rerun after a cache miss (issue #22: it runs only when the update failed)
    chained = [dep for dep in config["dependencies"] if dep.get("trigger_after") == index]
    assert [(dep["trigger_only_on_failure"], dep["queue"]) for dep in chained] == [(True, True)]
    follow = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "seg-follow")
    (live,) = [dep for dep in config["dependencies"] if [follow, "click"] in map(list, dep["targets"])]
    assert live["api_name"].startswith("segmentation_live") and live["queue"] is False
