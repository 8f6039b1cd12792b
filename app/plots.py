"""Plots drawn with matplotlib: colour bars, histogram base, P1 scatter, evaluation curves.

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
def colour_bar(strip: np.ndarray, low: float, high: float, label: str) -> np.ndarray:
    """A horizontal colour bar: the colours of ``strip`` (uint8 (N, 3), low to high) over ``[low, high]``.

    Returns:
        RGB uint8 (110, 400, 3): the strip with ticks in the map's units and ``label`` under it (a tick at 0
        when the range spans it).
    """
    figure, canvas = _figure(4.0, 1.1)
    # fixed margins: tight_layout squeezed the strip to zero height in so short a figure (a bare axis, no colours)
    figure.subplots_adjust(left=0.06, right=0.94, top=0.92, bottom=0.5)
    axis = figure.add_subplot()
    axis.imshow(strip[None, :, :], aspect="auto", extent=(low, high, 0, 1), interpolation="nearest")
    if low < 0 < high:
        axis.set_xticks([low, low / 2, 0.0, high / 2, high])
        axis.axvline(0.0, color="black", lw=0.8)
    axis.set_yticks([])
    axis.set_xlabel(label)
    return _to_array(canvas)


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


CURVE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)))
"""Line style per method in :func:`curves_plot`, in the table's order (plain CAM solid)."""


@plotting
def curves_plot(result: EvaluationResult) -> np.ndarray:
    """BoxAcc(delta = 0.5, all contours) against theta for every swept configuration: one colour per rule (MaS, PaS,
    NWC, NWC+PaS), one line style per method (plain CAM solid); with CAM-family rows the legend sits beside the
    axes, so that it covers no curve."""
    swept = {name: m for name, m in result.configs.items() if m.sweep and m.thresholds}
    methods = list(dict.fromkeys(result.settings.get(name, {}).get("method", "cam") for name in swept))
    figure, canvas = _figure(6.4 if len(methods) < 2 else 8.6, 3.2)
    axis = figure.subplots()
    for name, metrics in swept.items():
        settings = result.settings.get(name, {})
        rule = 2 * bool(settings.get("nwc")) + (settings.get("rule") == "pas")  # 0 MaS, 1 PaS, 2 NWC, 3 NWC+PaS
        style = CURVE_STYLES[methods.index(settings.get("method", "cam")) % len(CURVE_STYLES)]
        label = f"{name} (max {metrics.maxboxacc_v2_by_iou['50']:.1f})"
        axis.plot(metrics.thresholds, metrics.curves["50"], color=f"C{rule}", linestyle=style, label=label)
    axis.set_xlabel("θ (MaS: of the max; PaS: of the percentile-rescaled map)")
    axis.set_ylabel("BoxAcc at IoU ≥ 0.5 (%)")
    axis.set_ylim(0, 100)
    if len(methods) < 2:
        axis.legend(fontsize=8)
    else:
        axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1 + (len(swept) > 10))
    figure.tight_layout()
    return _to_array(canvas)
