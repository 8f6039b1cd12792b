"""The M+ / M- tab's pictures: the signed CAM in logit units, and M+ and M- over the photo.

The signed map ``M = M+ - M-`` is plain CAM before any normalisation. With GAP and one linear layer,
``mean_hw(M_c) + b_c`` is the logit of class ``c`` (:func:`cam_core.models.check_cam_exact` checks it when a
model loads), so ``M`` is in logit units: each of the ``h · w`` cells adds ``M(i, j) / (h · w)`` to the
logit. Its colour scale is symmetric about 0 and shared by every class of the photo (:func:`signed_scale`),
so the same colour means the same logit share whichever class is picked.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import cam_core
from app import plots, render
from app.explanation import short_name
from cam_core.cam import Analysis

SCALE_CLASSES = 5
"""The signed scale is the largest ``|M|`` over this many top classes of the photo (and the picked one)."""


def signed_scale(analysis: Analysis, class_index: int, size: tuple[int, int]) -> float:
    """``max |M_c|`` over the photo's top-:data:`SCALE_CLASSES` classes and ``class_index``, at ``size``.

    Args:
        analysis: the photo's analysis.
        class_index: the class on screen (counted even when outside the top classes).
        size: ``(H, W)`` the maps are shown at (the maximum of the upsampled maps, as drawn).

    Returns:
        The scale in logits, > 0 (1.0 when every map is all zeros).
    """
    classes = {i for i, _, _ in analysis.top_k(SCALE_CLASSES)} | {class_index}
    top = max(float(np.abs(cam_core.upsample(analysis.cam(c, "cam"), size)).max()) for c in classes)
    return top if top > 0 else 1.0


class LogitCheck(NamedTuple):
    """``mean_hw(M_c) + b_c`` against the model's logit (float64 sums of the float32 arrays)."""

    mean: float
    bias: float
    logit: float

    @property
    def total(self) -> float:
        """``mean + bias``: the logit a GAP head gives."""
        return self.mean + self.bias


def logit_check(analysis: Analysis, class_index: int) -> LogitCheck:
    """The signed map's mean over the feature grid, the class bias, and the logit the model computed."""
    mean = float(analysis.cam(class_index, "cam").astype(np.float64).mean())
    return LogitCheck(mean, float(analysis.bias[class_index]), float(analysis.logits[class_index]))


class WeightsViews(NamedTuple):
    """The M+ / M- tab: pictures RGB uint8, colour bars RGB uint8, caption Markdown."""

    signed: np.ndarray
    signed_bar: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    bar: np.ndarray
    caption: str


def signed_strip(steps: int = 255) -> np.ndarray:
    """The signed map's colours from ``-scale`` to ``+scale`` as drawn over a mid-grey photo: uint8 (steps, 3)."""
    grey = np.full((1, steps, 3), 128, np.uint8)
    return render.signed_overlay(grey, np.linspace(-1.0, 1.0, steps)[None, :], 1.0)[0]


def weights_views(photo: np.ndarray, analysis: Analysis, class_index: int, shared: bool) -> WeightsViews:
    """Signed map, M+ and M- over ``photo`` (RGB uint8 (H, W, 3), display size), colour bars and caption.

    ``shared``: M+ and M- on one scale (their larger peak) rather than each on its own.
    """
    c, size = class_index, photo.shape[:2]
    signed = cam_core.upsample(analysis.cam(c, "cam"), size)
    scale = signed_scale(analysis, c, size)
    positive = np.clip(cam_core.upsample(analysis.cam(c, "positive"), size), 0, None)  # bicubic overshoot clipped
    negative = np.clip(cam_core.upsample(analysis.cam(c, "negative"), size), 0, None)
    top_pos, top_neg = float(positive.max()) or 1.0, float(negative.max()) or 1.0
    top = max(top_pos, top_neg)
    pos = render.overlay(photo, positive / (top if shared else top_pos))
    neg = render.overlay(photo, negative / (top if shared else top_neg))
    unit = "M+ and M− in logit units (one scale)" if shared else "fraction of each map's own max (NOT comparable)"
    bar = plots.colour_bar(render.SEQUENTIAL, 0.0, top if shared else 1.0, unit)
    signed_bar = plots.colour_bar(signed_strip(), -scale, scale, "M = M+ − M− in logits (blue: against, red: for)")
    return WeightsViews(
        render.signed_overlay(photo, signed, scale), signed_bar, pos, neg, bar,
        _caption(analysis, c, positive, negative, scale, shared),
    )  # fmt: skip


def _caption(analysis: Analysis, c: int, positive: np.ndarray, negative: np.ndarray, scale: float, shared: bool) -> str:
    weights, check = analysis.class_weights[c], logit_check(analysis, c)
    h, w = analysis.feature_size
    name = short_name(analysis.class_names[c])
    if analysis.pooling == "gap":
        logit = (
            f"**Logit check:** mean of M over the {h} × {w} grid = {check.mean:.3f}, plus the bias "
            f"b = {check.bias:+.3f}, gives {check.total:.3f}; the model's logit for {name} is {check.logit:.3f}. "
            f"So each cell adds M / {h * w} to the logit."
        )
    else:
        logit = (
            f"**Logit check:** this model pools with TAP (τ = {analysis.tap_tau:g}), so its logit {check.logit:.3f} "
            f"is not mean(M) + b = {check.mean:.3f} {check.bias:+.3f} = {check.total:.3f} (TAP averages only "
            "each channel's active cells); M is still in the units of W · F."
        )
    return (
        f"**Signed CAM M = M+ − M−** for **{name}**, in logit units: red cells are evidence for the class, blue "
        f"against it; the photo (in grey) shows through where M ≈ 0. Scale ±{scale:.2f}: the largest |M| over "
        f"this photo's top-{SCALE_CLASSES} classes and the picked one, the same for every class of this photo, "
        f"so colours compare across classes. {logit}\n\n"
        f"**{int((weights < 0).sum())}** of {weights.size} weights of {name} are negative. Peak of M+ = "
        f"{positive.max():.2f}, peak of M− = {negative.max():.2f}; mean M+ = {positive.mean():.2f}, mean M− = "
        f"{negative.mean():.2f}. Plain CAM = M+ − M−; NWC keeps only M+."
        + ("" if shared else " **Per-map scale: the two colours are not comparable.**")
    )
