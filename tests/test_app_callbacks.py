"""The app's handlers as pure functions, on the real default model and the bundled example photos.

Handlers take typed requests; ``RAW_*`` are the functions Gradio calls (raw values, converted where they
enter), used where a test sends what an event would send."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import zipfile
from dataclasses import astuple, replace
from html import unescape
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import cam_core
from app import (
    analyses,
    api,
    controls,
    explanation,
    files,
    histogram,
    html_views,
    inputs,
    models,
    page,
    render,
    sidebar,
    state,
    views,
)
from app.errors import with_notice
from app.events import event
from app.explanation import resolve_class
from app.inputs import CRF, DEFAULT_RESOLUTION, VIEW, Controls, ViewRequest, crf_params
from app.models import Resolution, tap_partner
from app.state import ANALYSES, AnalysisCache, Session, get_analysis, get_model, image_hash
from app.tabs import compare, export, swipe, weights, why_tap
from app.tabs import crf as crf_tab

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
CAT = str(EXAMPLES / "cat.jpg")
CONTROLS = (0.2, 0.35, 90, False, True, True)  # theta_mas, theta_pas, percentile, tap, nwc, pas
RAW_RENDER = event(compare.render_localization, VIEW)
RAW_CRF = event(crf_tab.render_crf, VIEW, CRF)


def request(session: Session | None, class_choice: str = "285", gt: str = "", **controls: object) -> ViewRequest:
    """A checked request, as :func:`app.inputs.view_request` builds it from an event's values."""
    return inputs.view_request(session, class_choice, *astuple(replace(Controls(), **controls)), gt)


def panel_picture(html: str) -> Image.Image:
    """The (static, served) picture behind a panel's SVG overlay."""
    match = re.search(r'<img src="gradio_api/file=([^"]+)"', html)
    assert match, html[:200]
    return Image.open(match.group(1))


def svg_boxes(html: str) -> list[list[int]]:
    """The boxes drawn over a panel, in display pixels."""
    return [[int(v) for v in box.split(",")] for box in re.findall(r'data-box="([0-9,]+)"', html)]


@pytest.fixture(scope="module")
def cat_session() -> Session:
    session, _, status = analyses.on_image({"path": CAT}, cam_core.DEFAULT_MODEL)
    assert "Egyptian cat" in status
    return session


def test_on_image_fills_class_picker_with_top5(cat_session: Session) -> None:
    _, update, _ = analyses.on_image({"path": CAT}, cam_core.DEFAULT_MODEL)
    choices = update["choices"]
    top5 = get_analysis(cat_session, cat_session.model).top_k(5)
    assert update["value"] == "285" and [value for _, value in choices] == [str(i) for i, _, _ in top5]
    assert choices[0][0] == f"Egyptian cat ({100 * top5[0][2]:.1f} %)"


def test_search_picks_any_class_into_the_picker(cat_session: Session) -> None:
    search = views.search_choices()
    assert len(search) == 1000 and search[292] == ("292: tiger, Panthera tigris", "292")
    update = sidebar.pick_class("292", cat_session)
    analysis = get_analysis(cat_session, cat_session.model)
    p = 100 * float(analysis.probabilities[292])
    assert update["value"] == "292" and len(update["choices"]) == 6
    assert update["choices"][5] == (f"tiger ({explanation.percent(p / 100)})", "292")  # as the top-5 are written
    top = sidebar.pick_class("285", cat_session)  # already in the top-5: selected, nothing added
    assert top["value"] == "285" and len(top["choices"]) == 5
    with pytest.raises(gr.Error, match="Unknown class"):
        sidebar.pick_class("not a class", cat_session)
    with pytest.raises(gr.Error, match="Upload a photo first"):
        sidebar.pick_class("292", None)


def test_slider_update_moves_boxes_without_forward(cat_session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_forward(*args: object, **kwargs: object) -> None:
        raise AssertionError("a slider update must not run the network")

    monkeypatch.setattr(cam_core, "analyze", no_forward)
    low = compare.render_localization(request(cat_session, "285", theta_mas=0.1))
    high = compare.render_localization(request(cat_session, "285", theta_mas=0.6))
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
    on = compare.render_localization(request(cat_session, "285", theta_mas=0.3))
    off = compare.render_localization(request(cat_session, "285", theta_mas=0.3, pas=False))
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
        req = request(cat_session, "285", theta_mas=theta)
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
    payload = compare.render_localization(request(cat_session, "")).payload
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
    out = compare.render_localization(request(cat_session, "285", gt="0, 0, 450, 299"))
    gt = out.payload["ground_truth"]
    plain = np.array(out.payload["plain"]["box"])
    assert gt["iou_plain"] == pytest.approx(cam_core.box_iou(plain, [0, 0, 450, 299])[0, 0], abs=1e-6)
    assert "Ground truth" in out.caption
    with pytest.raises(gr.Error, match="x0, y0, x1, y1"):
        RAW_RENDER(cat_session, "285", *CONTROLS, "1, 2, three, 4")
    with pytest.raises(gr.Error, match="leaves"):
        RAW_RENDER(cat_session, "285", *CONTROLS, "0, 0, 9999, 10")


def test_box_from_fractions_hand_computed() -> None:
    size = (300, 451)  # (H, W) of the cat
    # x: [0.1 * 451, 0.5 * 451) = [45.1, 225.5) touches pixels 45..225; y: [60, 210) touches 60..209
    np.testing.assert_array_equal(inputs.box_from_fractions([0.1, 0.2, 0.5, 0.7], size), [45, 60, 225, 209])
    np.testing.assert_array_equal(inputs.box_from_fractions([0, 0, 1, 1], size), [0, 0, 450, 299])  # whole photo
    np.testing.assert_array_equal(inputs.box_from_fractions([-0.2, 0.5, 1.3, 0.501], size), [0, 150, 450, 150])
    assert inputs.format_box(np.array([45, 60, 225, 209])) == "45, 60, 225, 209"
    for bad in ([0.5, 0.2, 0.5, 0.7], [0.1, 0.2, 0.5], [0.1, float("nan"), 0.5, 0.7], "abcd", None):
        with pytest.raises(cam_core.ParameterError):
            inputs.box_from_fractions(bad, size)


def test_drawn_box_fills_the_field_and_scores_both_rules(cat_session: Session) -> None:
    drag = gr.SelectData(None, {"index": [0.0, 0.0, 1.0, 1.0], "value": "replace"})
    drawn = compare.draw_gt(request(cat_session, "285"), "5, 5, 9, 9", drag)  # a plain drag replaces the field
    assert drawn.gt_text == "0, 0, 450, 299"
    typed = compare.render_localization(request(cat_session, "285", gt="0, 0, 450, 299"))
    assert drawn.payload == typed.payload and "**Ground truth (gold)**: IoU plain" in drawn.caption
    with pytest.raises(gr.Error, match="x0 < x1"):
        compare.draw_gt(request(cat_session, "285"), "", gr.SelectData(None, {"index": [1, 0, 0, 1], "value": ""}))


def test_unqueued_events_report_errors_inline(cat_session: Session) -> None:
    render = with_notice(RAW_RENDER, 6)
    ok = render(cat_session, "285", *CONTROLS, "")
    assert len(ok) == 7 and ok[-1] == "" and ok[:6] == compare.render_localization(request(cat_session, "285"))
    bad = render(cat_session, "285", *CONTROLS, "1, 2, three, 4")
    assert bad[:6] == (gr.skip(),) * 6 and bad[6].startswith("⚠️ Ground-truth box '1, 2, three, 4'")
    assert render(None, "285", *CONTROLS, "")[6] == "⚠️ Upload a photo first (or pick an example)."


def test_swipe_pictures_only_when_their_tab_is_open(cat_session: Session) -> None:
    hidden = compare.render_linked(request(cat_session, "285"), "Plain vs improved")
    assert hidden.swipe is None and hidden.payload is None  # the export tab's JSON: only while it is open
    plain, ours = compare.render_linked(request(cat_session, "285"), swipe.ID).swipe
    assert Image.open(plain).size == Image.open(ours).size == (451, 300)
    assert page.selected_tab(gr.SelectData(None, {"index": 1, "value": "Swipe"})) == swipe.ID


def test_class_resolution(cat_session: Session) -> None:
    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash)
    assert resolve_class("", analysis) == 285
    assert resolve_class("tabby", analysis) == 281
    assert resolve_class("7", analysis) == 7
    with pytest.raises(cam_core.ClassIndexError):
        resolve_class("1000", analysis)
    with pytest.raises(gr.Error, match="Unknown class"):
        compare.render_localization(request(cat_session, "flying teapot"))


def test_tap_without_tap_model_is_refused(cat_session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explanation, "tap_partner", lambda model: None)
    with pytest.raises(gr.Error, match="TAP-trained"):
        compare.render_localization(request(cat_session, "285", tap=True))


def test_tap_panel_uses_the_tap_checkpoint(cat_session: Session) -> None:
    partner = tap_partner(cam_core.DEFAULT_MODEL)
    if partner is None:
        pytest.skip("no TAP checkpoint in assets/checkpoints")
    views = compare.render_localization(request(cat_session, "285", tap=True))
    assert views.payload["ours"]["modules"] == ["TAP", "NWC", "PaS"]
    assert views.payload["ours"]["model"] == get_model(partner).name
    assert views.payload["plain"]["box"] != [] and "TAP on" in views.caption


def test_a_failed_model_load_puts_the_field_back_and_says_so_once(
    cat_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #14 item 8: the Model field shows the model the panels show; one message, no exception (no toast)."""
    real_get = state.MODELS.get

    def offline(name: object, output_stride: int = 32) -> cam_core.LoadedModel:
        if name == "resnet50":
            raise cam_core.WeightsUnavailableError("resnet50's weights could not be downloaded (offline).")
        return real_get(name, output_stride)

    monkeypatch.setattr(state.MODELS, "get", offline)
    for session, shown in ((cat_session, cat_session.model), (None, cam_core.DEFAULT_MODEL)):
        switch = analyses.on_model("resnet50", session)
        assert switch.model == gr.update(value=shown)
        assert switch.session == switch.class_pick == switch.tap == gr.skip()  # the panels keep their photo
        assert switch.status.count("could not be downloaded") == 1 and "still show" in switch.status
    ok = analyses.on_model(cam_core.DEFAULT_MODEL, cat_session)
    assert ok.model == gr.update() and ok.session is not None and "Egyptian cat" in ok.status


def test_probabilities_never_read_zero() -> None:
    """Issue #14 item 9: below 0.01 % a probability reads "< 0.01 %", never "(0.0 %)"."""
    cases = {0.799: "79.9 %", 0.001: "0.1 %", 0.0004: "0.04 %", 0.0001: "0.01 %", 0.00009: "< 0.01 %", 0.0: "< 0.01 %"}
    assert {p: explanation.percent(p) for p in cases} == cases


def test_a_tap_trained_model_tells_one_story(cat_session: Session) -> None:
    """Issue #14 item 9: with the TAP checkpoint picked, toggle, caption, titles and JSON all say TAP weights."""
    tap_model = tap_partner(cam_core.DEFAULT_MODEL)
    if tap_model is None:
        pytest.skip("no TAP checkpoint in assets/checkpoints")
    switch = analyses.on_model(tap_model, cat_session)
    assert switch.tap == gr.update(
        value=True, interactive=False, info=models.tap_toggle(tap_model, DEFAULT_RESOLUTION)["info"]
    )
    assert "TAP" in switch.status and "(0.0 %)" not in switch.status
    session = switch.session
    loaded = get_model(tap_model).name
    for tap in (True, False):  # the toggle is locked on; an API call with tap=False gets the same true story
        out = compare.render_localization(request(session, "285", tap=tap))
        assert out.caption.count(f"weights of {loaded}, trained with TAP") == 2
        assert "both panels use its TAP-trained head" in out.caption and "trained with GAP" not in out.caption
        assert "TAP-trained weights" in out.plain and "TAP-trained weights" in out.ours
        assert out.payload["plain"]["trained_with"] == out.payload["ours"]["trained_with"] == "TAP"
    base = analyses.on_model(cam_core.DEFAULT_MODEL, session)
    assert base.tap["interactive"] is True
    mixed = compare.render_localization(request(base.session, "285", tap=True))
    assert mixed.payload["plain"]["trained_with"] == "GAP" and mixed.payload["ours"]["trained_with"] == "TAP"
    assert "trained with GAP:" in mixed.caption and "trained with TAP at " in mixed.caption  # and where it was trained
    assert models.tap_toggle("resnet50", DEFAULT_RESOLUTION) == {
        "value": False,
        "interactive": False,
        "info": "needs a TAP-trained model",
    }


def test_weights_view_counts_negative_weights(cat_session: Session) -> None:
    _, _, pos, neg, bar_path, caption = weights.render_weights(cat_session, "285", "shared")
    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash)
    assert f"**{int((analysis.class_weights[285] < 0).sum())}** of 1280" in caption
    assert "not comparable" in weights.render_weights(cat_session, "285", "per map")[5]
    bar = np.asarray(Image.open(bar_path).convert("RGB")).reshape(-1, 3).astype(int)
    for entry in (render.SEQUENTIAL[40], render.SEQUENTIAL[128], render.SEQUENTIAL[250]):  # issue #14 item 10
        assert (np.abs(bar - entry).sum(axis=1) <= 6).sum() > 50, entry  # the colours themselves are shown
    assert Image.open(pos).size == Image.open(neg).size


def test_p1_view(cat_session: Session) -> None:
    _, _, update, caption = why_tap.render_p1(cat_session, "285", 0.1, None)
    top = update["value"]
    assert top == update["choices"][0][1] and f"Channel **{top}**" in caption
    _, _, update2, _ = why_tap.render_p1(cat_session, "285", 0.1, update["choices"][3][1])
    assert update2["value"] == update["choices"][3][1]


def test_swipe_pair(cat_session: Session) -> None:
    pair = swipe.swipe_pair(request(cat_session, "285"))
    assert pair is not None
    assert Image.open(pair[0]).size == Image.open(pair[1]).size == (451, 300)  # never upscaled
    assert swipe.swipe_pair(request(None, "")) is None


def test_no_session_gives_clear_message() -> None:
    with pytest.raises(gr.Error, match="Upload a photo"):
        compare.render_localization(request(None, ""))


def test_bad_upload_messages(uploads: Path) -> None:
    text = uploads / "notes.png"
    text.write_text("not an image")
    with pytest.raises(gr.Error, match="not an image format"):
        analyses.on_image({"path": str(text)}, cam_core.DEFAULT_MODEL)
    with pytest.raises(gr.Error, match="Upload a photo"):
        analyses.on_image(None, cam_core.DEFAULT_MODEL)


def test_a_refused_upload_empties_everything_and_says_so_once(uploads: Path, cat_session: Session) -> None:
    """Issue #14 item 16: one message in the status line, no exception (no toast), class picker and views emptied."""
    text = uploads / "notes.png"
    text.write_text("not an image")
    photo = analyses.on_photo({"path": str(text)}, cam_core.DEFAULT_MODEL)
    assert photo.session is None and photo.class_pick == gr.update(value=None, visible=False)
    assert photo.status.count("not an image format") == 1
    assert analyses.on_photo(None, cam_core.DEFAULT_MODEL).status == "Upload a photo or pick an example."
    with pytest.raises(gr.Error, match=re.escape(inputs.NOT_A_FILE)):  # no upload at all: refused as ever
        analyses.on_photo({"path": "/etc/passwd"}, cam_core.DEFAULT_MODEL)
    cleared = with_notice(event(compare.render_photo, VIEW), 8)(None, "", *CONTROLS, "", "Plain vs improved")
    assert cleared == (*compare.CLEARED, "")  # every view emptied, and no second message
    assert weights.render_weights(None, "", "shared") == (None,) * 5 + ("",)
    assert why_tap.render_p1(None, "", 0.1, None)[3] == ""
    shown = compare.render_photo(request(cat_session, "285"), export.ID)
    assert shown.payload["class"]["index"] == 285


def test_wording_says_what_is_on_screen(cat_session: Session) -> None:
    """Issue #14 item 18: no tab that does not exist, only the project's own numbers, each example named."""
    from app import texts

    assert "histogram tab" not in texts.HOW_IT_WORKS and "histogram under the panels" in texts.HOW_IT_WORKS
    readme = (EXAMPLES.parent.parent / "README.md").read_text()
    for number in re.findall(r"\b\d+\.\d\b", texts.HOW_IT_WORKS):  # every measured number is in the README
        assert number in readme, number
    assert "Bae et al.'s LID 2020 entry" in texts.CRF_INTRO and "seed paper" not in texts.CRF_INTRO
    named = sidebar.EXAMPLES_LABEL.split(": ", 1)[1].split(", ")
    assert [label.split()[0] for label in named] == ["cat", "espresso", "rocket", "coins", "astronaut"]
    assert len(named) == len(inputs.EXAMPLE_FILES) and "part-only" not in sidebar.EXAMPLES_LABEL
    caption = compare.render_localization(request(cat_session, "285")).caption
    assert "Share of M- inside the green box" in caption and "evidence *against* the class" in caption


def test_presets_and_export(cat_session: Session) -> None:
    assert controls.apply_preset("LID challenge") == (0.2, 0.35, 98.0, 0.05, "336/16")
    payload, path = export.export_json(request(cat_session, "285")), export.export_zip(request(cat_session, "285"))
    assert payload == compare.render_localization(request(cat_session, "285")).payload  # the tab's JSON, on opening
    with zipfile.ZipFile(path) as archive:
        names = {"explanation.json", "plain_cam.png", "improved_cam.png", "histogram.png", "masks.png"}
        assert set(archive.namelist()) == names
        assert json.loads(archive.read("explanation.json"))["class"]["index"] == 285


def test_the_export_zip_is_made_on_request_and_matches_the_screen(cat_session: Session) -> None:
    """Issue #14 item 7, issue #22 item 3: a slider move writes no zip, even with the export tab open; the zip made
    at the click holds what the screen shows for the controls of that moment."""
    hidden = compare.render_linked(request(cat_session, "285", theta_mas=0.6), "Plain vs improved")
    assert hidden.payload is None and hidden.swipe is None  # nobody sees the export tab: no JSON
    for theta in (0.2, 0.6):
        before = set(os.listdir(files.output_dir()))
        shown = compare.render_linked(request(cat_session, "285", theta_mas=theta), export.ID)
        assert set(os.listdir(files.output_dir())) == before  # no file written by a move
        with zipfile.ZipFile(export.export_zip(request(cat_session, "285", theta_mas=theta))) as archive:
            exported = json.loads(archive.read("explanation.json"))
        assert exported == shown.payload and exported["plain"]["theta"] == theta
        assert f"θ·max = {theta:.2f}" in shown.caption
    assert export.export_json(request(None, "")) == {}
    with pytest.raises(gr.Error, match="Upload a photo first"):
        export.export_zip(request(None, ""))


def test_explain_api_function() -> None:
    result = api.explain({"path": CAT}, cam_core.DEFAULT_MODEL, "", *CONTROLS)
    assert result.payload["class"]["name"] == "Egyptian cat"
    assert Path(result.plain_png).is_file() and Path(result.ours_png).is_file()
    with pytest.raises(gr.Error, match="Unknown model"):
        api.explain({"path": CAT}, "alexnet9000")


def test_analysis_cache_is_bounded() -> None:
    cache = AnalysisCache(max_bytes=3 * 300_000)
    rng = np.random.default_rng(0)
    template = ANALYSES.get(cam_core.DEFAULT_MODEL, DEFAULT_RESOLUTION, image_hash(cam_core.load_image(CAT)))
    assert template is not None
    for i in range(20):
        image = rng.integers(0, 256, size=(200, 200, 3), dtype=np.uint8)  # 120 kB + 250 kB features
        features = np.zeros((1280, 7, 7), np.float32)  # a 224 px analysis' map (the default's 28 x 28 is 4 MB)
        small = cam_core.cam.Analysis(**{**template.__dict__, "image": image, "feature_maps": features})
        cache.put("m", DEFAULT_RESOLUTION, str(i), small)
        assert cache.nbytes <= cache.max_bytes
    assert len(cache) == 2 and cache.get("m", DEFAULT_RESOLUTION, "19") is not None
    assert cache.get("m", DEFAULT_RESOLUTION, "0") is None
    assert cache.get("m", Resolution(224, 32), "19") is None  # another resolution is another entry


def test_crf_view(cat_session: Session) -> None:
    pytest.importorskip("pydensecrf.densecrf")
    html, caption = crf_tab.render_crf(
        request(cat_session, "285", gt="0, 0, 450, 299"), crf_params(3, 3, 80, 13, 10, 5)
    )
    assert html.count("data:image/png;base64") == 4 and html.count('class="box"') == 4
    assert "CRF box" in caption and "IoU with GT" in caption
    mas = cam_core.localize(get_analysis(cat_session, cat_session.model), 285, cam_core.CONFIGS["cam"]).threshold
    assert f"**plain CAM, MaS** (threshold {mas:.3f})" in caption and "For “Egyptian cat”" in caption
    with pytest.raises(gr.Error, match="iterations"):
        RAW_CRF(cat_session, "285", *CONTROLS, "", 3, 3, 80, 13, 10, 0)


def test_crf_unavailable_message(cat_session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crf_tab.crf, "crf_available", lambda: False)
    with pytest.raises(gr.Error, match="pydensecrf2"):
        crf_tab.render_crf(request(cat_session, "285"), crf_params(3, 3, 80, 13, 10, 5))


def test_one_shot_outputs_are_bounded_and_kept_pictures_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    pixel = np.zeros((2, 2, 3), dtype=np.uint8)
    kept = files.save_jpeg(pixel, keep=True)
    assert Path(kept).parent == Path(files.render_dir())
    files.prune_outputs(keep=0)
    monkeypatch.setattr(files, "MAX_OUTPUTS", 7)
    monkeypatch.setattr(files, "_PRUNE_EVERY", 5)
    paths = [files.save_png(pixel) for _ in range(23)]
    assert all(Path(p).parent == Path(files.output_dir()) for p in paths)
    left = sorted(Path(files.output_dir()).iterdir())
    assert 7 <= len(left) <= 7 + 5  # pruned to the newest 7 before every 5th write
    assert Path(paths[-1]) in left and Path(paths[0]) not in left
    assert files.prune_outputs(keep=3) == len(left) - 3 and len(list(Path(files.output_dir()).iterdir())) == 3
    assert Path(kept).is_file()  # pictures that views refer to are not the prune's business


def test_a_slider_move_localizes_again_only_the_panel_whose_rule_moved(cat_session: Session) -> None:
    first = explanation.explain_request(request(cat_session, "285"))
    moved = explanation.explain_request(request(cat_session, "285", theta_mas=0.6))  # plain CAM's rule only
    assert moved.ours is first.ours and moved.plain is not first.plain
    fresh = cam_core.localize(moved.plain_analysis, 285, moved.plain_config, moved.display)
    assert np.array_equal(moved.plain.mask, fresh.mask) and np.array_equal(moved.plain.box, fresh.box)
    assert moved.plain.threshold == fresh.threshold and not np.array_equal(moved.plain.mask, first.plain.mask)
    with pytest.raises(ValueError, match="read-only"):  # shared between requests: nobody may write into it
        moved.ours.mask[0, 0] = True
    assert views.negative_map(moved) is views.negative_map(first)  # M- does not move with the sliders
