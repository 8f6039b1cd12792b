"""The Gradio-free explanation (app/explanation.py): class resolution, the TAP panel's model, percentages."""

from __future__ import annotations

import dataclasses

import gradio as gr
import pytest

import cam_core
from app import (
    explanation,
)
from app.explanation import resolve_class
from app.models import tap_partner
from app.state import ANALYSES, Session, get_model
from app.tabs import compare
from tests.helpers import CAT, view_request


def test_class_resolution(cat_session: Session) -> None:
    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash)
    assert resolve_class("", analysis) == 285
    assert resolve_class("tabby", analysis) == 281
    assert resolve_class("7", analysis) == 7
    with pytest.raises(cam_core.ClassIndexError):
        resolve_class("1000", analysis)
    with pytest.raises(gr.Error, match="Unknown class"):
        compare.render_localization(view_request(cat_session, "flying teapot"))


def test_tap_without_tap_model_is_refused(cat_session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explanation, "tap_partner", lambda model: None)
    with pytest.raises(gr.Error, match="TAP-trained"):
        compare.render_localization(view_request(cat_session, "285", tap=True))


def test_tap_panel_uses_the_tap_checkpoint(cat_session: Session) -> None:
    partner = tap_partner(cam_core.DEFAULT_MODEL)
    if partner is None:
        pytest.skip("no TAP checkpoint in assets/checkpoints")
    views = compare.render_localization(view_request(cat_session, "285", tap=True))
    assert views.payload["ours"]["modules"] == ["TAP", "NWC", "PaS"]
    assert views.payload["ours"]["model"] == get_model(partner).name
    assert views.payload["plain"]["box"] != [] and "TAP on" in views.caption


def test_probabilities_never_read_zero() -> None:
    """Issue #14 item 9: below 0.01 % a probability reads "< 0.01 %", never "(0.0 %)"."""
    cases = {0.799: "79.9 %", 0.001: "0.1 %", 0.0004: "0.04 %", 0.0001: "0.01 %", 0.00009: "< 0.01 %", 0.0: "< 0.01 %"}
    assert {p: explanation.percent(p) for p in cases} == cases


def test_calibrated_probabilities_in_the_status_picker_and_json(cat_session: Session) -> None:
    """Issue #23: the cat at the default 448 / 16 carries T; the picker, the status line and the JSON show
    softmax(logits / T) and name T; a setting without a fit says "uncalibrated" (never a silent T = 1)."""
    from app import analyses, views
    from app.inputs import Controls
    from cam_core.calibration import softmax, temperature

    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash)
    t = temperature(cam_core.DEFAULT_MODEL, 448, 16)
    assert t is not None and analysis.temperature == t
    p = softmax(analysis.logits, t)[285]
    assert p > 0.5  # 85.9 % calibrated; the raw softmax said 14.5 %
    assert views.class_choices(analysis)[0] == (f"Egyptian cat ({explanation.percent(p)})", "285")
    payload = explanation.explanation_json(explanation.explain_arrays(cat_session, "285", Controls()), None)
    assert payload["class"]["probability"] == pytest.approx(p, abs=1e-6)
    assert payload["calibration"]["calibrated"] and payload["calibration"]["temperature"] == t
    _, _, status = analyses.on_image({"path": str(CAT)}, cam_core.DEFAULT_MODEL)
    assert f"probabilities calibrated at this resolution (temperature scaling, T = {t:.2f})" in status
    uncalibrated = dataclasses.replace(analysis, temperature=None)
    assert "uncalibrated" in explanation.calibration_note(uncalibrated)
    assert explanation.calibration_json(uncalibrated) == {**payload["calibration"], "calibrated": False,
                                                          "temperature": None}  # fmt: skip


# ---------------------------------------------------------------- issue #25: the method menu


def _relu_heatmap(raw, size: tuple[int, int]):
    """By hand: a map made non-negative by ReLU, then upsampled and min-max normalised as every panel is."""
    import numpy as np

    return cam_core.normalize(cam_core.upsample(np.maximum(raw, 0.0), size))


def test_a_family_method_drives_both_panels_from_maps_made_once_in_the_queue(cat_session: Session) -> None:
    """Grad-CAM on both panels: its map is ReLU(CAM) / (h w) on this GAP + linear head, so after min-max the blue panel
    is the normalised ReLU(CAM) and the green one (NWC) the normalised NWC CAM, both checked against the cached
    analysis by hand. The maps are made in the queue only: an unqueued event (a slider move) that misses them
    raises NotCached (the page reruns it through the fast lane) and, once made, reads them."""
    import numpy as np

    from app.model_cache import NotCached, cache_only

    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash)
    controls = explanation.Controls(method="gradcam")
    explanation.FAMILY_MAPS.clear()
    with cache_only(), pytest.raises(NotCached):
        explanation.explain_arrays(cat_session, "285", controls)
    ex = explanation.explain_arrays(cat_session, "285", controls)
    display = cat_session.size_on_screen
    assert ex.identity_gap is not None and ex.identity_gap < 1e-4
    np.testing.assert_allclose(ex.plain.heatmap, _relu_heatmap(analysis.cam(285), display), atol=2e-4)
    np.testing.assert_allclose(ex.ours.heatmap, _relu_heatmap(analysis.cam(285, "nwc"), display), atol=2e-4)
    with cache_only():  # a slider move: array work on the cached maps
        moved = explanation.explain_arrays(cat_session, "285", dataclasses.replace(controls, theta_pas=0.6))
    assert moved.ours.threshold > ex.ours.threshold
    payload = explanation.explanation_json(ex, None)
    assert payload["method"]["label"] == "Grad-CAM" and payload["plain"]["method"] == "gradcam"
    assert payload["ours"]["modules"] == ["NWC", "PaS"]


def test_layercam_leaves_nwc_out_and_says_why(cat_session: Session) -> None:
    """NWC is undefined for LayerCAM: the green panel thresholds LayerCAM's own map (= NWC CAM / (h w) here), the
    panel's name and modules leave NWC out, and the caption says why the toggle does nothing."""
    import numpy as np

    from app import views

    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash)
    ex = explanation.explain_arrays(cat_session, "285", explanation.Controls(method="layercam"))
    assert ex.controls.name == "LayerCAM+PaS" and not ex.ours_config.nwc
    display = cat_session.size_on_screen
    np.testing.assert_allclose(ex.ours.heatmap, _relu_heatmap(analysis.cam(285, "nwc"), display), atol=2e-4)
    caption = views.caption(ex, explanation.explanation_json(ex, None))
    assert "**Method: LayerCAM**" in caption and "NWC is undefined for LayerCAM" in caption
    assert "ReLU(NWC CAM) / (h w)" in caption and "(float32 noise)" in caption
    pp = explanation.explain_arrays(cat_session, "285", explanation.Controls(method="gradcampp"))
    assert pp.identity_gap is None
    assert "no identity with CAM" in views.caption(pp, explanation.explanation_json(pp, None))


def test_segmentation_and_why_tap_stay_on_plain_cam(cat_session: Session) -> None:
    """The label maps and the two heads' comparison are CAM's own views: the method menu does not reach them."""
    from app import label_maps, tap_alone

    request = label_maps.segment_request(cat_session, explanation.Controls(method="layercam", nwc=True))
    assert request.controls.method == "cam" and request.controls.ours_config.nwc
    config, name = tap_alone.rule_without_tap(explanation.Controls(method="layercam"))
    assert config.nwc and name == "NWC+PaS"


def test_on_a_tap_head_the_caption_says_the_identity_fails_with_the_measured_gap(cat_session: Session) -> None:
    """LayerCAM on the TAP-trained head (picked as the model): its gradient is not constant over the map, so the
    identity with NWC CAM fails by far more than float32 noise, and the caption says so and why; Grad-CAM's holds."""
    from app import views

    partner = tap_partner(cam_core.DEFAULT_MODEL)
    if partner is None:
        pytest.skip("no TAP checkpoint in assets/checkpoints")
    tap_session = dataclasses.replace(cat_session, model=partner)
    layer = explanation.explain_arrays(tap_session, "285", explanation.Controls(method="layercam"))
    assert layer.trained_with[0] == "TAP" and layer.identity_gap is not None and layer.identity_gap > 1.0
    caption = views.caption(layer, explanation.explanation_json(layer, None))
    assert "does not hold here" in caption and "This head pools with TAP" in caption
    grad = explanation.explain_arrays(tap_session, "285", explanation.Controls(method="gradcam"))
    assert grad.identity_gap is not None and grad.identity_gap < 1e-4
