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
