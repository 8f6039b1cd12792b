"""Why TAP (P1): TAP alone (the GAP-trained head against the TAP-trained head, one rule: :mod:`app.tap_alone`); per
channel, active area against class weight and GAP against TAP pooled values, and one channel's
map; with a shipped TAP-trained partner, what TAP training did to the weights (:func:`tap_ratio_reading`).

The P1 view is redrawn after every new photo or class (:meth:`app.events.Events.redraw_after_class`) and when τ or
the channel changes; TAP alone when the tab opens, after a new photo or class while it is open, and on its button
(it follows the controls of that moment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
from gradio.components import Component

import cam_core
from app import files, inputs, plots, render, tap_alone
from app.errors import user_errors
from app.events import Events, event
from app.explanation import resolve_class
from app.inputs import DEFAULT_PRESET, VIEW, ViewRequest
from app.models import tap_partner
from app.state import ModelLoading, Session, get_analysis
from cam_core.tap import channel_stats

ID, LABEL = "why-tap", "Why TAP (P1)"
TAU_INFO = (
    "Only these statistics use it (which pixels count as active, what TAP would pool); the TAP panel's head was "
    "trained with its own τ. Set by the preset too: 0.1 in the paper's code, 0.05 in the LID challenge entry."
)


@dataclass(frozen=True)
class WhyTapTab:
    """TAP alone, the P1 statistics behind TAP, and one channel's map."""

    tab: gr.Tab
    alone_gap: gr.Image
    alone_tap: gr.Image
    alone_caption: gr.Markdown
    alone_button: gr.Button
    tau: gr.Slider
    channel: gr.Dropdown
    plot: gr.Image
    channel_map: gr.Image
    caption: gr.Markdown

    def shares(self) -> dict[str, Component]:
        """τ, which the control bar's preset sets (:mod:`app.controls`); the tab redraws itself (:func:`wire`)."""
        return {"tau": self.tau}

    @property
    def outputs(self) -> list[Any]:
        """The components :func:`render_p1` fills, in its result's order."""
        return [self.plot, self.channel_map, self.channel, self.caption]

    @property
    def alone_outputs(self) -> list[Any]:
        """The components :func:`render_tap_alone` fills, in its result's order."""
        return [self.alone_gap, self.alone_tap, self.alone_caption]


def build() -> WhyTapTab:
    """TAP alone, then per-channel active area vs weight, GAP vs TAP."""
    with gr.Tab(LABEL, id=ID) as tab:
        gr.Markdown("### TAP alone: the GAP-trained head against the TAP-trained head, under the same rule")
        with gr.Row():
            # no label badge, no toolbar: they sat over the pictures' top box labels; the boxes are labelled
            alone_gap = gr.Image(label="GAP-trained head (control)", show_label=False, buttons=[], format="png",
                                 interactive=False, elem_id="tap-alone-gap", elem_classes="cam-panel")  # fmt: skip
            alone_tap = gr.Image(label="TAP-trained head", show_label=False, buttons=[], format="png",
                                 interactive=False, elem_id="tap-alone-tap", elem_classes="cam-panel")  # fmt: skip
        alone_caption = gr.Markdown(elem_classes="caption", elem_id="tap-alone-caption", latex_delimiters=[])
        alone_button = gr.Button("Redraw with the current controls", size="sm")
        gr.Markdown("### Why TAP: each channel's active area, weight and pooled values (the current model)")
        low, high, step, label = inputs.THRESHOLD_SLIDERS["tau"]
        tau = gr.Slider(low, high, cam_core.PRESETS[DEFAULT_PRESET].tau_tap, step=step, label=label,
                        info=TAU_INFO, elem_id="tau")  # fmt: skip
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
    return WhyTapTab(tab, alone_gap, alone_tap, alone_caption, alone_button, tau, channel, plot, channel_map, caption)


@user_errors
def render_tap_alone(request: ViewRequest, open_tab: Any = ID) -> tuple[Any, ...]:
    """TAP alone (:func:`app.tap_alone.compare_heads`) for the controls of the moment; untouched while another tab is
    open (``open_tab``), emptied without a photo, the reason given for a model without a shipped pair."""
    if open_tab != ID:
        return gr.skip(), gr.skip(), gr.skip()
    if request.session is None:
        return None, None, ""
    try:
        shown = tap_alone.compare_heads(request.session, request.class_ref, request.controls, request.gt)
    except ModelLoading as loading:  # said here, not as an error: the redraws chained after this one still run
        return None, None, f"**TAP alone**: {loading} Press the button below when it is loaded."
    if shown is None:
        return None, None, tap_alone.NO_PAIR
    return files.save_jpeg(shown.gap), files.save_jpeg(shown.tap), shown.caption


@user_errors
def render_p1(session: Session | None, class_choice: Any, tau: float, channel: Any) -> tuple[Any, ...]:
    """Why TAP: per-channel active area vs weight, GAP vs TAP values, and one channel's map; empty without a photo."""
    if session is None:
        return None, None, gr.update(choices=[], value=None), ""
    analysis = get_analysis(session, session.model)
    c = resolve_class(class_choice, analysis)
    tau = inputs.number(tau, "tau", 0.0, 1.0)
    stats = channel_stats(analysis.feature_maps, analysis.class_weights[c], tau)
    ranked = np.argsort(-np.abs(stats.cam_peak_contribution))[:20]
    choices = [
        (f"channel {k}: weight {stats.weight[k]:+.3f}, area {100 * stats.active_fraction[k]:.0f} %", str(k))
        for k in ranked
    ]
    valid = {str(k) for k in ranked}
    k = int(channel) if channel is not None and str(channel) in valid else int(ranked[0])
    plot = plots.p1_scatter(
        stats.active_fraction, stats.weight, stats.cam_peak_contribution, stats.gap, stats.tap, k, float(tau)
    )
    display = session.size_on_screen
    channel_map = cam_core.normalize(cam_core.upsample(analysis.feature_maps[k], display))
    picture = render.overlay(session.display, channel_map)
    caption = (
        f"Channel **{k}**: weight {stats.weight[k]:+.4f}; active on {100 * stats.active_fraction[k]:.1f} % of the "
        f"{analysis.feature_maps.shape[1]}×{analysis.feature_maps.shape[2]} grid (τ = {float(tau):.2f}); "
        f"GAP {stats.gap[k]:.3f} "
        f"vs TAP {stats.tap[k]:.3f} (×{stats.tap[k] / max(stats.gap[k], 1e-9):.1f}); contributes "
        f"{stats.cam_peak_contribution[k]:+.3f} of the CAM peak {stats.cam_peak_contribution.sum():.3f}. "
        "Under GAP, a channel active on a small area has a small pooled value, so training gives it a large weight "
        "to matter for the logit; at the CAM peak that large weight times its high peak dominates. TAP pools only "
        "active pixels, so such channels no longer need large weights (it changes training; this view shows the "
        "statistics of the current model)."
    ) + _tap_comparison(session, c, k, stats.active_fraction, stats.weight)
    return files.save_png(plot), files.save_jpeg(picture), gr.update(choices=choices, value=str(k)), caption


def _tap_comparison(session: Session, c: int, k: int, area: np.ndarray, weight: np.ndarray) -> str:
    """What TAP training did to the weights, when a TAP-trained partner of this model is shipped."""
    partner = tap_partner(session.model)
    if partner is None or partner == session.model:
        return ""
    try:
        tap_analysis = get_analysis(session, partner)  # one extra forward pass, then cached
    except ModelLoading as loading:  # said here, not as an error: the rest of the view stands
        return f"\n\n**TAP-trained partner**: {loading} The comparison appears when this view is next redrawn."
    tap_weight = tap_analysis.class_weights[c]
    small = np.zeros(area.shape, bool)
    small[np.argsort(area, kind="stable")[: max(1, area.size // 4)]] = True  # smallest-area quarter of channels
    ratio = lambda w: float(np.abs(w[small]).mean() / max(np.abs(w[~small]).mean(), 1e-12))  # noqa: E731
    return (
        f"\n\n**TAP-trained partner** ({tap_analysis.model_name}): this channel's weight is "
        f"{tap_weight[k]:+.4f} there (here {weight[k]:+.4f}). Mean |weight| of the smallest-area quarter of "
        f"channels relative to the rest: {ratio(weight):.2f} here vs {ratio(tap_weight):.2f} after TAP training. "
        + tap_ratio_reading(ratio(weight), ratio(tap_weight))
    )


def tap_ratio_reading(here: float, after: float) -> str:
    """How to read the small-area weight ratio, and whether this photo supports the paper's argument.

    Args:
        here: mean |weight| of the smallest-area quarter of channels over that of the other channels, for the
            picked class with the GAP-trained weights (> 0; the areas are measured on this photo).
        after: the same ratio (same channel grouping) with the TAP-trained partner's weights (> 0).

    Returns:
        Markdown: what the ratio measures, which direction supports the argument (GAP: above 1; TAP
        training: lower), and the verdict for these two numbers.
    """
    premise, lowered = here > 1.0, after < here
    change = 100 * (after - here) / here
    verdict = {
        (True, True): "**This photo supports the argument** on both counts",
        (False, True): "**This photo supports it only in part**: TAP training lowered the ratio, but even under GAP "
        "the small-area channels carry smaller weights than the rest here (ratio below 1)",
        (True, False): "**This photo supports it only in part**: under GAP the small-area channels do carry larger "
        "weights, but TAP training did not lower the ratio",
        (False, False): "**This photo does not support it**: under GAP the small-area channels carry smaller weights "
        "than the rest (ratio below 1), and TAP training did not lower the ratio",
    }[premise, lowered]
    return (
        "*Reading:* the ratio compares the class weights of the quarter of channels active on the smallest area "
        "of this photo with the other channels' (above 1: small-area channels weigh more). The paper's argument "
        "predicts above 1 under GAP (small pooled values get large weights) and lower after TAP training "
        f"({here:.2f} → {after:.2f}, {change:+.0f} %). {verdict}; one photo and one class are a hint, not a test."
    )


def wire(events: Events, tab: WhyTapTab) -> None:
    """Redrawn after every new photo or class, when τ moves and when a channel is picked."""
    inputs = [events.named["session"], events.named["class_pick"], events.named["tau"], tab.channel]
    events.redraw_after_class(render_p1, inputs, tab.outputs)
    events.named["tau"].change(render_p1, inputs, tab.outputs, **events.quiet)
    tab.channel.input(render_p1, inputs, tab.outputs, **events.quiet)
    alone = event(render_tap_alone, VIEW)
    view = events.inputs(VIEW)
    events.redraw_after_class(alone, [*view, events.named["open_tab"]], tab.alone_outputs)
    tab.tab.select(alone, view, tab.alone_outputs, **events.quiet)
    tab.alone_button.click(alone, view, tab.alone_outputs, **events.quiet)
