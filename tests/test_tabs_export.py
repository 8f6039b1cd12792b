"""JSON & export (app/tabs/export.py): the tab's JSON and the zip made at the click."""

from __future__ import annotations

import json
import os
import zipfile

import gradio as gr
import pytest

from app import (
    controls,
    files,
)
from app.state import Session
from app.tabs import compare, export
from tests.helpers import view_request


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
