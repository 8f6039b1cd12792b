"""Swipe (app/tabs/swipe.py): its pictures, drawn only while its tab is open."""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
from PIL import Image

from app import (
    page,
)
from app.events import event
from app.inputs import CRF, VIEW
from app.state import Session
from app.tabs import compare, swipe
from app.tabs import crf as crf_tab
from tests.helpers import view_request

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


CAT = str(EXAMPLES / "cat.jpg")


CONTROLS = (0.2, 0.35, 90, False, True, True)  # theta_mas, theta_pas, percentile, tap, nwc, pas


RAW_RENDER = event(compare.render_localization, VIEW)


RAW_CRF = event(crf_tab.render_crf, VIEW, CRF)


def panel_picture(html: str) -> Image.Image:
    """The (static, served) picture behind a panel's SVG overlay."""
    match = re.search(r'<img src="gradio_api/file=([^"]+)"', html)
    assert match, html[:200]
    return Image.open(match.group(1))


def svg_boxes(html: str) -> list[list[int]]:
    """The boxes drawn over a panel, in display pixels."""
    return [[int(v) for v in box.split(",")] for box in re.findall(r'data-box="([0-9,]+)"', html)]


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
