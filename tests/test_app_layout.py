"""Issue #14 items 4, 12, 13, 14 in callbacks and the page config: the "why they coincide" line, the Why-TAP
reading and plot, the control bar, the legible histogram (the browser checks are in test_browser_layout.py)."""

from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace

import numpy as np
import pytest

import cam_core
from app import explanation, histogram, views
from app.models import tap_partner
from app.state import get_analysis
from app.tabs import compare, why_tap
from cam_core.tap import channel_stats
from tests.test_app_callbacks import cat_session, request  # noqa: F401 (cat_session is a fixture)
from tests.test_app_server import load_app_module

WHY = "Why the two boxes nearly coincide"


def test_coincidence_line_only_above_the_iou_limit(cat_session) -> None:  # noqa: F811
    """Item 4, callback: the line heads the caption when the boxes overlap at IoU > 0.8, and is absent below."""
    shown = 0
    for theta in (0.2, 0.6, 0.8):  # cat: IoU 0.91 at 0.2; a high MaS threshold shrinks only the blue box
        req = request(cat_session, "285", theta_mas=theta)
        out, ex = compare.render_localization(req), explanation.explain_request(req)
        iou = float(cam_core.box_iou(ex.plain.box, ex.ours.box)[0, 0])
        if iou > 0.8:
            shown += 1
            first = out.caption.split("\n\n")[0]
            assert first.startswith(f"**{WHY} (box IoU {iou:.2f} > 0.8):**")
            _, height, width = ex.ours_analysis.feature_maps.shape
            assert f"{height} × {width} cells for the whole photo" in first
            assert "off-the-shelf ImageNet classifier trained with GAP" in first  # the default model: GAP-trained
            assert "trained with TAP" in first and "another threshold" in first
            coarse = max(height, width) < views.COARSE_CELLS  # only a coarse map is blamed, and a finer one offered
            assert ("the map is coarse" in first) == coarse == ("finer analysis resolution" in first)
        else:
            assert WHY not in out.caption and out.caption.startswith("**Analysed at")  # the resolution line
    assert 0 < shown < 3  # both sides of the limit were seen


def test_coincidence_line_at_the_limit_and_with_a_tap_head(cat_session) -> None:  # noqa: F811
    """Item 4: exactly 0.8 is "not above"; with a TAP-trained head the line does not call the model off the shelf."""
    ex = explanation.explain_request(request(cat_session, "285"))
    assert views.coincidence_line(ex, 0.8) == "" and views.coincidence_line(ex, 0.7999) == ""
    assert views.coincidence_line(ex, 0.8001).startswith(f"**{WHY} (box IoU 0.8001 > 0.8):**")  # not "0.80 > 0.8"
    assert views.coincidence_line(ex, 0.8042).startswith(f"**{WHY} (box IoU 0.804 > 0.8):**")
    assert views.coincidence_line(ex, 0.93).startswith(f"**{WHY} (box IoU 0.93 > 0.8):**")
    coarse = dataclasses.replace(ex, ours_analysis=SimpleNamespace(feature_maps=np.zeros((4, 7, 7))))  # 224 px / 32
    line = views.coincidence_line(coarse, 0.9)
    assert "the map is coarse (7 × 7 cells for the whole photo) and comes from" in line
    assert "a finer analysis resolution (the Resolution menu: more map cells)" in line
    fine = dataclasses.replace(ex, ours_analysis=SimpleNamespace(feature_maps=np.zeros((4, 28, 28))))  # 448 / 16
    line = views.coincidence_line(fine, 0.9)
    assert "even at 28 × 28 cells for the whole photo, the map comes from" in line and "finer" not in line
    if tap_partner(cam_core.DEFAULT_MODEL) is None:
        pytest.skip("no TAP-trained partner is shipped for the default model")
    tap = explanation.explain_request(request(cat_session, "285", tap=True))
    assert "TAP" in tap.trained_with
    line = views.coincidence_line(tap, 0.95)
    assert "head alone was re-trained with TAP" in line and "off-the-shelf" not in line


@pytest.mark.parametrize(
    ("here", "after", "verdict", "change"),
    [
        (1.25, 1.00, "This photo supports the argument", "-20 %"),  # (1.00 - 1.25) / 1.25
        (0.80, 0.74, "This photo supports it only in part**: TAP training lowered", "-8 %"),  # -0.06 / 0.80 = -7.5
        (1.50, 1.80, "This photo supports it only in part**: under GAP the small-area channels do carry", "+20 %"),
        (0.50, 0.60, "This photo does not support it", "+20 %"),
    ],
)
def test_tap_ratio_reading(here: float, after: float, verdict: str, change: str) -> None:
    """Item 12: the summary number says what it measures, which way supports the paper, and this photo's verdict."""
    text = why_tap.tap_ratio_reading(here, after)
    assert "above 1: small-area channels weigh more" in text
    assert "predicts above 1 under GAP" in text and "lower after TAP training" in text
    assert f"({here:.2f} → {after:.2f}, {change})" in text and f"**{verdict}" in text


def test_p1_caption_reads_its_own_ratio(cat_session) -> None:  # noqa: F811
    """Item 12: the caption's two numbers are the hand-computed ratios, and its verdict is the one they give."""
    partner = tap_partner(cat_session.model)
    if partner is None or partner == cat_session.model:
        pytest.skip("no TAP-trained partner is shipped for the default model")
    *_, caption = why_tap.render_p1(cat_session, "285", 0.1, None)
    analysis = get_analysis(cat_session, cat_session.model)
    stats = channel_stats(analysis.feature_maps, analysis.class_weights[285], 0.1)
    small = np.zeros(stats.active_fraction.shape, bool)
    small[np.argsort(stats.active_fraction, kind="stable")[: stats.active_fraction.size // 4]] = True
    by_hand = [
        float(np.abs(w[small]).mean() / np.abs(w[~small]).mean())
        for w in (analysis.class_weights[285], get_analysis(cat_session, partner).class_weights[285])
    ]
    found = re.search(r"relative to the rest: ([0-9.]+) here vs ([0-9.]+) after TAP training\. (.*)$", caption, re.S)
    assert found, caption
    assert [float(found.group(1)), float(found.group(2))] == pytest.approx(by_hand, abs=0.006)
    assert found.group(3) == why_tap.tap_ratio_reading(*by_hand)


def _component(config: dict, elem_id: str) -> dict:
    return next(c for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)


def test_controls_sit_in_a_sticky_bar_above_the_tabs() -> None:
    """Item 14: the preset, toggles and sliders are laid out before the tabs, inside ``#control-bar``."""
    demo = load_app_module().demo
    config = demo.get_config_file()
    bar = _component(config, "control-bar")["id"]
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
    for elem_id in ("preset", "tap", "nwc", "pas", "theta-mas", "theta-pas", "percentile", "tau", "notice"):
        component = _component(config, elem_id)["id"]
        assert bar in (path(config["layout"], component) or ()), elem_id
    assert order.index(bar) < order.index(tabs)
    assert re.search(r"#control-bar\s*\{[^}]*position:\s*sticky", demo.css)


def test_the_views_redrawn_on_every_slider_move_skip_the_latex_scan() -> None:
    """The caption and the notice are Markdown redrawn on every move; neither holds LaTeX, so the page is not
    asked to look for it (that cost ~7 ms per move in bench/bench_browser.py)."""
    config = load_app_module().demo.get_config_file()
    for elem_id in ("caption", "notice"):
        assert _component(config, elem_id)["props"]["latex_delimiters"] == [], elem_id


def test_why_tap_plot_has_no_badge_or_toolbar_over_its_titles() -> None:
    """Item 12: the label badge and the toolbar covered the two plot titles."""
    props = _component(load_app_module().demo.get_config_file(), "p1-plot")["props"]
    assert props["show_label"] is False and not props.get("buttons")


def test_histogram_text_is_legible_on_a_phone() -> None:
    """Item 13: the histogram's axis text stays >= 10 CSS px when the 640 px picture is shown ~300 px wide."""
    width = histogram.SIZE[0]
    assert histogram.FONT_PX * 300 / width >= 10
    base = histogram.histogram_base(np.linspace(0, 1, 10_000).reshape(100, 100), np.ones((100, 100)) * 0.5)
    assert base.picture.shape == (histogram.SIZE[1], histogram.SIZE[0], 3)
    assert 0 < base.x0_px < base.x1_px <= width and 0 < base.top_px < base.bottom_px < histogram.SIZE[1]
