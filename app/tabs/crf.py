"""CRF masks: both rules' masks before and after dense-CRF refinement, on request (slow lane).

The inference runs in a child process (:func:`app.crf_worker.mean_field_in_worker`: ``pydensecrf`` holds the GIL for
a whole inference). The sliders start at :class:`cam_core.crf.CrfParams`' defaults; their *ranges* are laid out in
:data:`CRF_SLIDERS`. The Segmentation tab refines with the same sliders (shared by name, :data:`app.inputs.CRF`).
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.components import Component

import cam_core
from app import html_views, render, texts, views
from app.crf_worker import mean_field_in_worker
from app.errors import user_errors
from app.events import Events, event
from app.explanation import explain_request
from app.inputs import CRF, VIEW, ViewRequest
from cam_core import crf
from cam_core.crf import CrfParams

ID, LABEL = "crf", "CRF masks"

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
class CrfTab:
    """Dense-CRF refinement of both masks, on request."""

    sliders: dict[str, gr.Slider]
    button: gr.Button
    view: gr.HTML
    caption: gr.Markdown

    def shares(self) -> dict[str, Component]:
        """The CRF sliders, by :data:`app.inputs.CRF`'s field names (the Segmentation tab's CRF reads them too)."""
        return dict(self.sliders)


def build() -> CrfTab:
    """The CRF tab; its sliders start at :class:`~cam_core.crf.CrfParams`' defaults."""
    available = crf.crf_available()
    start = crf.CrfParams()
    with gr.Tab(LABEL, id=ID):
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


@user_errors
def render_crf(request: ViewRequest, params: CrfParams, progress: gr.Progress = gr.Progress()) -> tuple[str, str]:
    """Both rules' masks before and after dense-CRF refinement, with the refined masks' boxes.

    ``progress`` (Gradio's tracker, injected by the queue; a no-op outside an event) counts the two refinements,
    so the page shows "CRF 1/2 ..." with Gradio's own time-left estimate while the worker runs.
    """
    if not crf.crf_available():
        raise cam_core.CrfUnavailableError("Dense CRF is unavailable here: " + crf._INSTALL_HINT)
    ex = explain_request(request)
    rows, lines = [], []
    for step, (label, loc, colour) in enumerate(
        ((ex.controls.baseline_rule, ex.plain, render.PLAIN_COLOUR), (ex.controls.name, ex.ours, render.OURS_COLOUR))
    ):
        progress((step, 2), desc=f"CRF {step + 1}/2: {label}", unit="masks")
        refined = crf.refine_mask(ex.photo, loc.heatmap, loc.threshold, params, runner=mean_field_in_worker)
        rows += [(loc.mask, colour, label), (refined, colour, f"{label} + CRF")]
        before, after = ex.to_original(loc.box), ex.to_original(cam_core.largest_box(refined))
        line = f"**{label}** (threshold {loc.threshold:.3f}): box {before.tolist()} → CRF box {after.tolist()}"
        if request.gt is not None:
            iou = lambda box: float(cam_core.box_iou(box, request.gt).max())  # noqa: E731  (best-matching GT box)
            line += f"; IoU with GT {iou(before):.2f} → {iou(after):.2f}"
        lines.append(line + ".")
    lines.append(f"For “{ex.class_name}” with the controls as they were at the click; after moving them, refine again.")
    return html_views.masks_html(views.statics(ex).photo_url, ex.display, rows, boxes=True), "\n\n".join(lines)


def wire(events: Events, tab: CrfTab) -> None:
    """The button refines both masks for the controls of the moment (slow lane)."""
    tab.button.click(
        event(render_crf, VIEW, CRF),
        events.inputs(VIEW, CRF),
        [tab.view, tab.caption],
        api_visibility="private",
        **events.slow,
    )
