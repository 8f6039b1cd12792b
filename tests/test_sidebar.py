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
