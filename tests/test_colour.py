"""Colour maps, the signed CAM in logit units, and box-label placement (issue #14 items 2, 3, 10, 15)."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cam_core
from app import analyses, html_views, inputs, render, weights_view
from app.inputs import Controls
from app.state import ANALYSES, Session
from app.tabs import compare, weights

CAT = str(Path(__file__).resolve().parent.parent / "assets" / "examples" / "cat.jpg")


@pytest.fixture(scope="module")
def cat_session() -> Session:
    session, _, _ = analyses.on_image({"path": CAT}, cam_core.DEFAULT_MODEL)
    return session


# ---------------------------------------------------------------- colour tables


def test_colour_tables_are_matplotlibs_maps() -> None:
    """Hand-read ends of each table (matplotlib 3.x data), and the diverging map's exactly neutral middle."""
    assert render.DEFAULT_COLOUR_MAP == "inferno" and list(render.COLOUR_MAPS) == ["inferno", "viridis", "jet"]
    np.testing.assert_array_equal(render.COLOUR_MAPS["inferno"][[0, 255]], [[0, 0, 4], [252, 255, 164]])
    np.testing.assert_array_equal(render.COLOUR_MAPS["viridis"][[0, 255]], [[68, 1, 84], [253, 231, 37]])
    np.testing.assert_array_equal(render.COLOUR_MAPS["jet"][[0, 255]], [[0, 0, 128], [128, 0, 0]])
    assert all(table.shape == (256, 3) and table.dtype == np.uint8 for table in render.COLOUR_MAPS.values())
    np.testing.assert_array_equal(render.DIVERGING[[0, 127, 254]], [[5, 48, 97], [247, 247, 247], [103, 0, 31]])
    lightness = render.SEQUENTIAL.astype(float) @ [0.299, 0.587, 0.114]
    assert (np.diff(lightness) > -1).all()  # inferno grows brighter with the value (jet does not)
    jet = render.JET.astype(float) @ [0.299, 0.587, 0.114]
    assert (np.diff(jet) < -1).any()


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


def test_a_grey_level_through_the_table_is_the_server_colour() -> None:
    heatmap = np.array([[0.0, 0.5, 1.0, 0.2502]], np.float32)
    levels = render.grey_levels(heatmap)
    np.testing.assert_array_equal(levels, [[0, 128, 255, 64]])
    np.testing.assert_array_equal(render.SEQUENTIAL[levels], render.colorize(heatmap))
    photo = np.full((1, 4, 3), 100, np.uint8)
    np.testing.assert_array_equal(render.overlay(photo, heatmap)[0, 0], [50, 50, 52])  # 0.5 · 100 + 0.5 · (0, 0, 4)


def test_panels_stack_photo_grey_map_and_boxes(cat_session: Session) -> None:
    request = inputs.view_request(cat_session, "285", *replace(Controls()).__dict__.values(), "")
    out = compare.render_localization(request)
    urls = re.findall(r'src="gradio_api/file=([^"]+)"', out.plain)
    assert len(urls) == 2  # photo, then the grey map
    photo, grey = Image.open(urls[0]), Image.open(urls[1])
    assert grey.mode == "L" and grey.size == photo.size == (451, 300)
    assert 'class="cam-heat"' in out.plain and "filter:url(#cam-colormap)" in out.plain
    assert f"opacity:var(--cam-opacity,{render.DEFAULT_OPACITY})" in out.plain


# ---------------------------------------------------------------- signed map


def test_signed_overlay_is_the_photo_at_zero_and_hand_computed_elsewhere() -> None:
    photo = np.array([[[100, 150, 200], [10, 20, 30], [10, 20, 30]]], np.uint8)
    out = render.signed_overlay(photo, np.array([[0.0, 2.0, -5.0]]), 2.0)
    # grey of (100, 150, 200) = 0.299·100 + 0.587·150 + 0.114·200 = 140.75 -> 141: value 0 is the photo alone
    np.testing.assert_array_equal(out[0, 0], [141, 141, 141])
    # grey 18, +scale: 0.15 · 18 + 0.85 · (103, 0, 31) = (90.25, 2.7, 29.05)
    np.testing.assert_array_equal(out[0, 1], [90, 3, 29])
    # beyond -scale: clipped to the blue end, 0.15 · 18 + 0.85 · (5, 48, 97) = (6.95, 43.5, 85.15)
    np.testing.assert_array_equal(out[0, 2], [7, 44, 85])
    # a quarter of the scale: entry 127 + 127 / 4 = 158.75 -> 159, opacity 0.85 · sqrt(1 / 4) = 0.425
    quarter = render.signed_overlay(photo[:, 1:2], np.array([[0.5]]), 2.0)[0, 0]
    np.testing.assert_array_equal(quarter, np.rint(0.575 * 18 + 0.425 * render.DIVERGING[159].astype(float)))
    with pytest.raises(ValueError, match="scale"):
        render.signed_overlay(photo, np.zeros((1, 3)), 0.0)


def test_signed_view_prints_the_logit_and_one_scale_per_photo(cat_session: Session) -> None:
    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash)
    signed, _, pos, neg, _, caption = weights.render_weights(cat_session, "285", "shared")
    numbers = re.search(
        r"grid = (-?[\d.]+), plus the bias b = ([+-][\d.]+), gives (-?[\d.]+); the model's logit for "
        r"Egyptian cat is (-?\d+\.\d+)",
        caption,
    )
    assert numbers, caption
    mean, bias, total, logit = (float(v) for v in numbers.groups())
    by_hand = sum(analysis.class_weights[285, k] * analysis.feature_maps[k].astype(np.float64)
                  for k in range(analysis.feature_maps.shape[0])).mean()  # fmt: skip
    assert mean == pytest.approx(by_hand, abs=1e-3) and bias == pytest.approx(float(analysis.bias[285]), abs=1e-3)
    assert logit == pytest.approx(float(analysis.logits[285]), abs=1e-3)  # the model's own forward pass
    assert total == pytest.approx(logit, abs=2e-3) and abs(mean + bias - total) <= 1.5e-3
    scale = float(re.search(r"Scale ±([\d.]+)", caption).group(1))  # type: ignore[union-attr]
    top5 = [i for i, _, _ in analysis.top_k(5)]
    shown = cat_session.size_on_screen
    largest = max(float(np.abs(cam_core.upsample(analysis.cam(c), shown)).max()) for c in top5)
    assert scale == pytest.approx(largest, abs=0.01)
    other = weights.render_weights(cat_session, str(top5[3]), "shared")[5]
    assert f"Scale ±{scale:.2f}" in other  # the same scale for another class of this photo
    assert Image.open(signed).size == Image.open(pos).size == Image.open(neg).size == (451, 300)


def test_signed_colour_bar_shows_the_colours_centred_at_zero(cat_session: Session) -> None:
    _, signed_bar, _, _, bar, _ = weights.render_weights(cat_session, "285", "shared")
    strip = weights_view.signed_strip()
    np.testing.assert_array_equal(strip[127], [128, 128, 128])  # value 0: the mid-grey photo, no colour
    assert strip[0][2] > strip[0][0] and strip[254][0] > strip[254][2]  # blue below 0, red above
    pixels = np.asarray(Image.open(signed_bar).convert("RGB")).reshape(-1, 3).astype(int)
    for entry in (strip[10], strip[127], strip[244]):  # issue #14 item 10: the colours themselves are shown
        assert (np.abs(pixels - entry).sum(axis=1) <= 6).sum() > 50, entry
    pixels = np.asarray(Image.open(bar).convert("RGB")).reshape(-1, 3).astype(int)
    for entry in (render.SEQUENTIAL[40], render.SEQUENTIAL[128], render.SEQUENTIAL[250]):
        assert (np.abs(pixels - entry).sum(axis=1) <= 6).sum() > 50, entry


def test_a_tap_pooled_model_says_its_logit_is_not_the_mean(cat_session: Session) -> None:
    analysis = replace(
        ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash), pooling="tap", tap_tau=0.1
    )
    caption = weights_view.weights_views(cat_session.display, analysis, 285, True).caption
    assert "pools with TAP (τ = 0.1)" in caption and "is not mean(M) + b" in caption


# ---------------------------------------------------------------- box labels


def _check(boxes: list[np.ndarray], rects: list[render.Rect], picture: tuple[int, int], stroke: float) -> None:
    height, width = picture
    for rect in rects:
        assert min(rect[0], rect[1]) >= 0 and rect[2] <= width and rect[3] <= height, rect
    for a, b in combinations(rects, 2):
        assert not render._overlap(a, b), (a, b)  # labels never overlap
    for rect in rects:
        for box in boxes:
            for edge in render._edges(box, stroke):
                assert not render._overlap(rect, edge), (rect, box)  # no edge cuts a label


def test_labels_of_overlapping_boxes_stay_apart_and_off_the_edges() -> None:
    boxes = [np.array([40, 60, 300, 280]), np.array([42, 58, 310, 290]), np.array([30, 50, 250, 270])]
    rects = render.place_labels(boxes, [(30, 20), (90, 20), (70, 20)], (300, 451), 5)
    _check(boxes, rects, (300, 451), 5)


def test_a_small_box_has_its_label_outside() -> None:
    tiny = np.array([200, 150, 215, 162])
    rects = render.place_labels([tiny], [(60, 20)], (300, 451), 5)
    _, y0, _, y1 = rects[0]
    assert y1 <= tiny[1] or y0 >= tiny[3] + 1  # above or below the box: the object stays visible
    _check([tiny], rects, (300, 451), 5)


def test_a_box_at_the_top_edge_has_its_label_below_or_inside() -> None:
    top = np.array([100, 0, 250, 120])
    rects = render.place_labels([top], [(60, 20)], (300, 451), 5)
    assert rects[0][1] >= 0 and rects[0][1] > top[3]  # no room above: below the box
    whole = np.array([0, 0, 450, 299])  # fills the photo: inside, off its edges
    gt = np.array([60, 40, 300, 280])
    rects = render.place_labels([whole, gt], [(80, 20), (30, 20)], (300, 451), 5)
    _check([whole, gt], rects, (300, 451), 5)


def test_the_panels_draw_labels_where_placed(cat_session: Session) -> None:
    request = inputs.view_request(cat_session, "285", *Controls().__dict__.values(), "60, 40, 300, 280")
    out = compare.render_localization(request)
    rects = [tuple(float(v) for v in r.split(",")) for r in re.findall(r'data-rect="([0-9.,-]+)"', out.plain)]
    boxes = [np.array([int(v) for v in b.split(",")]) for b in re.findall(r'data-box="([0-9,]+)"', out.plain)]
    assert len(rects) == len(boxes) == 2 and ">GT</text>" in out.plain
    _check(boxes, rects, (300, 451), max(3.0, 451 / 150) + 2)


def test_burnt_in_labels_sit_where_placed() -> None:
    """The zip / swipe pictures: each label's tag is drawn inside the rectangle :func:`place_labels` gave it."""
    picture = np.full((300, 451, 3), 255, np.uint8)
    boxes = [(np.array([0, 0, 450, 299]), render.PLAIN_COLOUR, "CAM, MaS"), (np.array([200, 20, 230, 60]),
             render.GT_COLOUR, "GT")]  # fmt: skip
    render.draw_labelled_boxes(picture, boxes)
    for (_, colour, _), rect in zip(boxes, _placed(picture, boxes), strict=True):
        x0, y0, x1, y1 = (int(v) for v in rect)
        tag = picture[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].reshape(-1, 3).astype(int)
        assert (tag.sum(axis=1) == 0).mean() > 0.4  # the black tag
        assert (np.abs(tag - colour).sum(axis=1) < 60).sum() > 10  # the text in the box's colour
    assert _placed(picture, boxes)[1][1] > 60  # the small box's label below it (no room above)


def _placed(picture: np.ndarray, boxes: list[tuple[np.ndarray, render.Colour, str]]) -> list[render.Rect]:
    """The rectangles :func:`render.draw_labelled_boxes` uses (same sizes, same placement)."""
    import cv2

    scale = max(0.55, max(picture.shape[:2]) / 800)
    sizes = []
    for _, _, label in boxes:
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        sizes.append((tw + 8.0, th + base + 6.0))
    return render.place_labels([b for b, _, _ in boxes], sizes, picture.shape[:2], render.box_thickness(picture) + 2)
