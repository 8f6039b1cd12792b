"""The page's tabs (laid out by :func:`app.layout.build_page`): one builder per tab, each returning a small
dataclass of its components; the segmentation tab is :mod:`app.segmentation_tab`'s.

No event is registered here (that is :mod:`app.wiring`). The CRF sliders start at
:class:`cam_core.crf.CrfParams`' defaults; their *ranges* are laid out in :data:`CRF_SLIDERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app import evaluation, html_views, texts
from app.handlers import EXPORT_TAB, SWIPE_TAB
from cam_core import crf

DRAW_BOX_JS = Path(__file__).with_name("draw_box.js").read_text(encoding="utf-8")  # drag a ground-truth box
COLOUR_MAP_JS = Path(__file__).with_name("colormap.js").read_text(encoding="utf-8")  # colour map, opacity: browser only
COMPARE_TAB = "Plain vs improved"

# name: (minimum, maximum, step, label, row); the values come from CrfParams()
CRF_SLIDERS: dict[str, tuple[float, float, float, str, int]] = {
    "gaussian_sxy":     (1, 20,  1, "Gaussian sxy (px)",  0),
    "gaussian_compat":  (0, 20,  1, "Gaussian compat",    0),
    "iterations":       (1, 20,  1, "iterations",         0),
    "bilateral_sxy":    (5, 200, 5, "bilateral sxy (px)", 1),
    "bilateral_srgb":   (1, 50,  1, "bilateral srgb",     1),
    "bilateral_compat": (0, 30,  1, "bilateral compat",   1),
}  # fmt: skip


@dataclass(frozen=True)
class CompareTab:
    """Plain vs improved: colour controls (browser only), both panels (a box can be dragged on either),
    caption, histogram, masks."""

    colours: gr.HTML
    plain: gr.HTML
    ours: gr.HTML
    caption: gr.Markdown
    histogram: gr.HTML
    masks: gr.HTML


def build_compare_tab() -> CompareTab:
    """The main tab."""
    with gr.Tab(COMPARE_TAB):
        colours = gr.HTML(html_views.colour_controls_html(), js_on_load=COLOUR_MAP_JS, elem_id="colour-controls")
        with gr.Row():
            plain = gr.HTML(elem_id="plain-panel", elem_classes="cam-panel", js_on_load=DRAW_BOX_JS)
            ours = gr.HTML(elem_id="ours-panel", elem_classes="cam-panel", js_on_load=DRAW_BOX_JS)
        # no LaTeX: the caption has none, and scanning for it after every slider move cost ~7 ms before the
        # moved box was drawn (bench/bench_browser.py, interleaved runs)
        caption = gr.Markdown(elem_classes="caption", elem_id="caption", latex_delimiters=[])
        with gr.Row():
            histogram = gr.HTML(elem_id="histogram", elem_classes="cam-panel")
            masks = gr.HTML(elem_id="masks", elem_classes="cam-panel")
    return CompareTab(colours, plain, ours, caption, histogram, masks)


@dataclass(frozen=True)
class SwipeTab:
    """Both panels as one picture with a slider between them."""

    tab: gr.Tab
    view: gr.ImageSlider


def build_swipe_tab() -> SwipeTab:
    """The swipe view (drawn only while its tab is open)."""
    with gr.Tab(SWIPE_TAB) as tab:
        view = gr.ImageSlider(label="Swipe: plain CAM | improved", format="png", interactive=False, elem_id="swipe")
    return SwipeTab(tab, view)


@dataclass(frozen=True)
class WeightsTab:
    """The signed CAM in logit units, and M+ and M- over the photo on one colour scale (or per map)."""

    scale: gr.Radio
    signed: gr.Image
    signed_bar: gr.Image
    positive: gr.Image
    negative: gr.Image
    colourbar: gr.Image
    caption: gr.Markdown

    @property
    def outputs(self) -> list[Any]:
        """The components :func:`app.analysis_views.render_weights` fills, in its result's order."""
        return [self.signed, self.signed_bar, self.positive, self.negative, self.colourbar, self.caption]


def build_weights_tab() -> WeightsTab:
    """The M+ / M- decomposition and the signed map they make."""
    image: dict[str, Any] = {"format": "png", "interactive": False, "buttons": ["download", "fullscreen"]}
    with gr.Tab("M+ / M−"):
        with gr.Row():
            signed = gr.Image(label="M = M+ − M− (signed, logits)", elem_id="signed-map", **image)
            positive = gr.Image(label="M+ = Σ max(W, 0)·F: NWC keeps", elem_id="positive-map", **image)
            negative = gr.Image(label="M− = Σ max(−W, 0)·F: NWC drops", elem_id="negative-map", **image)
        with gr.Row(equal_height=True):
            signed_bar = gr.Image(label="Signed scale (logits)", height=110, elem_id="signed-bar", **image)
            colourbar = gr.Image(label="M+ / M− scale", height=110, elem_id="weights-bar", **image)
            scale = gr.Radio(["shared", "per map"], value="shared", label="M+ / M− colour scale", min_width=160)
        caption = gr.Markdown(elem_classes="caption", elem_id="weights-caption")
    return WeightsTab(scale, signed, signed_bar, positive, negative, colourbar, caption)


@dataclass(frozen=True)
class WhyTapTab:
    """The P1 statistics behind TAP, and one channel's map."""

    channel: gr.Dropdown
    plot: gr.Image
    channel_map: gr.Image
    caption: gr.Markdown


def build_why_tap_tab() -> WhyTapTab:
    """Per-channel active area vs weight, GAP vs TAP."""
    with gr.Tab("Why TAP (P1)"):
        channel = gr.Dropdown([], label="Channel (top 20 by contribution to the CAM peak)")
        # no label badge, no toolbar: they sat over the two plot titles (issue #14 item 12)
        plot = gr.Image(
            label="Per-channel statistics",
            show_label=False,
            buttons=[],
            format="png",
            interactive=False,
            elem_id="p1-plot",
        )
        with gr.Row():
            channel_map = gr.Image(label="Selected channel's feature map", format="png", interactive=False)
            caption = gr.Markdown(elem_classes="caption", elem_id="p1-caption")
    return WhyTapTab(channel, plot, channel_map, caption)


@dataclass(frozen=True)
class CrfTab:
    """Dense-CRF refinement of both masks, on request."""

    sliders: dict[str, gr.Slider]
    button: gr.Button
    view: gr.HTML
    caption: gr.Markdown


def build_crf_tab() -> CrfTab:
    """The CRF tab; its sliders start at :class:`~cam_core.crf.CrfParams`' defaults."""
    available = crf.crf_available()
    start = crf.CrfParams()
    with gr.Tab("CRF masks"):
        gr.Markdown(texts.CRF_INTRO if available else texts.CRF_UNAVAILABLE)
        sliders: dict[str, gr.Slider] = {}
        with gr.Accordion("CRF parameters", open=False):
            for row in (0, 1):
                with gr.Row():
                    for name, (low, high, step, label, on_row) in CRF_SLIDERS.items():
                        if on_row == row:
                            sliders[name] = gr.Slider(low, high, getattr(start, name), step=step, label=label)
        button = gr.Button("Refine both masks with dense CRF", interactive=available)
        view = gr.HTML(elem_id="crf-masks")
        caption = gr.Markdown(elem_classes="caption", elem_id="crf-caption")
    return CrfTab(sliders, button, view, caption)


@dataclass(frozen=True)
class EvaluateTab:
    """The WSOL evaluation of an uploaded set or the bundled examples."""

    images: gr.File
    boxes_csv: gr.File
    run: gr.Button
    run_examples: gr.Button
    table: gr.Markdown
    curves: gr.Image
    gallery: gr.Gallery
    json: gr.JSON

    @property
    def outputs(self) -> list[Any]:
        """Table, curves, gallery, JSON: the order of :func:`app.evaluation.run_evaluation`'s result."""
        return [self.table, self.curves, self.gallery, self.json]


def build_evaluate_tab() -> EvaluateTab:
    """Upload photos and a boxes CSV, or run the examples."""
    with gr.Tab("Evaluate"):
        gr.Markdown(texts.evaluate_intro(evaluation.MAX_IMAGES, evaluation.MAX_TOTAL_MB))
        with gr.Row():
            images = gr.File(label="Photos", file_count="multiple", file_types=["image"])
            boxes_csv = gr.File(label="Boxes CSV", file_types=[".csv"])
        with gr.Row():
            run = gr.Button("Evaluate the uploaded set", variant="primary")
            run_examples = gr.Button("Evaluate the bundled examples")
        table = gr.Markdown(elem_id="eval-table")
        curves = gr.Image(label="BoxAcc (IoU ≥ 0.5) against θ", format="png", interactive=False)
        gr.Markdown(  # not the gallery's own label: that one covers the pictures' top edge
            "**Where NWC+PaS wins and loses against plain CAM** (blue: plain, green: NWC+PaS, gold: ground truth); "
            "each photo as the network sees it, stretched to its input."
        )
        gallery = gr.Gallery(
            label="Wins and losses",
            show_label=False,
            columns=3,
            object_fit="contain",  # whole pictures: a cropped thumbnail cut the boxes
            elem_id="eval-gallery",
        )
        json = gr.JSON(label="Evaluation JSON (same schema as the CLI)")
    return EvaluateTab(images, boxes_csv, run, run_examples, table, curves, gallery, json)


@dataclass(frozen=True)
class ExportTab:
    """The explanation's JSON and the zip download: a click makes the zip of what is on screen (queued), then the
    browser downloads it (``zip_file``: the hidden holder of the made file)."""

    tab: gr.Tab
    json: gr.JSON
    download: gr.Button
    zip_file: gr.File


def build_export_tab() -> ExportTab:
    """JSON & export."""
    with gr.Tab(EXPORT_TAB) as tab:
        json = gr.JSON(label="Explanation (boxes in original-image pixels)")
        download = gr.Button("Download JSON + PNGs (.zip)", elem_id="download")
        zip_file = gr.File(visible=False, elem_id="download-file")
    return ExportTab(tab, json, download, zip_file)
