"""The app's callbacks as pure functions, on the real default model and the bundled example photos."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import cam_core
from app import analysis_views as av
from app import callbacks as cb
from app import render
from app.state import ANALYSES, AnalysisCache, image_hash

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
CAT = str(EXAMPLES / "cat.jpg")


def panel_picture(html: str) -> Image.Image:
    """The (static, served) picture behind a panel's SVG overlay."""
    match = re.search(r'<img src="gradio_api/file=([^"]+)"', html)
    assert match, html[:200]
    return Image.open(match.group(1))


def svg_boxes(html: str) -> list[list[int]]:
    """The boxes drawn over a panel, in display pixels."""
    return [[int(v) for v in box.split(",")] for box in re.findall(r'data-box="([0-9,]+)"', html)]


@pytest.fixture(scope="module")
def cat_session() -> cb.Session:
    session, _, status = cb.on_image({"path": CAT}, cam_core.DEFAULT_MODEL)
    assert "Egyptian cat" in status
    return session


def test_on_image_fills_class_picker_with_top5(cat_session: cb.Session) -> None:
    _, update, _ = cb.on_image({"path": CAT}, cam_core.DEFAULT_MODEL)
    choices = update["choices"]
    top5 = cb.get_analysis(cat_session, cat_session.model).top_k(5)
    assert update["value"] == "285" and [value for _, value in choices] == [str(i) for i, _, _ in top5]
    assert choices[0][0] == f"Egyptian cat ({100 * top5[0][2]:.1f} %)"


def test_search_picks_any_class_into_the_picker(cat_session: cb.Session) -> None:
    search = cb.search_choices()
    assert len(search) == 1000 and search[292] == ("292: tiger, Panthera tigris", "292")
    update = cb.pick_class("292", cat_session)
    analysis = cb.get_analysis(cat_session, cat_session.model)
    p = 100 * float(analysis.probabilities[292])
    assert update["value"] == "292" and len(update["choices"]) == 6
    assert update["choices"][5] == (f"292: tiger ({p:.2f} %)" if p >= 0.005 else "292: tiger (< 0.01 %)", "292")
    top = cb.pick_class("285", cat_session)  # already in the top-5: selected, nothing added
    assert top["value"] == "285" and len(top["choices"]) == 5
    with pytest.raises(gr.Error, match="Unknown class"):
        cb.pick_class("not a class", cat_session)
    with pytest.raises(gr.Error, match="Upload a photo first"):
        cb.pick_class("292", None)


def test_slider_update_moves_boxes_without_forward(cat_session: cb.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_forward(*args: object, **kwargs: object) -> None:
        raise AssertionError("a slider update must not run the network")

    monkeypatch.setattr(cam_core, "analyze", no_forward)
    low = cb.render_localization(cat_session, "285", 0.1, 0.35, 90, False, True, True, "")
    high = cb.render_localization(cat_session, "285", 0.6, 0.35, 90, False, True, True, "")
    box_low, box_high = np.array(low[5]["plain"]["box"]), np.array(high[5]["plain"]["box"])
    area = lambda b: (b[2] - b[0] + 1) * (b[3] - b[1] + 1)  # noqa: E731
    assert area(box_high) < area(box_low)
    assert low[5]["plain"]["foreground_fraction"] > high[5]["plain"]["foreground_fraction"]
    assert low[5]["ours"]["box"] == high[5]["ours"]["box"]  # PaS panel ignores theta_mas
    assert svg_boxes(low[0]) != svg_boxes(high[0]) and svg_boxes(low[1]) == svg_boxes(high[1])
    assert panel_picture(low[0]).size == (451, 300)  # the heatmap picture is reused, only the SVG changes
    assert re.findall(r'src="(gradio_api[^"]+)"', low[0]) == re.findall(r'src="(gradio_api[^"]+)"', high[0])
    assert low[2] != high[2] and "data-value" in low[2]  # histogram lines moved
    assert low[3].count("data:image/png;base64") == 2


def test_json_matches_library(cat_session: cb.Session) -> None:
    payload = cb.render_localization(cat_session, "", 0.2, 0.35, 90, False, True, True, "")[5]
    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.image_hash)
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


def test_ground_truth_iou(cat_session: cb.Session) -> None:
    out = cb.render_localization(cat_session, "285", 0.2, 0.35, 90, False, True, True, "0, 0, 450, 299")
    gt = out[5]["ground_truth"]
    plain = np.array(out[5]["plain"]["box"])
    assert gt["iou_plain"] == pytest.approx(cam_core.box_iou(plain, [0, 0, 450, 299])[0, 0], abs=1e-6)
    assert "Ground truth" in out[4]
    with pytest.raises(gr.Error, match="x0, y0, x1, y1"):
        cb.render_localization(cat_session, "285", 0.2, 0.35, 90, False, True, True, "1, 2, three, 4")
    with pytest.raises(gr.Error, match="leaves"):
        cb.render_localization(cat_session, "285", 0.2, 0.35, 90, False, True, True, "0, 0, 9999, 10")


def test_box_from_fractions_hand_computed() -> None:
    size = (300, 451)  # (H, W) of the cat
    # x: [0.1 * 451, 0.5 * 451) = [45.1, 225.5) touches pixels 45..225; y: [60, 210) touches 60..209
    np.testing.assert_array_equal(cb.box_from_fractions([0.1, 0.2, 0.5, 0.7], size), [45, 60, 225, 209])
    np.testing.assert_array_equal(cb.box_from_fractions([0, 0, 1, 1], size), [0, 0, 450, 299])  # whole photo
    np.testing.assert_array_equal(cb.box_from_fractions([-0.2, 0.5, 1.3, 0.501], size), [0, 150, 450, 150])
    assert cb.format_box(np.array([45, 60, 225, 209])) == "45, 60, 225, 209"
    for bad in ([0.5, 0.2, 0.5, 0.7], [0.1, 0.2, 0.5], [0.1, float("nan"), 0.5, 0.7], "abcd", None):
        with pytest.raises(cam_core.ParameterError):
            cb.box_from_fractions(bad, size)


def test_drawn_box_fills_the_field_and_scores_both_rules(cat_session: cb.Session) -> None:
    event = gr.SelectData(None, {"index": [0.0, 0.0, 1.0, 1.0], "value": "ground-truth box"})
    text, *views = cb.draw_gt(cat_session, "285", 0.2, 0.35, 90, False, True, True, event)
    assert text == "0, 0, 450, 299"
    typed = cb.render_localization(cat_session, "285", 0.2, 0.35, 90, False, True, True, "0, 0, 450, 299")
    assert views[5] == typed[5] and "**Ground truth (gold)**: IoU plain" in views[4]
    with pytest.raises(gr.Error, match="x0 < x1"):
        cb.draw_gt(
            cat_session,
            "285",
            0.2,
            0.35,
            90,
            False,
            True,
            True,
            gr.SelectData(None, {"index": [1, 0, 0, 1], "value": ""}),
        )


def test_unqueued_events_report_errors_inline(cat_session: cb.Session) -> None:
    render = cb.with_notice(cb.render_localization, 6)
    ok = render(cat_session, "285", 0.2, 0.35, 90, False, True, True, "")
    assert (
        len(ok) == 7
        and ok[-1] == ""
        and ok[:6] == cb.render_localization(cat_session, "285", 0.2, 0.35, 90, False, True, True, "")
    )
    bad = render(cat_session, "285", 0.2, 0.35, 90, False, True, True, "1, 2, three, 4")
    assert bad[:6] == (gr.skip(),) * 6 and bad[6].startswith("⚠️ Ground-truth box '1, 2, three, 4'")
    assert (
        render(None, "285", 0.2, 0.35, 90, False, True, True, "")[6] == "⚠️ Upload a photo first (or pick an example)."
    )


def test_swipe_pictures_only_when_their_tab_is_open(cat_session: cb.Session) -> None:
    args = (cat_session, "285", 0.2, 0.35, 90, False, True, True, "")
    hidden = cb.render_linked(*args, "Plain vs improved")
    assert len(hidden) == 7 and hidden[6] == gr.skip() and hidden[5] == cb.render_localization(*args)[5]
    plain, ours = cb.render_linked(*args, cb.SWIPE_TAB)[6]
    assert Image.open(plain).size == Image.open(ours).size == (451, 300)
    assert cb.selected_tab(gr.SelectData(None, {"index": 1, "value": "Swipe"})) == cb.SWIPE_TAB


def test_class_resolution(cat_session: cb.Session) -> None:
    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.image_hash)
    assert cb.resolve_class("", analysis) == 285
    assert cb.resolve_class("tabby", analysis) == 281
    assert cb.resolve_class("7", analysis) == 7
    with pytest.raises(cam_core.ClassIndexError):
        cb.resolve_class("1000", analysis)
    with pytest.raises(gr.Error, match="Unknown class"):
        cb.render_localization(cat_session, "flying teapot", 0.2, 0.35, 90, False, True, True, "")


def test_tap_without_tap_model_is_refused(cat_session: cb.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cb, "tap_partner", lambda model: None)
    with pytest.raises(gr.Error, match="TAP-trained"):
        cb.render_localization(cat_session, "285", 0.2, 0.35, 90, True, True, True, "")


def test_tap_panel_uses_the_tap_checkpoint(cat_session: cb.Session) -> None:
    partner = cb.tap_partner(cam_core.DEFAULT_MODEL)
    if partner is None:
        pytest.skip("no TAP checkpoint in assets/checkpoints")
    payload = cb.render_localization(cat_session, "285", 0.2, 0.35, 90, True, True, True, "")[5]
    assert payload["ours"]["modules"] == ["TAP", "NWC", "PaS"]
    assert payload["ours"]["model"] == cb.get_model(partner).name
    assert payload["plain"]["box"] != [] and "TAP on" in cb.render_localization(
        cat_session, "285", 0.2, 0.35, 90, True, True, True, "")[4]  # fmt: skip


def test_weights_view_counts_negative_weights(cat_session: cb.Session) -> None:
    pos, neg, _, caption = av.render_weights(cat_session, "285", "shared")
    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.image_hash)
    assert f"**{int((analysis.class_weights[285] < 0).sum())}** of 1280" in caption
    assert "not comparable" in av.render_weights(cat_session, "285", "per map")[3]
    assert Image.open(pos).size == Image.open(neg).size


def test_p1_view(cat_session: cb.Session) -> None:
    _, _, update, caption = av.render_p1(cat_session, "285", 0.1, None)
    top = update["value"]
    assert top == update["choices"][0][1] and f"Channel **{top}**" in caption
    _, _, update2, _ = av.render_p1(cat_session, "285", 0.1, update["choices"][3][1])
    assert update2["value"] == update["choices"][3][1]


def test_swipe_pair(cat_session: cb.Session) -> None:
    left, right = cb.swipe_pair(cat_session, "285", 0.2, 0.35, 90, False, True, True, "")
    assert Image.open(left).size == Image.open(right).size == (451, 300)  # never upscaled
    assert cb.swipe_pair(None, "", 0.2, 0.35, 90, False, True, True, "") is None


def test_no_session_gives_clear_message() -> None:
    with pytest.raises(gr.Error, match="Upload a photo"):
        cb.render_localization(None, "", 0.2, 0.35, 90, False, True, True, "")


def test_bad_upload_messages(uploads: Path) -> None:
    text = uploads / "notes.png"
    text.write_text("not an image")
    with pytest.raises(gr.Error, match="not an image format"):
        cb.on_image({"path": str(text)}, cam_core.DEFAULT_MODEL)
    with pytest.raises(gr.Error, match="Upload a photo"):
        cb.on_image(None, cam_core.DEFAULT_MODEL)


def test_presets_and_export(cat_session: cb.Session) -> None:
    assert cb.apply_preset("LID challenge") == (0.2, 0.35, 98.0, 0.05)
    path = cb.export_zip(cat_session, "285", 0.2, 0.35, 90, False, True, True, "")
    with zipfile.ZipFile(path) as archive:
        names = {"explanation.json", "plain_cam.png", "improved_cam.png", "histogram.png", "masks.png"}
        assert set(archive.namelist()) == names
        assert json.loads(archive.read("explanation.json"))["class"]["index"] == 285


def test_explain_api_function() -> None:
    payload, plain, ours = cb.explain({"path": CAT}, cam_core.DEFAULT_MODEL, "", 0.2, 0.35, 90, False, True, True)
    assert payload["class"]["name"] == "Egyptian cat" and Path(plain).is_file() and Path(ours).is_file()
    with pytest.raises(gr.Error, match="Unknown model"):
        cb.explain({"path": CAT}, "alexnet9000")


def test_analysis_cache_is_bounded() -> None:
    cache = AnalysisCache(max_bytes=3 * 300_000)
    rng = np.random.default_rng(0)
    template = ANALYSES.get(cam_core.DEFAULT_MODEL, image_hash(cam_core.load_image(CAT)))
    assert template is not None
    for i in range(20):
        image = rng.integers(0, 256, size=(200, 200, 3), dtype=np.uint8)  # 120 kB + 250 kB features
        cache.put("m", str(i), cam_core.cam.Analysis(**{**template.__dict__, "image": image}))
        assert cache.nbytes <= cache.max_bytes
    assert len(cache) == 2 and cache.get("m", "19") is not None and cache.get("m", "0") is None


def test_crf_view(cat_session: cb.Session) -> None:
    pytest.importorskip("pydensecrf.densecrf")
    html, caption = av.render_crf(cat_session, "285", 0.2, 0.35, 90, False, True, True, "0, 0, 450, 299",
                                  3, 3, 80, 13, 10, 5)  # fmt: skip
    assert html.count("data:image/png;base64") == 4 and html.count('class="box"') == 4
    assert "CRF box" in caption and "IoU with GT" in caption
    mas = cam_core.localize(cb.get_analysis(cat_session, cat_session.model), 285, cam_core.CONFIGS["cam"]).threshold
    assert f"**plain CAM, MaS** (threshold {mas:.3f})" in caption and "For “Egyptian cat”" in caption
    with pytest.raises(gr.Error, match="iterations"):
        av.render_crf(cat_session, "285", 0.2, 0.35, 90, False, True, True, "", 3, 3, 80, 13, 10, 0)


def test_crf_unavailable_message(cat_session: cb.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(av.crf, "crf_available", lambda: False)
    with pytest.raises(gr.Error, match="pydensecrf2"):
        av.render_crf(cat_session, "285", 0.2, 0.35, 90, False, True, True, "", 3, 3, 80, 13, 10, 5)


def test_one_shot_outputs_are_bounded_and_kept_pictures_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    pixel = np.zeros((2, 2, 3), dtype=np.uint8)
    kept = render.save_jpeg(pixel, keep=True)
    assert Path(kept).parent == Path(render.RENDER_DIR)
    render.prune_outputs(keep=0)
    monkeypatch.setattr(render, "MAX_OUTPUTS", 7)
    monkeypatch.setattr(render, "_PRUNE_EVERY", 5)
    paths = [render.save_png(pixel) for _ in range(23)]
    assert all(Path(p).parent == Path(render.OUTPUT_DIR) for p in paths)
    left = sorted(Path(render.OUTPUT_DIR).iterdir())
    assert 7 <= len(left) <= 7 + 5  # pruned to the newest 7 before every 5th write
    assert Path(paths[-1]) in left and Path(paths[0]) not in left
    assert render.prune_outputs(keep=3) == len(left) - 3 and len(list(Path(render.OUTPUT_DIR).iterdir())) == 3
    assert Path(kept).is_file()  # pictures that views refer to are not the prune's business
