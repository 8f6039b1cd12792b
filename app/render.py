"""Pixel primitives for the app: colour maps, overlays, boxes and their labels, masks; numpy and OpenCV only.

Pictures here are RGB uint8 ``(H, W, 3)`` arrays (grey levels ``(H, W)``); nothing happens at import but
reading matplotlib's colour tables. :func:`place_labels` decides where box labels go, for the SVG panels
(:mod:`app.html_views`) and for the burnt-in pictures alike.

Plots are in :mod:`app.plots`, files in :mod:`app.files`, and what changes with a slider is drawn by
:mod:`app.html_views` over cached pictures.
"""

from __future__ import annotations

import cv2
import numpy as np
from matplotlib import colormaps

DISPLAY_SIDE = 512
"""Long side, in pixels, of every picture the app sends to the browser."""
Colour = tuple[int, int, int]
PLAIN_COLOUR: Colour = (0, 200, 255)
OURS_COLOUR: Colour = (0, 255, 0)
GT_COLOUR: Colour = (255, 215, 0)


def colour_table(name: str, entries: int = 256) -> np.ndarray:
    """Matplotlib's colour map ``name`` as a table: uint8 (entries, 3) RGB, entry ``k`` at ``k / (entries - 1)``."""
    return np.rint(colormaps[name].resampled(entries)(np.arange(entries))[:, :3] * 255).astype(np.uint8)


COLOUR_MAPS: dict[str, np.ndarray] = {name: colour_table(name) for name in ("inferno", "viridis", "jet")}
"""The heatmap colour maps the browser offers (uint8 (256, 3) each), the default first.

**inferno** is the default: perceptually uniform (equal steps in value look like equal steps in colour)
and monotonic in lightness (dark = low, bright = high), so the map reads the same in greyscale print and
for colour-blind readers, and it invents no edges. **jet**, common in CAM papers, is neither: its
lightness peaks at cyan and yellow, which draws bands and boundaries the map does not have. **viridis** is
a second perceptually uniform map for readers who prefer it.
"""
DEFAULT_COLOUR_MAP = "inferno"
DEFAULT_OPACITY = 0.5
"""The heatmap's opacity over the photo until the browser's slider moves (and in server-drawn pictures)."""
SEQUENTIAL = COLOUR_MAPS[DEFAULT_COLOUR_MAP]
JET = COLOUR_MAPS["jet"]
DIVERGING = colour_table("RdBu_r", 255)
"""Signed maps: uint8 (255, 3), blue (negative) - white - red (positive); entry 127 is 0, exactly neutral."""
SIGNED_OPACITY = 0.85
"""Opacity of the signed map's colour at ``|M| = scale``; it falls as ``sqrt(|M| / scale)`` to 0 (the photo
alone) at M = 0: a square root, so a class whose map is a quarter of the photo's scale still shows at half
opacity. The colour itself is linear in M; the colour bar is drawn with the same rule."""


def display_size(height: int, width: int, side: int = DISPLAY_SIDE) -> tuple[int, int]:
    """``(H, W)`` scaled so the long side is ``side`` (never upscaled)."""
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-resize an image or map to ``(H, W)``."""
    if image.shape[:2] == size:
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def colorize(values: np.ndarray, lut: np.ndarray = SEQUENTIAL) -> np.ndarray:
    """Map float (H, W) in ``[0, 1]`` through a 256-entry colour table to RGB uint8 (H, W, 3)."""
    return lut[np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)]


def overlay(
    image: np.ndarray, heatmap: np.ndarray, alpha: float = DEFAULT_OPACITY, lut: np.ndarray = SEQUENTIAL
) -> np.ndarray:
    """Blend a heatmap (float (H, W) in [0, 1]) onto an RGB uint8 (H, W, 3) image of the same size.

    The default (inferno at opacity 0.5) is what the browser shows before its colour controls are moved.
    """
    return cv2.addWeighted(image, 1.0 - alpha, colorize(heatmap, lut), alpha, 0.0)


def grey_levels(heatmap: np.ndarray) -> np.ndarray:
    """A normalised map (float (H, W) in [0, 1]) as uint8 (H, W) levels: the index :func:`colorize` looks up."""
    return np.clip(np.rint(heatmap * 255), 0, 255).astype(np.uint8)


def signed_overlay(image: np.ndarray, signed: np.ndarray, scale: float) -> np.ndarray:
    """A signed map over a greyed photo: red > 0, blue < 0, more opaque with ``|value|``, the photo alone at 0.

    Args:
        image: RGB uint8 (H, W, 3); shown in grey so its own colours are not read as the map's.
        signed: float (H, W), any sign, in the map's units (logits for a CAM).
        scale: the ``|value|`` drawn fully saturated (> 0); larger values are clipped to it.

    Returns:
        RGB uint8 (H, W, 3): ``(1 - a) · grey + a · DIVERGING[v]`` with ``a = SIGNED_OPACITY · sqrt(|v| / scale)``.
    """
    if not scale > 0:
        raise ValueError(f"`scale` must be > 0, got {scale}")
    fraction = np.clip(signed / scale, -1.0, 1.0)  # (H, W) in [-1, 1]
    colour = DIVERGING[np.rint(fraction * 127 + 127).astype(np.intp)].astype(np.float32)  # (H, W, 3)
    grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB).astype(np.float32)
    alpha = (SIGNED_OPACITY * np.sqrt(np.abs(fraction)))[:, :, None]  # (H, W, 1)
    return np.rint((1 - alpha) * grey + alpha * colour).astype(np.uint8)


Rect = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)`` in picture pixels, ``x1, y1`` exclusive (a label's area)."""
# where a label may sit, in order of preference: outside the box first (it never covers the object),
# then inside (boxes that fill the picture leave no room outside)
_PLACES = ("above-left", "below-left", "above-right", "below-right",
           "inside-top-left", "inside-bottom-left", "inside-top-right", "inside-bottom-right")  # fmt: skip


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _edges(box: np.ndarray, stroke: float) -> list[Rect]:
    """The four strokes of an inclusive box drawn ``stroke`` px wide (black outline included), as areas."""
    x0, y0, x1, y1 = (float(v) for v in box)
    half = stroke / 2 + 1
    return [
        (x0 - half, y0 - half, x1 + 1 + half, y0 + half),  # top
        (x0 - half, y1 + 1 - half, x1 + 1 + half, y1 + 1 + half),  # bottom
        (x0 - half, y0 - half, x0 + half, y1 + 1 + half),  # left
        (x1 + 1 - half, y0 - half, x1 + 1 + half, y1 + 1 + half),  # right
    ]


def _candidate(
    box: np.ndarray, size: tuple[float, float], place: str, gap: float, x_range: tuple[float, float]
) -> Rect:
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = size
    left = place.endswith("left")
    inside = place.startswith("inside")
    x = (x0 + gap if left else x1 + 1 - gap - w) if inside else (x0 if left else x1 + 1 - w)
    low, high = x_range
    x = min(max(x, low), max(low, high - w))  # slid along the edge to stay in the picture (or its part)
    if inside:
        y = y0 + gap if "top" in place else y1 + 1 - gap - h
    else:
        y = y0 - gap - h if place.startswith("above") else y1 + 1 + gap
    return (x, y, x + w, y + h)


def place_labels(
    boxes: list[np.ndarray],
    sizes: list[tuple[float, float]],
    picture: tuple[int, int],
    stroke: float,
    x_range: tuple[float, float] | None = None,
) -> list[Rect]:
    """Where each box's label goes: in the picture, off every box edge, apart from the other labels.

    Each label tries :data:`_PLACES` in order (outside the box first); a place is scored by how many
    labels already placed it overlaps (worst), how many box edges cross it, whether it sits inside a
    small box (on the object), then its rank. Smaller boxes are placed first: they have fewer good places.

    Args:
        boxes: inclusive ``(x0, y0, x1, y1)`` boxes in picture pixels.
        sizes: ``(width, height)`` of each box's label, in picture pixels.
        picture: ``(H, W)``.
        stroke: the boxes' line width in pixels.
        x_range: ``(x0, x1)`` the labels must sit between (default: the picture's width); the swipe view keeps
            each picture's labels in the half of it that is on screen (:func:`app.views.swipe_pictures`).

    Returns:
        One :data:`Rect` per box, in the order given.
    """
    height, width = picture
    gap = stroke / 2 + 3
    edges = [edge for box in boxes for edge in _edges(box, stroke)]
    placed: dict[int, Rect] = {}
    order = sorted(range(len(boxes)), key=lambda i: float((boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])))
    for i in order:
        box, (w, h) = boxes[i], sizes[i]
        small = (box[2] - box[0] + 1) < 2 * w or (box[3] - box[1] + 1) < 3 * h
        best: tuple[tuple[float, ...], Rect] | None = None
        for rank, place in enumerate(_PLACES):
            rect = _candidate(box, (w, h), place, gap, x_range or (0.0, float(width)))
            if rect[1] < 0 or rect[3] > height:
                continue
            score = (
                sum(_overlap(rect, other) for other in placed.values()),
                sum(_overlap(rect, edge) for edge in edges),
                float(small and place.startswith("inside")),
                rank,
            )
            if best is None or score < best[0]:
                best = (score, rect)
        placed[i] = best[1] if best else (0.0, 0.0, float(w), float(h))  # taller than the picture: top-left
    return [placed[i] for i in range(len(boxes))]


def box_thickness(image: np.ndarray) -> int:
    """Line width of burnt-in boxes: ~1/150 of the picture's long side, at least 3 px."""
    return max(3, round(max(image.shape[:2]) / 150))


def draw_box(image: np.ndarray, box: np.ndarray, colour: Colour) -> np.ndarray:
    """Draw an inclusive ``(x0, y0, x1, y1)`` box (in this image's pixels), black-outlined, in place."""
    x0, y0, x1, y1 = (int(v) for v in box)
    thickness = box_thickness(image)
    cv2.rectangle(image, (x0, y0), (x1, y1), (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.rectangle(image, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
    return image


def draw_labelled_boxes(
    image: np.ndarray, boxes: list[tuple[np.ndarray, Colour, str]], x_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Draw boxes, then their labels where :func:`place_labels` puts them (never on an edge or each other, between
    ``x_range`` when given), in place."""
    scale = max(0.55, max(image.shape[:2]) / 800)
    for box, colour, _ in boxes:
        draw_box(image, box, colour)
    sizes = []
    for _, _, label in boxes:
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        sizes.append((tw + 8.0, th + base + 6.0))
    rects = place_labels([box for box, _, _ in boxes], sizes, image.shape[:2], box_thickness(image) + 2, x_range)
    for (_, colour, label), (x0, y0, x1, y1) in zip(boxes, rects, strict=True):
        if label:
            cv2.rectangle(image, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), (0, 0, 0), -1)
            baseline = int(y1) - 3 - cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)[1]
            cv2.putText(image, label, (int(x0) + 4, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 2, cv2.LINE_AA)
    return image


def mask_picture(image: np.ndarray, mask: np.ndarray, colour: Colour) -> np.ndarray:
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
