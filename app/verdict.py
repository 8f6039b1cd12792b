"""When the improved rule is worse, say so (issue #23 item 4): the first line under the panels.

Gradio-free. With a ground-truth box the line names the rule whose box matches it better and by how much; without
one, it says when the improved mask covers more than half the photo, with the threshold that made it.
"""

from __future__ import annotations

from typing import Any

HALF = 0.5
"""Above this share of the photo's pixels, the improved mask is said to cover most of the photo."""


def gt_verdict(name: str, iou_plain: float, iou_ours: float, baseline: str = "plain CAM") -> str:
    """Which rule's box matches the ground truth better, and by how much (IoUs compared at two decimals).

    Args:
        name: the improved rule's name (``"NWC+PaS"``).
        iou_plain, iou_ours: each box's best IoU with the ground-truth boxes, in [0, 1].
        baseline: the blue panel's map (``"plain CAM"``; ``"Grad-CAM"`` with another method).

    Returns:
        Markdown, e.g. ``"**NWC+PaS is worse than plain CAM on this photo:** IoU with the ground truth 0.17 vs 0.38
        (−0.21)."``
    """
    plain, ours = round(iou_plain, 2), round(iou_ours, 2)
    if ours < plain:
        return (
            f"**{name} is worse than {baseline} on this photo:** IoU with the ground truth {ours:.2f} vs {plain:.2f} "
            f"({ours - plain:+.2f}); here the blue box is the better one."
        )
    if ours > plain:
        return (
            f"**{name} beats {baseline} on this photo:** IoU with the ground truth {ours:.2f} vs {plain:.2f} "
            f"({ours - plain:+.2f})."
        )
    return f"**{name} and {baseline} tie on this photo:** both boxes have IoU {ours:.2f} with the ground truth."


def coverage_verdict(name: str, fraction: float, threshold: float, rule: str) -> str:
    """``""`` unless the improved mask covers more than :data:`HALF` of the photo; then says so, with the threshold.

    Args:
        name: the improved rule's name.
        fraction: the improved mask's share of the photo's pixels, in [0, 1].
        threshold: the threshold that made the mask, on the normalised map, in [0, 1].
        rule: how that threshold came about (``"PaS: θ·P90 = 0.35 × 0.41"``).
    """
    if fraction <= HALF:
        return ""
    return (
        f"**The {name} mask covers more than half the photo** ({100 * fraction:.0f} % of its pixels) at threshold "
        f"{threshold:.3f} ({rule}): its box says little about where the object is. A higher θ (or, with PaS, a "
        "higher p) tightens it."
    )


def verdict_lines(
    name: str, payload: dict[str, Any], threshold: float, rule: str, baseline: str = "plain CAM"
) -> list[str]:
    """The lines of :func:`gt_verdict` (with a ground truth in ``payload``) and :func:`coverage_verdict`, in that
    order, without empty ones (``payload``: :func:`app.explanation.explanation_json`'s)."""
    gt = payload.get("ground_truth")
    lines = [] if gt is None else [gt_verdict(name, gt["iou_plain"], gt["iou_ours"], baseline)]
    lines.append(coverage_verdict(name, payload["ours"]["foreground_fraction"], threshold, rule))
    return [line for line in lines if line]
