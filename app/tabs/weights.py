"""M+ / M−: the signed CAM in logit units over the photo, and M+ and M− on one colour scale (or per map).

The pictures are :mod:`app.weights_view`'s; this tab lays them out and redraws them after every new photo or class
(:meth:`app.events.Events.redraw_after_class`) and when its colour scale changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.components import Component

from app import files, inputs, weights_view
from app.errors import user_errors
from app.events import Events
from app.explanation import resolve_class
from app.state import Session, get_analysis

ID, LABEL = "weights", "M+ / M−"


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

    def shares(self) -> dict[str, Component]:
        """Nothing: the tab redraws itself (:func:`wire`)."""
        return {}

    @property
    def outputs(self) -> list[Any]:
        """The components :func:`render_weights` fills, in its result's order."""
        return [self.signed, self.signed_bar, self.positive, self.negative, self.colourbar, self.caption]


def build() -> WeightsTab:
    """The M+ / M- decomposition and the signed map they make."""
    image: dict[str, Any] = {"format": "png", "interactive": False, "buttons": ["download", "fullscreen"]}
    with gr.Tab(LABEL, id=ID):
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


@user_errors
def render_weights(session: Session | None, class_choice: Any, scale: str) -> tuple[str | None, ...]:
    """The signed map in logit units, M+ and M- over the photo, their colour bars and caption
    (:mod:`app.weights_view`); empty without a photo. ``scale``: M+ and M- ``"shared"`` or ``"per map"``."""
    if session is None:
        return None, None, None, None, None, ""
    analysis = get_analysis(session, session.model)
    c = resolve_class(class_choice, analysis)
    shared = inputs.choice(scale, "scale", ("shared", "per map")) == "shared"
    out = weights_view.weights_views(session.display, analysis, c, shared)
    pictures = (files.save_jpeg(out.signed), files.save_png(out.signed_bar), files.save_jpeg(out.positive),
                files.save_jpeg(out.negative), files.save_png(out.bar))  # fmt: skip
    return (*pictures, out.caption)


def wire(events: Events, tab: WeightsTab) -> None:
    """Redrawn after every new photo or class, and when the colour scale changes."""
    inputs = [events.named["session"], events.named["class_pick"], tab.scale]
    events.redraw_after_class(render_weights, inputs, tab.outputs)
    tab.scale.change(render_weights, inputs, tab.outputs, **events.quiet)
