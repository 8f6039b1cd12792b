"""The sidebar (app/sidebar.py): the class search and the sidebar's events."""

from __future__ import annotations

import gradio as gr
import pytest

from app import (
    explanation,
    sidebar,
    views,
)
from app.state import Session, get_analysis
from tests.helpers import ROOT


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


def test_a_class_from_an_earlier_photo_is_dropped_without_a_toast(config: dict) -> None:
    """A request made for an earlier photo (the opening cat's redraws still in flight when a visitor uploads at once)
    carries a class that is no longer among the choices: Gradio's Radio raised a visible error toast ("Value: '285'
    ... is not in the list of choices", seen on a fresh page); the picker drops it quietly, and keeps Radio's
    drawing and its check of everything else."""
    from app.sidebar import ClassPicker

    picker = ClassPicker([("sidewinder (43.5 %)", "68")], value="68")
    assert picker.preprocess("68") == "68" and picker.preprocess(None) is None
    with pytest.raises(gr.Error) as stale:
        picker.preprocess("285")
    assert stale.value.visible is False
    # a session's own picker, as Gradio rebuilds it when an event changes its choices (blocks.py: block.__class__)
    session_copy = picker.__class__(**{**picker.constructor_args, "choices": [("Egyptian cat (85.9 %)", "285")]})
    assert session_copy.preprocess("285") == "285"  # the check reads the session's choices, not the original's
    with pytest.raises(gr.Error):
        session_copy.preprocess("68")
    shown = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "class-pick"]
    assert len(shown) == 1 and shown[0]["type"] == "radio"  # the browser draws Gradio's Radio
    assert not list((ROOT / "app").glob("*.pyi"))  # no stub written into the project at import
