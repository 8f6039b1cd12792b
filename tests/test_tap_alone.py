"""TAP alone (app/tap_alone.py and its place in the Why TAP tab): GAP head vs TAP head under one rule, and one
story about TAP in the menu, the caption and docs/tap_training.md."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np

import cam_core
from app import models, tap_alone
from app.events import event
from app.inputs import VIEW, Controls
from app.state import get_analysis
from app.tabs import why_tap

ROOT = Path(__file__).resolve().parent.parent
NWC_PAS = Controls(0.2, 0.35, 90.0, True, True, True)  # TAP on: ignored, both heads get NWC+PaS
RAW = event(why_tap.render_tap_alone, VIEW)


def _numbers(text: str) -> list[str]:
    return re.findall(r"[+−-]\d+\.\d", text.replace("−", "-"))


def test_measured_numbers_are_the_docs_table() -> None:
    """Each pair's line in the caption is the docs' "TAP − GAP, <pair> @ <same>" row (top-1, V2 cam, V2 nwc+pas)."""
    doc = (ROOT / "docs" / "tap_training.md").read_text(encoding="utf-8")
    for where, line in tap_alone.MEASURED.items():
        row = next(r for r in doc.splitlines() if r.startswith(f"| **TAP − GAP, {where} pair @ {where}**"))
        cells = [c.strip() for c in row.split("|")[2:-1]]  # top-1, GT-known cam, GT-known nwc+pas, V2 cam, V2 nwc+pas
        expected = [cells[3], cells[4], cells[0]]  # the caption's order: V2 cam, V2 nwc+pas, top-1 (with intervals)
        assert _numbers(line) == _numbers(" ".join(expected)), (where, line, expected)


def test_menu_caption_and_cards_tell_one_story() -> None:
    """The TAP entry of the model menu: the verdict and the 448 / 16 pair's V2 differences from its cards
    (53.89 - 51.67 = +2.2 with plain CAM, 56.94 - 62.78 = -5.8 with NWC+PaS), the caption's numbers."""
    label = dict((v, lbl) for lbl, v in models.model_choices())["lite0_tap_head"]
    assert models.TAP_VERDICT in label and "GT-known" not in label
    assert "at 448 px / 16: MaxBoxAccV2 +2.2 (CAM) / -5.8 (NWC+PaS), top-1 +0.8 vs its GAP control" in label
    assert _numbers(tap_alone.MEASURED["448/16"])[:3] == ["+2.2", "-2.5", "+5.6"]
    assert _numbers(tap_alone.MEASURED["448/16"])[3] == "-5.8"


def test_gap_control_pairs() -> None:
    assert models.gap_control(cam_core.DEFAULT_MODEL) == "lite0_gap_head"
    assert models.gap_control("lite0_tap_head") == "lite0_gap_head"
    assert models.gap_control("lite0_gap_head") == "lite0_gap_head"
    assert models.gap_control("resnet50") is None


def test_both_heads_under_the_same_rule(cat_session: Any) -> None:
    shown = tap_alone.compare_heads(cat_session, "", NWC_PAS, None)
    assert shown is not None
    assert shown.gap.shape == shown.tap.shape == (*cat_session.size_on_screen, 3)
    assert not np.array_equal(shown.gap, shown.tap)
    config = NWC_PAS.ours_config  # the same rule on both, recomputed by hand through the library
    boxes = [cam_core.localize(get_analysis(cat_session, m), 285, config, cat_session.size_on_screen).box
             for m in ("lite0_gap_head", "lite0_tap_head")]  # fmt: skip
    iou = float(cam_core.box_iou(boxes[0], boxes[1])[0, 0])
    assert "the same rule, **NWC+PaS**" in shown.caption and f"Box IoU GAP vs TAP head **{iou:.2f}**" in shown.caption
    assert "whole network" in shown.caption and "head-only" in shown.caption  # the paper's setting, said
    assert "Measured for this pair** (trained and scored at 448/16;" in shown.caption
    gt = np.asarray([[50, 40, 400, 290]])
    with_gt = tap_alone.compare_heads(cat_session, "", NWC_PAS, gt)
    assert with_gt is not None and "With the ground truth: IoU GAP head" in with_gt.caption


def test_the_tab_handler(cat_session: Any) -> None:
    controls = (0.2, 0.35, 90, False, True, True, "cam")
    gap, tap, caption = RAW(cat_session, "", *controls, "")
    assert Path(gap).is_file() and Path(tap).is_file() and caption.startswith("**TAP alone, on this photo**")
    skipped = RAW(cat_session, "", *controls, "", "compare")  # another tab open: nothing drawn
    assert all(isinstance(v, dict) and v.get("__type__") == "update" and len(v) == 1 for v in skipped)
    assert RAW(None, "", *controls, "") == (None, None, "")
    other = dataclasses.replace(cat_session, model="resnet50")  # no shipped pair: said, no forward pass
    assert RAW(other, "", *controls, "") == (None, None, tap_alone.NO_PAIR)


def test_in_the_browser_tap_alone_and_the_verdict_line(page: Any) -> None:
    """Issue #23 items 3 and 4 on screen: the cat with a typed ground-truth box heads the caption with which rule
    wins; opening Why TAP draws both heads with the caption naming the paper's setting."""
    from playwright.sync_api import expect

    from tests.helpers import show_cat

    show_cat(page)  # the page opens on it (issue #23)
    expect(page.locator("#histogram line.threshold").first).to_be_attached()
    expect(page.locator("#caption").first).to_contain_text("mask covers more than half the photo")  # no GT: coverage
    field = page.locator("#gt-box textarea, #gt-box input").first
    field.fill("50, 40, 400, 290")
    field.press("Enter")
    expect(page.locator("#caption p").first).to_contain_text("plain CAM on this photo: IoU with the ground truth")
    page.get_by_role("tab", name="Why TAP (P1)").click()
    caption = page.locator("#tap-alone-caption")
    expect(caption).to_contain_text("TAP alone, on this photo")
    expect(caption).to_contain_text("whole network")
    expect(caption).to_contain_text("head-only")
    expect(caption).to_contain_text("With the ground truth: IoU GAP head")
    for panel in ("#tap-alone-gap img", "#tap-alone-tap img"):
        expect(page.locator(panel)).to_be_visible()


def test_a_head_still_loading_is_said_not_raised(cat_session: Any, monkeypatch: Any) -> None:
    """An error here would stop the redraws chained after this one (:meth:`app.events.Events.render_rest`)."""
    from app.state import ModelLoading

    def loading(session: Any, model: str) -> Any:
        raise ModelLoading(model, 16, 3.0, "local file")

    monkeypatch.setattr(tap_alone, "get_analysis", loading)
    gap, tap, caption = RAW(cat_session, "", 0.2, 0.35, 90, False, True, True, "cam", "")
    assert (gap, tap) == (None, None)
    assert caption.startswith("**TAP alone**: Loading lite0_gap_head (local file): about 3 s.")
