"""Plain vs improved (app/tabs/compare.py): the views' update, the drag, on the real default model and the cat."""

from __future__ import annotations

import base64
import io
import re
from html import unescape

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import cam_core
from app import (
    explanation,
    histogram,
    html_views,
    render,
    views,
)
from app.errors import with_notice
from app.events import event
from app.inputs import VIEW
from app.state import ANALYSES, Session
from app.tabs import compare
from tests.helpers import panel_picture, svg_boxes, view_request

CONTROLS = (0.2, 0.35, 90, False, True, True, "cam")  # theta_mas, theta_pas, percentile, tap, nwc, pas, method


RAW_RENDER = event(compare.render_localization, VIEW)


def test_slider_update_moves_boxes_without_forward(cat_session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_forward(*args: object, **kwargs: object) -> None:
        raise AssertionError("a slider update must not run the network")

    monkeypatch.setattr(cam_core, "analyze", no_forward)
    low = compare.render_localization(view_request(cat_session, "285", theta_mas=0.1))
    high = compare.render_localization(view_request(cat_session, "285", theta_mas=0.6))
    box_low, box_high = np.array(low.payload["plain"]["box"]), np.array(high.payload["plain"]["box"])
    area = lambda b: (b[2] - b[0] + 1) * (b[3] - b[1] + 1)  # noqa: E731
    assert area(box_high) < area(box_low)
    assert low.payload["plain"]["foreground_fraction"] > high.payload["plain"]["foreground_fraction"]
    assert low.payload["ours"]["box"] == high.payload["ours"]["box"]  # PaS panel ignores theta_mas
    assert svg_boxes(low.plain) != svg_boxes(high.plain) and svg_boxes(low.ours) == svg_boxes(high.ours)
    assert panel_picture(low.plain).size == (451, 300)  # the heatmap picture is reused, only the SVG changes
    assert re.findall(r'src="(gradio_api[^"]+)"', low.plain) == re.findall(r'src="(gradio_api[^"]+)"', high.plain)
    assert low.histogram != high.histogram and "data-value" in low.histogram  # histogram lines moved
    assert low.masks.count("data:image/png;base64") == 1  # one picture of both masks, drawn by three cells


def test_histogram_shows_what_belongs_to_which_map(cat_session: Session) -> None:
    """Issue #14 item 11: both maps' histograms, each panel's threshold, only the lines of rules that are on."""
    on = compare.render_localization(view_request(cat_session, "285", theta_mas=0.3))
    off = compare.render_localization(view_request(cat_session, "285", theta_mas=0.3, pas=False))
    values = lambda html: [float(v) for v in re.findall(r'class="threshold" data-value="([0-9.]+)"', html)]  # noqa: E731
    legend = lambda html: unescape(re.search(r"class=\"cam-legend\".*", html).group(0))  # type: ignore[union-attr]  # noqa: E731
    assert values(on.histogram) == pytest.approx(
        [on.payload["plain"]["threshold"], on.payload["ours"]["percentile_value"], on.payload["ours"]["threshold"]],
        abs=1e-4,
    )
    assert values(off.histogram) == pytest.approx([0.3, 0.3], abs=2 / 255)  # each panel's MaS line, P_p gone
    assert "P90" not in legend(off.histogram) and "PaS" not in legend(off.histogram)
    assert "P90" in legend(on.histogram) and "PaS θ·P90" in legend(on.histogram)
    for html, name in ((on.histogram, "NWC+PaS"), (off.histogram, "NWC")):
        assert "plain CAM's map (outline)" in legend(html) and f"{name}'s map (bars)" in legend(html)
    widths = re.findall(r'class="threshold"[^>]*stroke-width="([0-9.]+)"', off.histogram)
    assert float(widths[0]) > float(widths[1])  # the blue line stays visible under the green one on top of it
    picture = np.asarray(panel_picture(on.histogram).convert("RGB")).reshape(-1, 3)
    for colour in (histogram.PLAIN_STEP, histogram.OURS_BAR):  # both maps are drawn
        assert (np.abs(picture.astype(int) - colour).sum(axis=1) == 0).sum() > 100


def test_gain_loss_view_follows_the_sliders(cat_session: Session) -> None:
    """Issue #14 item 1: pixels the improved rule adds to plain CAM's foreground and drops, both boxes, mask IoU."""
    for theta in (0.2, 0.6):
        req = view_request(cat_session, "285", theta_mas=theta)
        out, ex = compare.render_localization(req), explanation.explain_request(req)
        plain, ours = ex.plain.mask, ex.ours.mask
        cell = out.masks[out.masks.index("cam-gain-loss") :]
        data = re.search(r"--cam-codes:url\('data:image/png;base64,([^']+)'\)", out.masks).group(1)  # type: ignore[union-attr]
        picture = Image.open(io.BytesIO(base64.b64decode(data)))
        codes = np.asarray(picture)  # palette indices: the codes; the palette: their grey levels
        np.testing.assert_array_equal(codes, plain.astype(np.uint8) * 2 + ours)  # 1 gained, 2 lost, 3 both
        assert picture.getpalette()[:12] == [level for level in html_views.CODE_LEVELS for _ in range(3)]
        assert re.findall(r"filter:url\(#([a-z-]+)\)", out.masks) == [
            "cam-mask-plain",
            "cam-mask-ours",
            "cam-gain-loss",
        ]
        assert svg_boxes(cell) == [ex.plain.box.tolist(), ex.ours.box.tolist()]
        gained, lost = 100 * (ours & ~plain).mean(), 100 * (plain & ~ours).mean()
        iou = (plain & ours).sum() / (plain | ours).sum()
        assert f"+{gained:.0f} % of the photo gained (magenta), {lost:.0f} % lost (orange)" in out.caption
        assert f"IoU of the two masks {iou:.2f}" in out.caption and f"+{gained:.0f} % gained" in cell


def test_json_matches_library(cat_session: Session) -> None:
    payload = compare.render_localization(view_request(cat_session, "")).payload
    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash)
    assert analysis is not None
    assert payload["class"]["index"] == analysis.top_k(1)[0][0]
    assert payload["ours"]["modules"] == ["NWC", "PaS"]
    h, w = analysis.image_size
    x0, y0, x1, y1 = payload["ours"]["box"]
    assert 0 <= x0 <= x1 <= w - 1 and 0 <= y0 <= y1 <= h - 1
    # same maths as the library at the app's display size, boxes scaled to original pixels
    display = render.display_size(h, w)
    loc = cam_core.localize(analysis, 285, cam_core.CONFIGS["nwc+pas"], size=display)
    # the JSON's PaS threshold is wsolevaluation's 8-bit int(theta * P_90(uint8(255 M))) / 255, within a
    # level or two of theta times the float percentile it reports
    quantized_p90 = float(np.percentile((loc.heatmap * 255).astype(np.uint8), 90))
    assert payload["ours"]["threshold"] == pytest.approx(int(0.35 * quantized_p90) / 255, abs=1e-6)
    assert payload["ours"]["threshold"] == pytest.approx(0.35 * payload["ours"]["percentile_value"], abs=2 / 255)
    expected = cam_core.scale_boxes(loc.box, display, (h, w))[0]
    np.testing.assert_array_equal(payload["ours"]["box"], expected)


def test_ground_truth_iou(cat_session: Session) -> None:
    out = compare.render_localization(view_request(cat_session, "285", gt="0, 0, 450, 299"))
    gt = out.payload["ground_truth"]
    plain = np.array(out.payload["plain"]["box"])
    assert gt["iou_plain"] == pytest.approx(cam_core.box_iou(plain, [0, 0, 450, 299])[0, 0], abs=1e-6)
    assert "Ground truth" in out.caption
    with pytest.raises(gr.Error, match="x0, y0, x1, y1"):
        RAW_RENDER(cat_session, "285", *CONTROLS, "1, 2, three, 4")
    with pytest.raises(gr.Error, match="leaves"):
        RAW_RENDER(cat_session, "285", *CONTROLS, "0, 0, 9999, 10")


def test_drawn_box_fills_the_field_and_scores_both_rules(cat_session: Session) -> None:
    drag = gr.SelectData(None, {"index": [0.0, 0.0, 1.0, 1.0], "value": "replace"})
    drawn = compare.draw_gt(view_request(cat_session, "285"), "5, 5, 9, 9", drag)  # a plain drag replaces the field
    assert drawn.gt_text == "0, 0, 450, 299"
    typed = compare.render_localization(view_request(cat_session, "285", gt="0, 0, 450, 299"))
    assert drawn.payload == typed.payload and "**Ground truth (gold)**: IoU plain" in drawn.caption
    with pytest.raises(gr.Error, match="x0 < x1"):
        compare.draw_gt(view_request(cat_session, "285"), "", gr.SelectData(None, {"index": [1, 0, 0, 1], "value": ""}))


def test_unqueued_events_report_errors_inline(cat_session: Session) -> None:
    render = with_notice(RAW_RENDER, 6)
    ok = render(cat_session, "285", *CONTROLS, "")
    assert len(ok) == 7 and ok[-1] == "" and ok[:6] == compare.render_localization(view_request(cat_session, "285"))
    bad = render(cat_session, "285", *CONTROLS, "1, 2, three, 4")
    assert bad[:6] == (gr.skip(),) * 6 and bad[6].startswith("⚠️ Ground-truth box '1, 2, three, 4'")
    assert render(None, "285", *CONTROLS, "")[6] == "⚠️ Upload a photo first (or pick an example)."


def test_no_session_gives_clear_message() -> None:
    with pytest.raises(gr.Error, match="Upload a photo"):
        compare.render_localization(view_request(None, ""))


def test_a_slider_move_localizes_again_only_the_panel_whose_rule_moved(cat_session: Session) -> None:
    first = explanation.explain_request(view_request(cat_session, "285"))
    moved = explanation.explain_request(view_request(cat_session, "285", theta_mas=0.6))  # plain CAM's rule only
    assert moved.ours is first.ours and moved.plain is not first.plain
    fresh = cam_core.localize(moved.plain_analysis, 285, moved.plain_config, moved.display)
    assert np.array_equal(moved.plain.mask, fresh.mask) and np.array_equal(moved.plain.box, fresh.box)
    assert moved.plain.threshold == fresh.threshold and not np.array_equal(moved.plain.mask, first.plain.mask)
    with pytest.raises(ValueError, match="read-only"):  # shared between requests: nobody may write into it
        moved.ours.mask[0, 0] = True
    assert views.negative_map(moved) is views.negative_map(first)  # M- does not move with the sliders
