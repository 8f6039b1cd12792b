"""Pixel primitives for the app: colour maps, overlays, boxes, masks; numpy and OpenCV only.

Everything here takes and returns RGB uint8 ``(H, W, 3)`` arrays and has no side effect at import.
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
JET = (colormaps["jet"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)  # (256, 3)
DIVERGING = (colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)  # (256, 3)


def display_size(height: int, width: int, side: int = DISPLAY_SIDE) -> tuple[int, int]:
    """``(H, W)`` scaled so the long side is ``side`` (never upscaled)."""
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-resize an image or map to ``(H, W)``."""
    if image.shape[:2] == size:
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def colorize(values: np.ndarray, lut: np.ndarray = JET) -> np.ndarray:
    """Map float (H, W) in ``[0, 1]`` through a 256-entry colour table to RGB uint8 (H, W, 3)."""
    return lut[np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)]


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5, lut: np.ndarray = JET) -> np.ndarray:
    """Blend a heatmap (float (H, W) in [0, 1]) onto an RGB uint8 (H, W, 3) image of the same size."""
    return cv2.addWeighted(image, 1.0 - alpha, colorize(heatmap, lut), alpha, 0.0)


def draw_box(image: np.ndarray, box: np.ndarray, colour: Colour, label: str = "") -> np.ndarray:
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
