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


def test_each_swipe_picture_keeps_its_labels_in_its_own_half(cat_session: Session, monkeypatch) -> None:
    """Issue #23: the divider starts in the middle; the plain picture shows left of it, the improved one right of it,
    so each picture's box labels (its box's and the ground truth's) sit in that half, never behind the divider."""
    from app import render

    placed: list[tuple[int, list[render.Rect]]] = []
    real = render.place_labels

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        rects = real(*args, **kwargs)
        placed.append((args[2][1], rects))  # (the picture's width, the labels' places)
        return rects

    monkeypatch.setattr(render, "place_labels", spy)
    swipe.swipe_pair(view_request(cat_session, "285", gt="60, 40, 300, 280"))
    (width, plain), (_, ours) = placed
    assert len(plain) == len(ours) == 2  # the ground truth's label and the panel's own
    assert all(rect[0] >= 0 and rect[2] <= width / 2 for rect in plain), plain
    assert all(rect[0] >= width / 2 and rect[2] <= width for rect in ours), ours
