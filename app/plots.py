"""Plots drawn with matplotlib: M+ / M- colour bar, histogram base, P1 scatter, evaluation curves.

Each plot is a :class:`matplotlib.figure.Figure` on its own Agg canvas, so importing this module sets no
backend and touches no global pyplot state. Drawing is still serialised (:func:`plotting`): parts of
matplotlib (the mathtext parser, font caches) are not thread-safe, and the app serves several events at once.
Every plot is returned as RGB uint8 ``(H, W, 3)``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from app.render import DIVERGING, colorize

if TYPE_CHECKING:
    from cam_core.evaluate import EvaluationResult

P = ParamSpec("P")
R = TypeVar("R")
_MATPLOTLIB = threading.Lock()


def plotting(fn: Callable[P, R]) -> Callable[P, R]:
    """Serialise a function that draws with matplotlib: the app serves several events at once."""

    @functools.wraps(fn)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with _MATPLOTLIB:
            return fn(*args, **kwargs)

    return locked


def _figure(width: float, height: float) -> tuple[Figure, FigureCanvasAgg]:
    figure = Figure(figsize=(width, height), dpi=100)
    return figure, FigureCanvasAgg(figure)


def _to_array(canvas: FigureCanvasAgg) -> np.ndarray:
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


@plotting
def signed_pair(positive: np.ndarray, negative: np.ndarray, shared: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour M+ and M- (float (H, W), >= 0) on one shared scale, or each on its own.

    Returns:
        ``(positive_rgb, negative_rgb, colourbar_rgb)``; the colour bar is labelled with the shared
        range (or with "per-map max" when not shared).
    """
    top_pos = float(positive.max()) or 1.0
    top_neg = float(negative.max()) or 1.0
    top = max(top_pos, top_neg) if shared else None
    pos = colorize(positive / (top or top_pos), DIVERGING)
    neg = colorize(negative / (top or top_neg), DIVERGING)
    figure, canvas = _figure(6.0, 1.1)
    # fixed margins: tight_layout squeezed the strip to zero height in so short a figure (a bare axis, no colours)
    figure.subplots_adjust(left=0.04, right=0.96, top=0.92, bottom=0.55)
    axis = figure.add_subplot()
    strip = DIVERGING[None, :, :]  # (1, 256, 3): the very colour table the two maps are drawn with
    axis.imshow(strip, aspect="auto", extent=(0, top or 1.0, 0, 1), interpolation="nearest")
    axis.set_yticks([])
    axis.set_xlabel(
        "activation (same units for M+ and M-)" if shared else "fraction of each map's own max (NOT comparable)"
    )
    return pos, neg, _to_array(canvas)


@plotting
def p1_scatter(
    active_fraction: np.ndarray,
    weight: np.ndarray,
    contribution: np.ndarray,
    gap: np.ndarray,
    tap: np.ndarray,
    selected: int,
    tau: float,
) -> np.ndarray:
    """Two panels over channels: active area vs weight (colour = contribution to the CAM peak), GAP vs TAP.

    All arrays are float (C,); ``selected`` is highlighted.
    """
    figure, canvas = _figure(10.0, 3.6)
    left, right = figure.subplots(1, 2)
    limit = float(np.abs(contribution).max()) or 1.0
    points = left.scatter(active_fraction, weight, c=contribution, cmap="coolwarm", vmin=-limit, vmax=limit, s=10)
    left.scatter([active_fraction[selected]], [weight[selected]], s=120, facecolors="none", edgecolors="black")
    left.axhline(0.0, color="grey", lw=0.8)
    left.set_xlabel(f"active area: share of pixels > τ·max (τ = {tau:.2f})")
    left.set_ylabel("class weight W[c, k]")
    left.set_title("small-area channels with large weights make CAM peaky", fontsize=9)
    figure.colorbar(points, ax=left, label="contribution to CAM peak")
    right.scatter(gap, tap, s=8, c=np.where(weight > 0, "#c0392b", "#2c7fb8"))
    right.scatter([gap[selected]], [tap[selected]], s=120, facecolors="none", edgecolors="black")
    top = float(max(gap.max(), tap.max(), 1e-6))
    right.plot([0, top], [0, top], color="grey", lw=0.8, ls="--")
    right.set_xlabel("GAP value (mean over all pixels)")
    right.set_ylabel(f"TAP value (mean over active pixels, τ = {tau:.2f})")
    right.set_title("TAP lifts small-area channels (red: W > 0, blue: W < 0)", fontsize=9)
    figure.tight_layout()
    return _to_array(canvas)


@plotting
def curves_plot(result: EvaluationResult) -> np.ndarray:
    """BoxAcc(delta = 0.5, all contours) against theta for every swept configuration."""
    figure, canvas = _figure(6.4, 3.2)
    axis = figure.subplots()
    for name, metrics in result.configs.items():
        if metrics.sweep and metrics.thresholds:
            axis.plot(
                metrics.thresholds, metrics.curves["50"], label=f"{name} (max {metrics.maxboxacc_v2_by_iou['50']:.1f})"
            )
    axis.set_xlabel("θ (MaS: of the max; PaS: of the percentile-rescaled map)")
    axis.set_ylabel("BoxAcc at IoU ≥ 0.5 (%)")
    axis.set_ylim(0, 100)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return _to_array(canvas)
