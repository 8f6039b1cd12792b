"""The Gradio-free views (app/views.py): captions, the line when both boxes coincide."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

import cam_core
from app import explanation, views
from app.models import tap_partner
from app.tabs import compare
from tests.helpers import view_request

WHY = "Why the two boxes nearly coincide"


def _after_verdicts(caption: str) -> list[str]:
    """The caption's lines after issue #23's verdict lines (which rule wins, a mask over half the photo)."""
    lines = caption.split("\n\n")
    while lines and ("on this photo:**" in lines[0] or "mask covers more than half" in lines[0]):
        lines.pop(0)
    return lines


def test_coincidence_line_only_above_the_iou_limit(cat_session) -> None:
    """Item 4, callback: the line heads the caption when the boxes overlap at IoU > 0.8, and is absent below."""
    shown = 0
    for theta in (0.2, 0.6, 0.8):  # cat: IoU 0.91 at 0.2; a high MaS threshold shrinks only the blue box
        req = view_request(cat_session, "285", theta_mas=theta)
        out, ex = compare.render_localization(req), explanation.explain_request(req)
        iou = float(cam_core.box_iou(ex.plain.box, ex.ours.box)[0, 0])
        if iou > 0.8:
            shown += 1
            first = _after_verdicts(out.caption)[0]
            assert first.startswith(f"**{WHY} (box IoU {iou:.2f} > 0.8):**")
            _, height, width = ex.ours_analysis.feature_maps.shape
            assert f"{height} × {width} cells for the whole photo" in first
            assert "off-the-shelf ImageNet classifier trained with GAP" in first  # the default model: GAP-trained
            assert "trained with TAP" in first and "another threshold" in first
            coarse = max(height, width) < views.COARSE_CELLS  # only a coarse map is blamed, and a finer one offered
            assert ("the map is coarse" in first) == coarse == ("finer analysis resolution" in first)
        else:
            assert WHY not in out.caption and _after_verdicts(out.caption)[0].startswith("**Analysed at")
    assert 0 < shown < 3  # both sides of the limit were seen


def test_coincidence_line_at_the_limit_and_with_a_tap_head(cat_session) -> None:
    """Item 4: exactly 0.8 is "not above"; with a TAP-trained head the line does not call the model off the shelf."""
    ex = explanation.explain_request(view_request(cat_session, "285"))
    assert views.coincidence_line(ex, 0.8) == "" and views.coincidence_line(ex, 0.7999) == ""
    assert views.coincidence_line(ex, 0.8001).startswith(f"**{WHY} (box IoU 0.8001 > 0.8):**")  # not "0.80 > 0.8"
    assert views.coincidence_line(ex, 0.8042).startswith(f"**{WHY} (box IoU 0.804 > 0.8):**")
    assert views.coincidence_line(ex, 0.93).startswith(f"**{WHY} (box IoU 0.93 > 0.8):**")
    coarse = dataclasses.replace(ex, ours_analysis=SimpleNamespace(feature_maps=np.zeros((4, 7, 7))))  # 224 px / 32
    line = views.coincidence_line(coarse, 0.9)
    assert "the map is coarse (7 × 7 cells for the whole photo) and comes from" in line
    assert "a finer analysis resolution (the Resolution menu: more map cells)" in line
    fine = dataclasses.replace(ex, ours_analysis=SimpleNamespace(feature_maps=np.zeros((4, 28, 28))))  # 448 / 16
    line = views.coincidence_line(fine, 0.9)
    assert "even at 28 × 28 cells for the whole photo, the map comes from" in line and "finer" not in line
    if tap_partner(cam_core.DEFAULT_MODEL) is None:
        pytest.skip("no TAP-trained partner is shipped for the default model")
    tap = explanation.explain_request(view_request(cat_session, "285", tap=True))
    assert "TAP" in tap.trained_with
    line = views.coincidence_line(tap, 0.95)
    assert "head alone was re-trained with TAP" in line and "off-the-shelf" not in line
