"""The panels' HTML (app/html_views.py): photo, grey map and boxes stacked; the browser's colour tables."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape

import numpy as np
from PIL import Image

from app import html_views, inputs, render
from app.inputs import Controls
from app.state import Session
from app.tabs import compare
from tests.helpers import check_labels_apart


def test_the_browser_filter_tables_are_the_colour_tables() -> None:
    """The 256-entry ``feComponentTransfer`` tables, parsed back, give the server's colours for every level."""
    page = unescape(html_views.colour_controls_html())
    options = re.findall(r'<option value="(\w+)" data-r="([^"]+)" data-g="([^"]+)" data-b="([^"]+)"', page)
    assert [name for name, *_ in options] == list(render.COLOUR_MAPS)
    assert 'value="inferno" data-r' in page and re.search(r'<option value="inferno"[^>]* selected>', page)
    for name, *channels in options:
        table = np.array([[float(v) for v in channel.split()] for channel in channels]).T  # (256, 3) in [0, 1]
        np.testing.assert_array_equal(np.rint(table * 255), render.COLOUR_MAPS[name])
    start = re.findall(r'<feFunc([RGB]) type="table" tableValues="([^"]+)"', page)
    assert [c for c, _ in start] == ["R", "G", "B"] and start[0][1] == options[0][1]  # the default drawn first
    assert 'id="cam-colormap" color-interpolation-filters="sRGB"' in page  # tables act on the PNG's own values


def test_panels_stack_photo_grey_map_and_boxes(cat_session: Session) -> None:
    request = inputs.VIEW.convert(cat_session, "285", *replace(Controls()).__dict__.values(), "")
    out = compare.render_localization(request)
    urls = re.findall(r'src="gradio_api/file=([^"]+)"', out.plain)
    assert len(urls) == 2  # photo, then the grey map
    photo, grey = Image.open(urls[0]), Image.open(urls[1])
    assert grey.mode == "L" and grey.size == photo.size == (451, 300)
    assert 'class="cam-heat"' in out.plain and "filter:url(#cam-colormap)" in out.plain
    assert f"opacity:var(--cam-opacity,{render.DEFAULT_OPACITY})" in out.plain


def test_the_panels_draw_labels_where_placed(cat_session: Session) -> None:
    request = inputs.VIEW.convert(cat_session, "285", *Controls().__dict__.values(), "60, 40, 300, 280")
    out = compare.render_localization(request)
    rects = [tuple(float(v) for v in r.split(",")) for r in re.findall(r'data-rect="([0-9.,-]+)"', out.plain)]
    boxes = [np.array([int(v) for v in b.split(",")]) for b in re.findall(r'data-box="([0-9,]+)"', out.plain)]
    assert len(rects) == len(boxes) == 2 and ">GT</text>" in out.plain
    check_labels_apart(boxes, rects, (300, 451), max(3.0, 451 / 150) + 2)
