"""Pixels (app/render.py): colour tables, the signed overlay, box labels placed apart and off the edges."""

from __future__ import annotations

import numpy as np
import pytest

from app import render
from tests.helpers import check_labels_apart


def _placed(picture: np.ndarray, boxes: list[tuple[np.ndarray, render.Colour, str]]) -> list[render.Rect]:
    """The rectangles :func:`render.draw_labelled_boxes` uses (same sizes, same placement)."""
    import cv2

    scale = max(0.55, max(picture.shape[:2]) / 800)
    sizes = []
    for _, _, label in boxes:
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        sizes.append((tw + 8.0, th + base + 6.0))
    return render.place_labels([b for b, _, _ in boxes], sizes, picture.shape[:2], render.box_thickness(picture) + 2)


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


def test_a_grey_level_through_the_table_is_the_server_colour() -> None:
    heatmap = np.array([[0.0, 0.5, 1.0, 0.2502]], np.float32)
    levels = render.grey_levels(heatmap)
    np.testing.assert_array_equal(levels, [[0, 128, 255, 64]])
    np.testing.assert_array_equal(render.SEQUENTIAL[levels], render.colorize(heatmap))
    photo = np.full((1, 4, 3), 100, np.uint8)
    np.testing.assert_array_equal(render.overlay(photo, heatmap)[0, 0], [50, 50, 52])  # 0.5 · 100 + 0.5 · (0, 0, 4)


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


def test_labels_of_overlapping_boxes_stay_apart_and_off_the_edges() -> None:
    boxes = [np.array([40, 60, 300, 280]), np.array([42, 58, 310, 290]), np.array([30, 50, 250, 270])]
    rects = render.place_labels(boxes, [(30, 20), (90, 20), (70, 20)], (300, 451), 5)
    check_labels_apart(boxes, rects, (300, 451), 5)


def test_a_small_box_has_its_label_outside() -> None:
    tiny = np.array([200, 150, 215, 162])
    rects = render.place_labels([tiny], [(60, 20)], (300, 451), 5)
    _, y0, _, y1 = rects[0]
    assert y1 <= tiny[1] or y0 >= tiny[3] + 1  # above or below the box: the object stays visible
    check_labels_apart([tiny], rects, (300, 451), 5)


def test_a_box_at_the_top_edge_has_its_label_below_or_inside() -> None:
    top = np.array([100, 0, 250, 120])
    rects = render.place_labels([top], [(60, 20)], (300, 451), 5)
    assert rects[0][1] >= 0 and rects[0][1] > top[3]  # no room above: below the box
    whole = np.array([0, 0, 450, 299])  # fills the photo: inside, off its edges
    gt = np.array([60, 40, 300, 280])
    rects = render.place_labels([whole, gt], [(80, 20), (30, 20)], (300, 451), 5)
    check_labels_apart([whole, gt], rects, (300, 451), 5)


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
