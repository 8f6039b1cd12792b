"""The percentile histogram, drawn directly with PIL (about 2 ms, thread-safe, no matplotlib lock).

It is drawn once per (photo, class, NWC) on the first slider update of a new photo, so its cost sits on
the slider path; with matplotlib it took ~1 s and one global lock serialised every session's first update
under load (``bench/bench_load.py``). Threshold lines and the legend are drawn later, over the picture
(SVG and HTML in the page, :func:`histogram_with_thresholds` in exports), at the pixel columns this
module reports: only the lines of the rules that are on are shown, and the legend lists only what is shown.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = (640, 300)  # (W, H) of the picture
BINS = 64
OURS_BAR = (176, 222, 176)  # the improved (green) panel's map: filled bars
PLAIN_STEP = (0, 110, 190)  # the plain (blue) panel's map: a step outline over them
INK = (40, 40, 40)
GRID = (225, 225, 225)
Line = tuple[float, tuple[int, int, int], bool, str]
"""A threshold line: normalised value, colour, dashed, legend text."""
FONT_PX = 22  # axis text: >= 10 CSS px even at a phone's ~300 px wide panel (legible), ~14 px on a desktop
_LEFT, _RIGHT, _TOP, _BOTTOM = 86, 24, 18, 68  # plot margins in pixels, room for FONT_PX text


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


def _power_of_ten(k: int) -> str:
    return "1" if k == 0 else "10" if k == 1 else "10" + str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def histogram_base(plain: np.ndarray, ours: np.ndarray) -> HistogramBase:
    """Histograms (64 bins over [0, 1], log counts) of both panels' normalised maps; thresholds and legend later.

    The improved panel's map is drawn as filled bars, the plain panel's as a step outline over them, on
    one axis: each panel's threshold line belongs to its own histogram.

    Args:
        plain, ours: float (H, W), the two normalised maps, values in [0, 1].
    """
    width, height = SIZE
    x0, x1, top, bottom = _LEFT, width - _RIGHT, _TOP, height - _BOTTOM
    counts, _ = np.histogram(ours.ravel(), bins=BINS, range=(0.0, 1.0))
    plain_counts, _ = np.histogram(plain.ravel(), bins=BINS, range=(0.0, 1.0))
    most = max(int(counts.max()), int(plain_counts.max()), 1)
    decades = max(1, math.ceil(math.log10(most + 1)))  # y axis: 10^0 .. 10^decades
    picture = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(picture)
    font = _font(FONT_PX)
    y_of = lambda count: bottom - (bottom - top) * math.log10(count) / decades  # noqa: E731 (count >= 1)
    for k in range(decades + 1):  # y grid and labels at powers of ten
        y = round(y_of(10**k))
        draw.line((x0, y, x1, y), fill=GRID)
        draw.text((x0 - 6, y), _power_of_ten(k), fill=INK, font=font, anchor="rm")
    bar_width = (x1 - x0) / BINS
    for i, count in enumerate(counts):
        if count > 0:
            left = x0 + i * bar_width
            draw.rectangle((round(left), round(y_of(count)), round(left + bar_width) - 1, bottom), fill=OURS_BAR)
    steps: list[tuple[float, float]] = []
    for i, count in enumerate(plain_counts):  # the plain map's histogram as a step outline
        step_y = y_of(count) if count > 0 else float(bottom)
        steps += [(x0 + i * bar_width, step_y), (x0 + (i + 1) * bar_width, step_y)]
    draw.line(steps, fill=PLAIN_STEP, width=2)
    for tick in np.linspace(0.0, 1.0, 6):  # x axis
        x = round(x0 + tick * (x1 - x0))
        draw.line((x, bottom, x, bottom + 4), fill=INK)
        draw.text((x, bottom + 6), f"{tick:.1f}", fill=INK, font=font, anchor="mt")
    draw.rectangle((x0, top, x1, bottom), outline=INK)
    draw.text(((x0 + x1) // 2, height - 4), "normalised CAM value", fill=INK, font=font, anchor="mb")
    axis_label = Image.new("RGB", (bottom - top, FONT_PX + 6), "white")
    ImageDraw.Draw(axis_label).text(
        ((bottom - top) // 2, (FONT_PX + 6) // 2), "pixels (log scale)", fill=INK, font=font, anchor="mm"
    )
    picture.paste(axis_label.rotate(90, expand=True), (4, top))
    return HistogramBase(np.asarray(picture), float(x0), float(x1), top, bottom)


def histogram_with_thresholds(base: HistogramBase, lines: list[Line], legend: list[tuple[tuple[int, int, int], str]]
                              ) -> np.ndarray:  # fmt: skip
    """Exports: the threshold lines (the first drawn widest, so a later line on it leaves it visible) and a legend
    (swatch colour, text) of what is shown, upper left, burnt in."""
    picture = Image.fromarray(base.picture.copy())
    draw = ImageDraw.Draw(picture)
    for row, (value, colour, dashed, _) in enumerate(lines):
        x = round(base.x0_px + float(np.clip(value, 0.0, 1.0)) * (base.x1_px - base.x0_px))
        width = 5 if row == 0 else 2
        step = 10 if dashed else base.bottom_px - base.top_px
        for y in range(base.top_px, base.bottom_px, step):
            draw.line((x, y, x, min(y + (5 if dashed else step), base.bottom_px)), fill=colour, width=width)
    entries = [(colour, text) for colour, text in legend] + [(c, t) for _, c, _, t in lines]
    left, top, small = round(base.x0_px) + 6, base.top_px + 4, _font(13)
    right = left + 22 + max(round(draw.textlength(text, font=small)) for _, text in entries) + 8
    draw.rectangle((left, top, right, top + 6 + 18 * len(entries)), fill="white", outline=GRID)
    for row, (colour, text) in enumerate(entries):
        y = top + 12 + 18 * row
        draw.line((left + 6, y, left + 20, y), fill=colour, width=4)
        draw.text((left + 26, y), text, fill=INK, font=small, anchor="lm")
    return np.asarray(picture)
