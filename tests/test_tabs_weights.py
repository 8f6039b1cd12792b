"""M+ / M- (app/tabs/weights.py): the signed map and its decomposition, on the cat."""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cam_core
from app import (
    render,
    weights_view,
)
from app.events import event
from app.inputs import CRF, VIEW
from app.state import ANALYSES, Session
from app.tabs import compare, weights
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


def test_weights_view_counts_negative_weights(cat_session: Session) -> None:
    _, _, pos, neg, bar_path, caption = weights.render_weights(cat_session, "285", "shared")
    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash)
    assert f"**{int((analysis.class_weights[285] < 0).sum())}** of 1280" in caption
    assert "not comparable" in weights.render_weights(cat_session, "285", "per map")[5]
    bar = np.asarray(Image.open(bar_path).convert("RGB")).reshape(-1, 3).astype(int)
    for entry in (render.SEQUENTIAL[40], render.SEQUENTIAL[128], render.SEQUENTIAL[250]):  # issue #14 item 10
        assert (np.abs(bar - entry).sum(axis=1) <= 6).sum() > 50, entry  # the colours themselves are shown
    assert Image.open(pos).size == Image.open(neg).size


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


def _placed(picture: np.ndarray, boxes: list[tuple[np.ndarray, render.Colour, str]]) -> list[render.Rect]:
    """The rectangles :func:`render.draw_labelled_boxes` uses (same sizes, same placement)."""
    import cv2

    scale = max(0.55, max(picture.shape[:2]) / 800)
    sizes = []
    for _, _, label in boxes:
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        sizes.append((tw + 8.0, th + base + 6.0))
    return render.place_labels([b for b, _, _ in boxes], sizes, picture.shape[:2], render.box_thickness(picture) + 2)


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
