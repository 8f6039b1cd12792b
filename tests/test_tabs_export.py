"""JSON & export (app/tabs/export.py): the tab's JSON and the zip made at the click."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from app import (
    controls,
    files,
)
from app.events import event
from app.inputs import CRF, VIEW
from app.state import Session
from app.tabs import compare, export
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


def test_presets_and_export(cat_session: Session) -> None:
    assert controls.apply_preset("LID challenge") == (0.2, 0.35, 98.0, 0.05, "336/16")
    payload, path = (
        export.export_json(view_request(cat_session, "285")),
        export.export_zip(view_request(cat_session, "285")),
    )
    assert (
        payload == compare.render_localization(view_request(cat_session, "285")).payload
    )  # the tab's JSON, on opening
    with zipfile.ZipFile(path) as archive:
        names = {"explanation.json", "plain_cam.png", "improved_cam.png", "histogram.png", "masks.png"}
        assert set(archive.namelist()) == names
        assert json.loads(archive.read("explanation.json"))["class"]["index"] == 285


def test_the_export_zip_is_made_on_request_and_matches_the_screen(cat_session: Session) -> None:
    """Issue #14 item 7, issue #22 item 3: a slider move writes no zip, even with the export tab open; the zip made
    at the click holds what the screen shows for the controls of that moment."""
    hidden = compare.render_linked(view_request(cat_session, "285", theta_mas=0.6), "Plain vs improved")
    assert hidden.payload is None and hidden.swipe is None  # nobody sees the export tab: no JSON
    for theta in (0.2, 0.6):
        before = set(os.listdir(files.output_dir()))
        shown = compare.render_linked(view_request(cat_session, "285", theta_mas=theta), export.ID)
        assert set(os.listdir(files.output_dir())) == before  # no file written by a move
        with zipfile.ZipFile(export.export_zip(view_request(cat_session, "285", theta_mas=theta))) as archive:
            exported = json.loads(archive.read("explanation.json"))
        assert exported == shown.payload and exported["plain"]["theta"] == theta
        assert f"θ·max = {theta:.2f}" in shown.caption
    assert export.export_json(view_request(None, "")) == {}
    with pytest.raises(gr.Error, match="Upload a photo first"):
        export.export_zip(view_request(None, ""))
