"""A photo's analysis (app/analyses.py): the photo, model and resolution handlers on the real default model."""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
import pytest

import cam_core
from app import (
    analyses,
    inputs,
    models,
    state,
)
from app.errors import with_notice
from app.events import event
from app.inputs import DEFAULT_RESOLUTION, VIEW
from app.models import tap_partner
from app.state import Session, get_analysis, get_model
from app.tabs import compare, export, weights, why_tap
from tests.helpers import view_request

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


CAT = str(EXAMPLES / "cat.jpg")


CONTROLS = (0.2, 0.35, 90, False, True, True, "cam")  # theta_mas, theta_pas, percentile, tap, nwc, pas, method


def test_on_image_fills_class_picker_with_top5(cat_session: Session) -> None:
    _, update, _ = analyses.on_image({"path": CAT}, cam_core.DEFAULT_MODEL)
    choices = update["choices"]
    top5 = get_analysis(cat_session, cat_session.model).top_k(5)
    assert update["value"] == "285" and [value for _, value in choices] == [str(i) for i, _, _ in top5]
    assert choices[0][0] == f"Egyptian cat ({100 * top5[0][2]:.1f} %)"


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
        out = compare.render_localization(view_request(session, "285", tap=tap))
        assert out.caption.count(f"weights of {loaded}, trained with TAP") == 2
        assert "both panels use its TAP-trained head" in out.caption and "trained with GAP" not in out.caption
        assert "TAP-trained weights" in out.plain and "TAP-trained weights" in out.ours
        assert out.payload["plain"]["trained_with"] == out.payload["ours"]["trained_with"] == "TAP"
    base = analyses.on_model(cam_core.DEFAULT_MODEL, session)
    assert base.tap["interactive"] is True
    mixed = compare.render_localization(view_request(base.session, "285", tap=True))
    assert mixed.payload["plain"]["trained_with"] == "GAP" and mixed.payload["ours"]["trained_with"] == "TAP"
    assert "trained with GAP:" in mixed.caption and "trained with TAP at " in mixed.caption  # and where it was trained
    assert models.tap_toggle("resnet50", DEFAULT_RESOLUTION) == {
        "value": False,
        "interactive": False,
        "info": "needs a TAP-trained model",
    }


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
    shown = compare.render_photo(view_request(cat_session, "285"), export.ID)
    assert shown.payload["class"]["index"] == 285
