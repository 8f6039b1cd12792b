"""When the improved rule is worse, say so (app/verdict.py): hand-computed lines, and the caption's first line."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app import verdict, views
from app.explanation import explain_arrays
from app.inputs import Controls

NWC_PAS = Controls(0.2, 0.35, 90.0, False, True, True)


@pytest.mark.parametrize(
    ("plain", "ours", "expected"),
    [
        # the rain barrel of issue #23: 0.38 plain, 0.17 improved -> worse by 0.21
        (
            0.38,
            0.17,
            "**NWC+PaS is worse than plain CAM on this photo:** IoU with the ground truth 0.17 vs 0.38 (-0.21)",
        ),
        (0.404, 0.6149, "**NWC+PaS beats plain CAM on this photo:** IoU with the ground truth 0.61 vs 0.40 (+0.21)."),
        (
            0.5012,
            0.4987,
            "**NWC+PaS and plain CAM tie on this photo:** both boxes have IoU 0.50 with the ground truth.",
        ),
    ],
)
def test_gt_verdict_names_the_winner_and_the_margin(plain: float, ours: float, expected: str) -> None:
    assert verdict.gt_verdict("NWC+PaS", plain, ours).startswith(expected)


def test_coverage_verdict_only_above_half_with_its_threshold() -> None:
    assert verdict.coverage_verdict("NWC+PaS", 0.5, 0.1, "x") == ""  # exactly half is not "more than half"
    line = verdict.coverage_verdict("NWC+PaS", 0.673, 0.14, "PaS: θ·P90 = 0.35 × 0.412")
    # 0.35 x 0.412 = 0.1442; the threshold as given, the share rounded to whole percent
    assert line.startswith(
        "**The NWC+PaS mask covers more than half the photo** (67 % of its pixels) at threshold 0.140"
    )
    assert "(PaS: θ·P90 = 0.35 × 0.412)" in line


def test_verdict_lines_order_and_without_ground_truth() -> None:
    payload: dict[str, Any] = {"ours": {"foreground_fraction": 0.8}}
    assert [line[:10] for line in verdict.verdict_lines("CAM", payload, 0.2, "MaS")] == ["**The CAM "]
    payload["ground_truth"] = {"iou_plain": 0.5, "iou_ours": 0.2}
    lines = verdict.verdict_lines("CAM", payload, 0.2, "MaS")
    assert lines[0].startswith("**CAM is worse") and lines[1].startswith("**The CAM mask")
    payload["ours"]["foreground_fraction"] = 0.3
    assert len(verdict.verdict_lines("CAM", payload, 0.2, "MaS")) == 1


def test_the_caption_opens_with_the_verdict(cat_session: Any) -> None:
    """On the cat at 448 / 16, NWC+PaS (p 90, θ 0.35) keeps most of the photo: the caption's first line says so
    with the threshold; with a ground-truth box the first line compares both IoUs, recomputed here from the JSON."""
    ex = explain_arrays(cat_session, "", NWC_PAS)
    payload = views.explanation_json(ex, None)
    fraction = payload["ours"]["foreground_fraction"]
    assert fraction > 0.5  # measured: about 0.67
    first = views.caption(ex, payload).split("\n\n")[0]
    assert first.startswith(f"**The NWC+PaS mask covers more than half the photo** ({100 * fraction:.0f} % ")
    assert f"threshold {ex.ours.threshold:.3f} (PaS: θ·P90 = 0.35 × {ex.percentile_value:.3f})" in first
    gt = np.asarray([payload["plain"]["box"]])  # the blue box itself as the ground truth: plain IoU 1, NWC+PaS's less
    payload = views.explanation_json(ex, gt)
    plain, ours = payload["ground_truth"]["iou_plain"], payload["ground_truth"]["iou_ours"]
    first = views.caption(ex, payload).split("\n\n")[0]
    assert plain == 1.0 and round(ours, 2) < 1.0, ours
    assert first.startswith(
        f"**NWC+PaS is worse than plain CAM on this photo:** IoU with the ground truth {ours:.2f} vs 1.00 "
        f"({ours - 1:+.2f})"
    )
