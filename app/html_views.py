"""Threshold-dependent views drawn in the browser: static pictures plus SVG boxes, lines and small masks.

A slider move changes only boxes, threshold lines and binary masks. The heatmap overlays and the
histogram plot stay the same, so they are written once per (photo, class, variant) as files served by
Gradio, and each update sends a few kB of SVG plus one small PNG of both masks inline (the three mask
cells draw it through three more filters of the page: :func:`compare_masks_html`). The browser keeps the
big pictures cached: an update costs one Gradio round trip, not a round of image downloads.

The heatmaps are coloured in the browser: a panel stacks the photo, the normalised map as an 8-bit grey
PNG, and the SVG. The grey layer goes through the page's one SVG filter ``#cam-colormap`` (a
``feComponentTransfer`` table per channel: the chosen colour map's 256 entries) at the opacity of the CSS
variable ``--cam-opacity``. :func:`colour_controls_html` holds that filter and the controls that rewrite it
(``app/tabs/colormap.js``), so a colour-map or opacity change costs no request, and it survives every panel
update: the panels only name the filter and the variable. The mask cells' filters (:func:`mask_filters_svg`)
live beside it.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable

import numpy as np
from PIL import Image

from app import render
from app.histogram import HistogramBase, Line
from app.render import Colour
from cam_core.boxes import largest_box

# inline styles: the views must look right however the Blocks is launched (no dependence on launch(css=...))
_FIGURE = 'style="margin:0"'
_CAPTION = 'style="font-size:0.85rem;opacity:0.75;margin-bottom:4px"'
_STACK = 'style="position:relative;line-height:0"'
_BASE = 'style="width:100%;height:auto;display:block;border-radius:4px"'
_OVER = 'style="position:absolute;left:0;top:0;width:100%;height:100%"'
_DRAWABLE = 'style="position:relative;line-height:0;cursor:crosshair;touch-action:none;user-select:none"'
_HEAT = (
    'style="position:absolute;left:0;top:0;width:100%;height:100%;filter:url(#cam-colormap);'
    f'opacity:var(--cam-opacity,{render.DEFAULT_OPACITY})"'
)
COLOUR_MAP_LABELS = {
    "inferno": "inferno (perceptually uniform)",
    "viridis": "viridis (perceptually uniform)",
    "jet": "jet (as in many papers)",
}


def _css(colour: Colour) -> str:
    return f"rgb({colour[0]},{colour[1]},{colour[2]})"


def box_svg(box: np.ndarray, colour: Colour, stroke: float) -> str:
    """An inclusive ``(x0, y0, x1, y1)`` box as SVG in picture pixels, black-outlined."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return (
        f'<rect x="{x0}" y="{y0}" width="{x1 - x0 + 1}" height="{y1 - y0 + 1}" fill="none" stroke="black" '
        f'stroke-width="{stroke + 2}"/><rect class="box" data-box="{int(x0)},{int(y0)},{int(x1)},{int(y1)}" '
        f'x="{x0}" y="{y0}" width="{x1 - x0 + 1}" height="{y1 - y0 + 1}" fill="none" stroke="{_css(colour)}" '
        f'stroke-width="{stroke}"/>'
    )


def label_size(label: str, font: float) -> tuple[float, float]:
    """``(width, height)`` of a label's tag: the text is stretched to exactly this (``textLength``)."""
    return 0.62 * font * len(label) + 8, font + 6


def boxes_svg(boxes: list[tuple[np.ndarray, Colour, str]], size: tuple[int, int], stroke: float) -> str:
    """Boxes, then their labels as tags placed by :func:`app.render.place_labels` (off every edge, apart)."""
    font = max(12.0, 4.5 * stroke)
    sizes = [label_size(label, font) for _, _, label in boxes]
    rects = render.place_labels([box for box, _, _ in boxes], sizes, size, stroke + 2)
    svg = "".join(box_svg(box, colour, stroke) for box, colour, _ in boxes)
    for (_, colour, label), (x0, y0, x1, y1) in zip(boxes, rects, strict=True):
        svg += (
            f'<g class="box-label" data-rect="{x0:.1f},{y0:.1f},{x1:.1f},{y1:.1f}"><rect x="{x0:.1f}" y="{y0:.1f}" '
            f'width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="3" fill="black" fill-opacity="0.75"/>'
            f'<text x="{x0 + 4:.1f}" y="{(y0 + y1) / 2:.1f}" dominant-baseline="central" font-size="{font}" '
            f'font-weight="bold" font-family="sans-serif" textLength="{x1 - x0 - 8:.1f}" '
            f'lengthAdjust="spacingAndGlyphs" fill="{_css(colour)}">{html.escape(label)}</text></g>'
        )
    return svg


def figure(
    title: str, url: str, size: tuple[int, int], svg: str, alt: str, extra: str = "", drawable: bool = False
) -> str:
    """A titled picture with an SVG overlay in its own pixel coordinates (``size`` is ``(H, W)``).

    ``drawable``: a crosshair cursor and no touch scrolling over the picture, for drawing a box on it
    (``app/tabs/draw_box.js``).
    """
    height, width = size
    stack = _DRAWABLE if drawable else _STACK
    return (
        f'<figure class="cam-figure" {_FIGURE}><figcaption {_CAPTION}>{html.escape(title)}</figcaption>'
        f'<div class="cam-stack" {stack}><img src="{url}" alt="{html.escape(alt)}" width="{width}" '
        f'height="{height}" draggable="false" {_BASE}/>{extra}<svg viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="none" {_OVER}>{svg}</svg></div></figure>'
    )


def panel_html(
    title: str, photo_url: str, heat_url: str, size: tuple[int, int], boxes: list[tuple[np.ndarray, Colour, str]]
) -> str:
    """Photo, heatmap levels coloured in the browser (both static files) and labelled boxes as SVG.

    ``heat_url``: the normalised map as an 8-bit grey PNG, drawn through ``#cam-colormap`` at
    ``--cam-opacity`` (see the module docstring). A ground-truth box can be dragged on the panel.
    """
    stroke = max(3.0, max(size) / 150)
    heat = f'<img class="cam-heat" src="{heat_url}" alt="" draggable="false" {_HEAT}/>'
    return figure(title, photo_url, size, boxes_svg(boxes, size, stroke), f"{title}: heatmap with boxes", heat, True)


def _table(values: Iterable[int]) -> str:
    """8-bit values as an SVG transfer table (``tableValues``): each ``/ 255``, shortest decimal form."""
    return " ".join(f"{v / 255:.4f}".rstrip("0").rstrip(".") or "0" for v in values)


def gain_loss(plain: np.ndarray, ours: np.ndarray) -> tuple[float, float, float]:
    """What ``ours`` (bool (H, W)) adds to ``plain``'s foreground and drops from it, each in % of the photo, and
    the two masks' IoU (1 for two empty masks)."""
    union = float((plain | ours).sum())
    iou = float((plain & ours).sum()) / union if union else 1.0
    return 100 * float((ours & ~plain).mean()), 100 * float((plain & ~ours).mean()), iou


def colour_controls_html() -> str:
    """The colour-map menu and opacity slider (plain HTML: they act in the browser only), a ramp of the
    map in use, and the SVG filter ``#cam-colormap`` they rewrite (``app/tabs/colormap.js``)."""

    options = "".join(
        f'<option value="{name}" data-r="{_table(lut[:, 0])}" data-g="{_table(lut[:, 1])}" data-b="{_table(lut[:, 2])}"'
        f"{' selected' if name == render.DEFAULT_COLOUR_MAP else ''}>{html.escape(COLOUR_MAP_LABELS[name])}</option>"
        for name, lut in render.COLOUR_MAPS.items()
    )
    start = render.COLOUR_MAPS[render.DEFAULT_COLOUR_MAP]
    funcs = "".join(f'<feFunc{c} type="table" tableValues="{_table(start[:, i])}"/>' for i, c in enumerate("RGB"))
    opacity = render.DEFAULT_OPACITY
    return (
        '<div class="cam-colour-controls" style="display:flex;flex-wrap:wrap;align-items:center;gap:6px 18px;'
        'font-size:0.85rem"><label>Colour map <select class="cam-colour-map" aria-label="colour map">'
        f'{options}</select></label><span style="white-space:nowrap">low <span class="cam-ramp" style="display:'
        "inline-block;width:90px;height:12px;vertical-align:middle;border-radius:2px;background:linear-gradient("
        'to right,#000,#fff);filter:url(#cam-colormap)"></span> high</span><label style="white-space:nowrap">'
        f'Opacity <input class="cam-opacity" type="range" min="0" max="1" step="0.05" value="{opacity}" '
        f'aria-label="heatmap opacity" style="vertical-align:middle"/> <output>{opacity:.2f}</output></label>'
        f'<span style="opacity:0.7" title="The swipe view and the downloads are drawn on the server with '
        f'{render.DEFAULT_COLOUR_MAP} at opacity {opacity:g}.">(swipe, zip: '
        f"{render.DEFAULT_COLOUR_MAP})</span>"
        '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><filter id="cam-colormap" '
        f'color-interpolation-filters="sRGB"><feComponentTransfer>{funcs}</feComponentTransfer></filter>'
        f"{mask_filters_svg()}</svg></div>"
    )


def _legend(entries: list[tuple[Colour, str, str]]) -> str:
    """A one-line HTML legend: (colour, CSS border style of the swatch, text) per entry."""
    items = "".join(
        f'<span style="white-space:nowrap"><span style="display:inline-block;width:18px;vertical-align:middle;'
        f'border-top:4px {style} {_css(colour)};margin-right:4px"></span>{html.escape(text)}</span>'
        for colour, style, text in entries
    )
    return f'<div class="cam-legend" style="display:flex;flex-wrap:wrap;gap:4px 14px;font-size:0.8rem">{items}</div>'


def histogram_html(url: str, base: HistogramBase, lines: list[Line], maps: list[tuple[Colour, str]], title: str) -> str:
    """Histogram plot (static file) with threshold lines at the given normalised values (SVG) and a legend
    (HTML) of the maps and of the lines shown. The first line is drawn widest: a line on top of it leaves it visible.
    """
    height, width = base.picture.shape[:2]
    svg = ""
    for row, (value, colour, dashed, _) in enumerate(lines):
        x = base.x0_px + float(np.clip(value, 0.0, 1.0)) * (base.x1_px - base.x0_px)
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        svg += (
            f'<line class="threshold" data-value="{value:.4f}" x1="{x:.1f}" x2="{x:.1f}" y1="{base.top_px}" '
            f'y2="{base.bottom_px}" stroke="{_css(colour)}" stroke-width="{6 if row == 0 else 2.5}"{dash}/>'
        )
    legend = [(colour, "solid", text) for colour, text in maps]
    legend += [(colour, "dashed" if dashed else "solid", text) for _, colour, dashed, text in lines]
    return figure(title, url, (height, width), svg, "histograms of both normalised maps with their thresholds") + (
        _legend(legend)
    )


def mask_overlay_url(mask: np.ndarray, colour: Colour) -> str:
    """A bool (H, W) mask as a tiny 2-colour palette PNG data URL: background darkened, foreground tinted."""
    height, width = mask.shape
    picture = Image.frombytes("P", (width, height), np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
    picture.putpalette([0, 0, 0, *colour])
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1, transparency=bytes([190, 70]))  # alpha per palette entry
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


GAINED: Colour = (230, 40, 230)
LOST: Colour = (255, 140, 0)
CODE_LEVELS = (0, 85, 170, 255)
"""The grey level of each mask code in :func:`mask_codes_url`'s picture: 0 neither mask, 1 only the improved
rule's (gained), 2 only plain CAM's (lost), 3 both."""
_BACKGROUND, _FOREGROUND = (0, 0, 0, 190), 70  # a mask cell: background darkened, foreground tinted (alphas /255)
MASK_LOOKS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "cam-mask-plain": (
        _BACKGROUND,
        _BACKGROUND,
        (*render.PLAIN_COLOUR, _FOREGROUND),
        (*render.PLAIN_COLOUR, _FOREGROUND),
    ),
    "cam-mask-ours": (_BACKGROUND, (*render.OURS_COLOUR, _FOREGROUND), _BACKGROUND, (*render.OURS_COLOUR, _FOREGROUND)),
    "cam-gain-loss": ((0, 0, 0, 170), (*GAINED, 200), (*LOST, 200), (0, 0, 0, 0)),
}
"""Each mask cell's SVG filter id -> the RGBA (0..255) it gives codes 0, 1, 2, 3 (see :func:`mask_filters_svg`)."""


def mask_codes_url(plain: np.ndarray, ours: np.ndarray) -> str:
    """Two bool (H, W) masks as one grey 4-level palette PNG data URL: code ``2 · plain + ours`` drawn at
    :data:`CODE_LEVELS`. The three mask cells show this one picture, each through its own filter."""
    codes = plain.astype(np.uint8) * 2 + ours.astype(np.uint8)
    height, width = codes.shape
    picture = Image.frombytes("P", (width, height), np.ascontiguousarray(codes).tobytes())
    picture.putpalette([level for level in CODE_LEVELS for _ in range(3)])
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)  # cat: 0.75 ms, 3.9 kB (level 6: 1.6 ms, 3.0 kB)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def mask_filters_svg() -> str:
    """The mask cells' SVG filters (:data:`MASK_LOOKS`), written once into the page beside ``#cam-colormap``.

    Each copies the grey code into alpha too (``feColorMatrix``), then maps the four levels to the cell's four
    RGBA values with ``discrete`` tables (a level ``k · 85`` falls in the table's ``k``-th quarter).
    """

    spread = "1 0 0 0 0 " * 4  # R, G, B and A all take the grey code (R = G = B in the picture)
    filters = ""
    for name, looks in MASK_LOOKS.items():
        funcs = "".join(
            f'<feFunc{c} type="discrete" tableValues="{_table(look[i] for look in looks)}"/>'
            for i, c in enumerate("RGBA")
        )
        filters += (
            f'<filter id="{name}" color-interpolation-filters="sRGB" x="0" y="0" width="1" height="1">'
            f'<feColorMatrix type="matrix" values="{spread.strip()}"/><feComponentTransfer>{funcs}'
            "</feComponentTransfer></filter>"
        )
    return filters


def _code_layer(name: str, alt: str) -> str:
    """A cell's mask layer: the figure's code picture (CSS variable ``--cam-codes``) through filter ``name``,
    pixel for pixel (no smoothing between codes, which would make false codes at mask edges)."""
    return (
        f'<div class="mask" role="img" aria-label="{html.escape(alt)}" style="position:absolute;left:0;top:0;'
        "width:100%;height:100%;background:var(--cam-codes) 0 0 / 100% 100% no-repeat;image-rendering:pixelated;"
        f'filter:url(#{name})"></div>'
    )


def gain_loss_cell(
    photo_url: str,
    size: tuple[int, int],
    plain: np.ndarray,
    ours: np.ndarray,
    boxes: list[tuple[np.ndarray, Colour]],
    baseline: str = "plain CAM",
) -> str:
    """One masks cell: what the improved rule adds to the blue rule's foreground (``baseline``: plain CAM's) and what
    it drops, with both boxes (its mask layer is the figure's code picture: see :func:`compare_masks_html`)."""
    height, width = size
    stroke = max(3.0, max(size) / 150)
    svg = "".join(box_svg(box, colour, stroke) for box, colour in boxes)
    gained, lost, _ = gain_loss(plain, ours)
    return (
        f'<div class="cam-mask cam-gain-loss" style="flex:1"><div class="cam-stack" {_STACK}><img src="{photo_url}" '
        f'alt="photo" width="{width}" height="{height}" {_BASE}/>'
        f"{_code_layer('cam-gain-loss', 'gained and lost pixels')}"
        f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none" {_OVER}>{svg}</svg></div>'
        f'<span style="font-size:0.8rem"><b style="color:{_css(GAINED)}">+{gained:.0f} % gained</b>, '
        f'<b style="color:{_css(LOST)}">{lost:.0f} % lost</b> vs {html.escape(baseline)}</span></div>'
    )


def compare_masks_html(
    photo_url: str,
    size: tuple[int, int],
    plain: tuple[np.ndarray, str],
    ours: tuple[np.ndarray, str],
    boxes: list[tuple[np.ndarray, Colour]],
    baseline: str = "plain CAM",
) -> str:
    """The main tab's masks: plain CAM's, the improved rule's, and what the second gains and loses over the
    first (with ``boxes``), from **one** inline picture of both masks (:func:`mask_codes_url`, a few kB) that
    each cell draws through its own filter of the page (:func:`mask_filters_svg`).

    Args:
        plain, ours: each rule's bool (H, W) mask and its title.
        baseline: the blue map's name, which the gain / loss cell compares against (``"plain CAM"``, ``"Grad-CAM"``).
    """
    height, width = size
    (plain_mask, plain_title), (ours_mask, ours_title) = plain, ours
    cells = "".join(
        f'<div class="cam-mask" style="flex:1"><div class="cam-stack" {_STACK}><img src="{photo_url}" alt="photo" '
        f'width="{width}" height="{height}" {_BASE}/>{_code_layer(name, title)}</div>'
        f'<span style="font-size:0.8rem">{html.escape(title)}: {100 * mask.mean():.1f} % of pixels</span></div>'
        for mask, title, name in ((plain_mask, plain_title, "cam-mask-plain"), (ours_mask, ours_title, "cam-mask-ours"))
    )
    cells += gain_loss_cell(photo_url, size, plain_mask, ours_mask, boxes, baseline)
    codes = mask_codes_url(plain_mask, ours_mask)
    title = f"<figcaption {_CAPTION}>Foreground masks (dark: background)</figcaption>"
    return (
        f'<figure class="cam-figure cam-masks" {_FIGURE}>{title}<div style="display:flex;gap:6px;'
        f"--cam-codes:url('{codes}')\">{cells}</div></figure>"
    )


def masks_html(
    photo_url: str,
    size: tuple[int, int],
    masks: list[tuple[np.ndarray, Colour, str]],
    boxes: bool = False,
) -> str:
    """The photo once per mask, with the mask laid over it (inline PNG: a few kB each), optionally boxed."""
    height, width = size
    stroke = max(3.0, max(size) / 150)
    cells = "".join(
        f'<div class="cam-mask" style="flex:1"><div class="cam-stack" {_STACK}><img src="{photo_url}" alt="photo" '
        f'width="{width}" height="{height}" {_BASE}/><img class="mask" src="{mask_overlay_url(mask, colour)}" '
        f'alt="{html.escape(title)}" {_OVER}/>'
        + (
            f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none" {_OVER}>'
            f"{box_svg(largest_box(mask), colour, stroke)}</svg>"
            if boxes
            else ""
        )
        + f'</div><span style="font-size:0.8rem">{html.escape(title)}: {100 * mask.mean():.1f} % of pixels</span></div>'
        for mask, colour, title in masks
    )
    title = f"<figcaption {_CAPTION}>Foreground masks (dark: background)</figcaption>"
    return f'<figure class="cam-figure" {_FIGURE}>{title}<div style="display:flex;gap:6px">{cells}</div></figure>'
