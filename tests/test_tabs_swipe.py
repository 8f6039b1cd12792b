"""Swipe (app/tabs/swipe.py): its pictures, drawn only while its tab is open."""

from __future__ import annotations

import gradio as gr
from PIL import Image

from app import (
    page,
)
from app.state import Session
from app.tabs import compare, swipe
from tests.helpers import view_request


def test_swipe_pictures_only_when_their_tab_is_open(cat_session: Session) -> None:
    hidden = compare.render_linked(view_request(cat_session, "285"), "Plain vs improved")
    assert hidden.swipe is None and hidden.payload is None  # the export tab's JSON: only while it is open
    plain, ours = compare.render_linked(view_request(cat_session, "285"), swipe.ID).swipe
    assert Image.open(plain).size == Image.open(ours).size == (451, 300)
    assert page.selected_tab(gr.SelectData(None, {"index": 1, "value": "Swipe"})) == swipe.ID


def test_swipe_pair(cat_session: Session) -> None:
    pair = swipe.swipe_pair(view_request(cat_session, "285"))
    assert pair is not None
    assert Image.open(pair[0]).size == Image.open(pair[1]).size == (451, 300)  # never upscaled
    assert swipe.swipe_pair(view_request(None, "")) is None
