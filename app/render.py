"""Pictures for the app: colour maps, overlays, boxes, masks, histograms, P1 scatter plots.

Everything here takes and returns RGB uint8 ``(H, W, 3)`` arrays (or writes them as files into
:data:`RENDER_DIR` for Gradio to serve). It never runs the network. Plots use matplotlib's Agg backend;
what changes with a slider is drawn by :mod:`app.html_views` over cached pictures.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import threading
import uuid
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colormaps

from app.histogram import HistogramBase, histogram_base  # noqa: F401  (re-exported: drawn without matplotlib)

DISPLAY_SIDE = 512
"""Long side, in pixels, of every picture the app sends to the browser."""
PLAIN_COLOUR = (0, 200, 255)
OURS_COLOUR = (0, 255, 0)
GT_COLOUR = (255, 215, 0)
_JET = (colormaps["jet"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)  # (256, 3)
_DIVERGING = (colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
P = ParamSpec("P")
R = TypeVar("R")
_MATPLOTLIB = threading.Lock()  # matplotlib (pyplot state, mathtext parser) is not thread-safe
RENDER_DIR = tempfile.mkdtemp(prefix="cam-explainer-")
"""Private folder of every picture file the app writes (served to the browser by Gradio)."""


def display_size(height: int, width: int, side: int = DISPLAY_SIDE) -> tuple[int, int]:
    """``(H, W)`` scaled so the long side is ``side`` (never upscaled)."""
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-resize an image or map to ``(H, W)``."""
    if image.shape[:2] == size:
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def colorize(values: np.ndarray, lut: np.ndarray = _JET) -> np.ndarray:
    """Map float (H, W) in ``[0, 1]`` through a 256-entry colour table to RGB uint8 (H, W, 3)."""
    return lut[np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)]


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5, lut: np.ndarray = _JET) -> np.ndarray:
    """Blend a heatmap (float (H, W) in [0, 1]) onto an RGB uint8 (H, W, 3) image of the same size."""
    return cv2.addWeighted(image, 1.0 - alpha, colorize(heatmap, lut), alpha, 0.0)


def draw_box(image: np.ndarray, box: np.ndarray, colour: tuple[int, int, int], label: str = "") -> np.ndarray:
    """Draw an inclusive ``(x0, y0, x1, y1)`` box (in this image's pixels) with an optional label, in place."""
    x0, y0, x1, y1 = (int(v) for v in box)
    thickness = max(3, round(max(image.shape[:2]) / 150))
    cv2.rectangle(image, (x0, y0), (x1, y1), (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.rectangle(image, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
    if label:
        scale = max(0.55, max(image.shape[:2]) / 800)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        # bottom-left, inside the box: Gradio's own label badge covers the picture's top-left corner
        tx = min(max(x0 + thickness, 0), max(0, image.shape[1] - tw - 8))
        ty = max(th + 6, y1 - thickness - 6)
        cv2.rectangle(image, (tx, ty - th - 5), (tx + tw + 8, ty + 5), (0, 0, 0), -1)
        cv2.putText(image, label, (tx + 4, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 2, cv2.LINE_AA)
    return image


def mask_picture(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Darken the background of ``image`` and tint the foreground of a bool (H, W) mask."""
    tint = cv2.addWeighted(image, 0.6, np.full_like(image, colour), 0.4, 0.0)
    return np.where(mask[:, :, None], tint, image // 4)


def side_by_side(*images: np.ndarray, gap: int = 6) -> np.ndarray:
    """Concatenate same-height RGB images horizontally with a white gap."""
    height = images[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for i, image in enumerate(images):
        parts.extend([spacer] if i else [])
        parts.append(image)
    return np.concatenate(parts, axis=1)


OUTPUT_DIR = os.path.join(RENDER_DIR, "out")
"""One-shot outputs (plots, swipe pictures, API overlays, zips): only the newest :data:`MAX_OUTPUTS` are kept.
Pictures that views keep referring to are written to :data:`RENDER_DIR` itself (``keep=True``) and deleted
by their owner (the statics cache in :mod:`app.callbacks`)."""
MAX_OUTPUTS = 1000
_PRUNE_EVERY = 50
_outputs_written = 0
_OUTPUTS = threading.Lock()
os.makedirs(OUTPUT_DIR, exist_ok=True)


def prune_outputs(keep: int | None = None) -> int:
    """Delete all but the ``keep`` (default :data:`MAX_OUTPUTS`) newest files of :data:`OUTPUT_DIR`.

    Newest by name: :func:`new_path` numbers the files it hands out. Returns how many were deleted.
    """
    keep = MAX_OUTPUTS if keep is None else keep
    names = sorted(os.listdir(OUTPUT_DIR), reverse=True)
    for name in names[keep:]:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(OUTPUT_DIR, name))
    return max(0, len(names) - keep)


def new_path(suffix: str, keep: bool = False) -> str:
    """A fresh, unguessable file path with ``suffix``.

    In :data:`OUTPUT_DIR` (numbered in order and pruned to the newest :data:`MAX_OUTPUTS` every
    :data:`_PRUNE_EVERY` files), or in :data:`RENDER_DIR` itself with ``keep``.
    """
    global _outputs_written
    if keep:
        return os.path.join(RENDER_DIR, f"{uuid.uuid4().hex}{suffix}")
    with _OUTPUTS:
        _outputs_written += 1
        number = _outputs_written
        if number % _PRUNE_EVERY == 0:
            prune_outputs()
    return os.path.join(OUTPUT_DIR, f"{number:012d}-{uuid.uuid4().hex}{suffix}")


def save_png(image: np.ndarray, keep: bool = False) -> str:
    """Write RGB uint8 (H, W, 3) as a fast-compressed PNG (for plots); return its path (see :func:`new_path`)."""
    path = new_path(".png", keep)
    cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return path


def save_jpeg(image: np.ndarray, keep: bool = False) -> str:
    """Write RGB uint8 (H, W, 3) as JPEG (quality 92; for photo-like pictures, ~20x faster than PNG)."""
    path = new_path(".jpg", keep)
    cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def plotting(fn: Callable[P, R]) -> Callable[P, R]:
    """Serialise a function that draws with matplotlib: the app serves several events at once."""

    @functools.wraps(fn)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with _MATPLOTLIB:
            return fn(*args, **kwargs)

    return locked


def _figure_to_array(figure: plt.Figure) -> np.ndarray:
    figure.canvas.draw()
    array = np.asarray(figure.canvas.buffer_rgba())[:, :, :3].copy()
    plt.close(figure)
    return array


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
    pos = colorize(positive / (top or top_pos), _DIVERGING)
    neg = colorize(negative / (top or top_neg), _DIVERGING)
    figure, axis = plt.subplots(figsize=(6.0, 0.75), dpi=100)
    axis.imshow(np.linspace(0, 1, 256)[None, :], aspect="auto", cmap="magma", extent=(0, top or 1.0, 0, 1))
    axis.set_yticks([])
    axis.set_xlabel(
        "activation (same units for M+ and M-)" if shared else "fraction of each map's own max (NOT comparable)"
    )
    figure.tight_layout()
    return pos, neg, _figure_to_array(figure)


def histogram_with_thresholds(base: HistogramBase, mas: float, percentile_value: float, pas: float) -> np.ndarray:
    """Draw the MaS threshold, the percentile P_p and the PaS threshold as vertical lines."""
    picture = base.picture.copy()
    for value, colour, style in ((mas, (50, 50, 50), 0), (percentile_value, (140, 0, 204), 1), (pas, (0, 153, 0), 0)):
        x = round(base.x0_px + value * (base.x1_px - base.x0_px))
        if style:  # dashed marker for P_p
            for y in range(base.top_px, base.bottom_px, 10):
                cv2.line(picture, (x, y), (x, min(y + 5, base.bottom_px)), colour, 2)
        else:
            cv2.line(picture, (x, base.top_px), (x, base.bottom_px), colour, 2, cv2.LINE_AA)
    return picture


@plotting
def p1_scatter(
    active_fraction: np.ndarray, weight: np.ndarray, contribution: np.ndarray, gap: np.ndarray, tap: np.ndarray,
    selected: int, tau: float,
) -> np.ndarray:  # fmt: skip
    """Two panels over channels: active area vs weight (colour = contribution to the CAM peak), GAP vs TAP.

    All arrays are float (C,); ``selected`` is highlighted.
    """
    figure, (left, right) = plt.subplots(1, 2, figsize=(10.0, 3.6), dpi=100)
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
    return _figure_to_array(figure)
