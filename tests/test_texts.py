"""The app's long texts (app/texts.py) and the labels they name say what is on screen."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from app import (
    inputs,
    sidebar,
)
from app.events import event
from app.inputs import CRF, VIEW
from app.state import Session
from app.tabs import compare
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


def test_wording_says_what_is_on_screen(cat_session: Session) -> None:
    """Issue #14 item 18: no tab that does not exist, only the project's own numbers, each example named."""
    from app import texts

    assert "histogram tab" not in texts.HOW_IT_WORKS and "histogram under the panels" in texts.HOW_IT_WORKS
    readme = (EXAMPLES.parent.parent / "README.md").read_text()
    for number in re.findall(r"\b\d+\.\d\b", texts.HOW_IT_WORKS):  # every measured number is in the README
        assert number in readme, number
    assert "Bae et al.'s LID 2020 entry" in texts.CRF_INTRO and "seed paper" not in texts.CRF_INTRO
    named = sidebar.EXAMPLES_LABEL.split(": ", 1)[1].split(", ")
    assert [label.split()[0] for label in named] == ["cat", "espresso", "rocket", "coins", "astronaut"]
    assert len(named) == len(inputs.EXAMPLE_FILES) and "part-only" not in sidebar.EXAMPLES_LABEL
    caption = compare.render_localization(view_request(cat_session, "285")).caption
    assert "Share of M- inside the green box" in caption and "evidence *against* the class" in caption
