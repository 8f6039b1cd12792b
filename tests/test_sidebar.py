"""The sidebar (app/sidebar.py): the class search and the sidebar's events."""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from app import (
    explanation,
    sidebar,
    views,
)
from app.events import event
from app.inputs import CRF, VIEW
from app.state import Session, get_analysis
from app.tabs import compare
from app.tabs import crf as crf_tab

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
