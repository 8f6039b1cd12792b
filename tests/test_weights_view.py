"""The M+ / M- pictures (app/weights_view.py): what a TAP-pooled model's caption says."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np

import cam_core
from app import render, weights_view
from app.state import ANALYSES, Session

CAT = str(Path(__file__).resolve().parent.parent / "assets" / "examples" / "cat.jpg")


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


def test_a_tap_pooled_model_says_its_logit_is_not_the_mean(cat_session: Session) -> None:
    analysis = replace(
        ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash), pooling="tap", tap_tau=0.1
    )
    caption = weights_view.weights_views(cat_session.display, analysis, 285, True).caption
    assert "pools with TAP (τ = 0.1)" in caption and "is not mean(M) + b" in caption
