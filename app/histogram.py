"""The percentile histogram, drawn directly with PIL (about 2 ms, thread-safe, no matplotlib lock).

It is drawn once per (photo, class, NWC) on the first slider update of a new photo, so its cost sits on
the slider path; with matplotlib it took ~1 s and one global lock serialised every session's first update
under load (``bench/bench_load.py``). Threshold lines are drawn later, over the picture (SVG in the page,
:func:`app.render.histogram_with_thresholds` in exports), at the pixel columns this module reports.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = (640, 280)  # (W, H) of the picture
BINS = 64
BAR = (143, 163, 191)
INK = (40, 40, 40)
GRID = (225, 225, 225)
LEGEND = (((50, 50, 50), False, "MaS θ·max"), ((140, 0, 204), True, "P_p"), ((0, 153, 0), False, "PaS θ·P_p"))
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 14, 12, 50  # plot margins in pixels


@dataclass(frozen=True)
class HistogramBase:
    """A cached histogram picture (RGB uint8 (H, W, 3)) and where x = 0, x = 1, and the plot's top and bottom are."""

    picture: np.ndarray
    x0_px: float
    x1_px: float
    top_px: int
    bottom_px: int


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (shipped with matplotlib's data files): Greek letters and the middle dot render."""
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


def _dashed(draw: ImageDraw.ImageDraw, xy: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
    x0, y, x1, _ = xy
    for start in range(x0, x1, 8):
        draw.line((start, y, min(start + 4, x1), y), fill=colour, width=2)


def _power_of_ten(k: int) -> str:
    return "1" if k == 0 else "10" if k == 1 else "10" + str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def histogram_base(values: np.ndarray) -> HistogramBase:
    """Histogram (64 bins over [0, 1], log counts) of a normalised map; thresholds are drawn later.

    Args:
        values: float (H, W), the normalised map, values in [0, 1].
    """
    width, height = SIZE
    x0, x1, top, bottom = _LEFT, width - _RIGHT, _TOP, height - _BOTTOM
    counts, _ = np.histogram(values.ravel(), bins=BINS, range=(0.0, 1.0))
    decades = max(1, math.ceil(math.log10(max(int(counts.max()), 1) + 1)))  # y axis: 10^0 .. 10^decades
    picture = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(picture)
    small, label = _font(14), _font(15)
    y_of = lambda count: bottom - (bottom - top) * math.log10(count) / decades  # noqa: E731 (count >= 1)
    for k in range(decades + 1):  # y grid and labels at powers of ten
        y = round(y_of(10**k))
        draw.line((x0, y, x1, y), fill=GRID)
        draw.text((x0 - 6, y), _power_of_ten(k), fill=INK, font=small, anchor="rm")
    bar_width = (x1 - x0) / BINS
    for i, count in enumerate(counts):
        if count > 0:
            left = x0 + i * bar_width
            draw.rectangle((round(left), round(y_of(count)), round(left + bar_width) - 1, bottom), fill=BAR)
    for tick in np.linspace(0.0, 1.0, 6):  # x axis
        x = round(x0 + tick * (x1 - x0))
        draw.line((x, bottom, x, bottom + 4), fill=INK)
        draw.text((x, bottom + 6), f"{tick:.1f}", fill=INK, font=small, anchor="mt")
    draw.rectangle((x0, top, x1, bottom), outline=INK)
    draw.text(((x0 + x1) // 2, height - 4), "normalised CAM value", fill=INK, font=label, anchor="mb")
    axis_label = Image.new("RGB", (bottom - top, 20), "white")
    ImageDraw.Draw(axis_label).text(((bottom - top) // 2, 10), "pixels (log scale)", fill=INK, font=label, anchor="mm")
    picture.paste(axis_label.rotate(90, expand=True), (4, top))
    draw.rectangle((x1 - 148, top + 4, x1 - 4, top + 10 + 20 * len(LEGEND)), fill="white", outline=GRID)
    for row, (colour, dashed, name) in enumerate(LEGEND):  # legend, upper right
        y = top + 17 + 20 * row
        if dashed:
            _dashed(draw, (x1 - 140, y, x1 - 112, y), colour)
        else:
            draw.line((x1 - 140, y, x1 - 112, y), fill=colour, width=2)
        draw.text((x1 - 105, y), name, fill=INK, font=small, anchor="lm")
    return HistogramBase(np.asarray(picture), float(x0), float(x1), top, bottom)


def histogram_with_thresholds(base: HistogramBase, mas: float, percentile_value: float, pas: float) -> np.ndarray:
    """Draw the MaS threshold, the percentile P_p and the PaS threshold as vertical lines (burnt in, with cv2)."""
    picture = base.picture.copy()
    for value, colour, style in ((mas, (50, 50, 50), 0), (percentile_value, (140, 0, 204), 1), (pas, (0, 153, 0), 0)):
        x = round(base.x0_px + value * (base.x1_px - base.x0_px))
        if style:  # dashed marker for P_p
            for y in range(base.top_px, base.bottom_px, 10):
                cv2.line(picture, (x, y), (x, min(y + 5, base.bottom_px)), colour, 2)
        else:
            cv2.line(picture, (x, base.top_px), (x, base.bottom_px), colour, 2, cv2.LINE_AA)
    return picture
