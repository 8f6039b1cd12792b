"""The control bar over the tabs: preset, module toggles (TAP, NWC, PaS), the method menu and threshold sliders.

Every value a control starts at is read from where it is defined: the thresholds from :class:`app.inputs.Controls`
(itself from ``cam_core.PRESETS[DEFAULT_PRESET]``); the sliders' ranges and labels from
:data:`app.inputs.THRESHOLD_SLIDERS`. A preset also sets τ, whose slider sits in the Why TAP tab where it acts (its
statistics: :mod:`app.tabs.why_tap`; no localisation view uses τ), and a hand move of τ leaves the preset as the
other sliders' do. Each control redraws the views (:meth:`app.events.Events.render_now`) with the
browser steps other areas registered for it (:meth:`app.events.Events.in_browser_with_update`): so the control bar is
wired last (:func:`app.page.wire_page`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr
from gradio.components import Component

import cam_core
from app.events import Events, steps_js
from app.inputs import CONTROL_FIELDS, DEFAULT_PRESET, DEFAULT_RESOLUTION, METHODS, THRESHOLD_SLIDERS, Controls
from app.models import Resolution, tap_toggle


def _slider(name: str, value: float) -> gr.Slider:
    low, high, step, label = THRESHOLD_SLIDERS[name]
    return gr.Slider(low, high, value, step=step, label=label, elem_id=name.replace("_", "-"))


@dataclass(frozen=True)
class ControlsPanel:
    """Preset, module toggles and threshold sliders (τ, which the preset sets too, is the Why TAP tab's)."""

    preset: gr.Radio
    tap: gr.Checkbox
    nwc: gr.Checkbox
    pas: gr.Checkbox
    theta_mas: gr.Slider
    theta_pas: gr.Slider
    percentile: gr.Slider
    method: gr.Dropdown

    def by_field(self) -> dict[str, Any]:
        """The :class:`Controls` components by field name."""
        return {name: getattr(self, name) for name in CONTROL_FIELDS}

    def shares(self) -> dict[str, Component]:
        """The controls by field name and the preset."""
        return {**self.by_field(), "preset": self.preset}

    @property
    def sliders(self) -> list[gr.Slider]:
        """The control bar's sliders a preset sets, in :class:`PresetValues` order (τ and the resolution after)."""
        return [self.theta_mas, self.theta_pas, self.percentile]


def build() -> ControlsPanel:
    """The control bar over the tabs; every value from :class:`Controls` and the default preset.

    Two rows (preset and toggles; the three sliders side by side), short enough to stay on screen with both
    panels at 1440 x 1000: the bar is sticky (``#control-bar`` in :data:`app.texts.CSS`).
    """
    start = Controls()
    with gr.Row(equal_height=True, elem_id="toggles"):
        preset = gr.Radio(
            [*cam_core.PRESETS, "custom"], value=DEFAULT_PRESET, label="Preset", scale=4, elem_id="preset"
        )
        toggle = {"value": start.tap, **tap_toggle(cam_core.DEFAULT_MODEL, DEFAULT_RESOLUTION)}
        tap = gr.Checkbox(label="TAP", scale=1, elem_id="tap", **toggle)
        nwc = gr.Checkbox(start.nwc, label="NWC", info="clamp negative weights", scale=1, elem_id="nwc")
        pas = gr.Checkbox(start.pas, label="PaS", info="percentile threshold", scale=1, elem_id="pas")
        method = gr.Dropdown(
            [(label, value) for value, label in METHODS.items()],
            value=start.method,
            label="Method",
            info="whose map both panels threshold",
            scale=2,
            min_width=150,
            elem_id="method",
        )
    with gr.Row(elem_id="sliders"):
        theta_mas = _slider("theta_mas", start.theta_mas)
        theta_pas = _slider("theta_pas", start.theta_pas)
        percentile = _slider("percentile", start.percentile)
    return ControlsPanel(preset, tap, nwc, pas, theta_mas, theta_pas, percentile, method)


class PresetValues(NamedTuple):
    """The sliders and the resolution a preset sets (``gr.update()`` each for "custom")."""

    theta_mas: Any
    theta_pas: Any
    percentile: Any
    tau: Any
    resolution: Any


def apply_preset(name: str) -> PresetValues:
    """Slider values and resolution (a Resolution menu value) of a named preset (no change for "custom")."""
    preset = cam_core.PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        return PresetValues(gr.update(), gr.update(), gr.update(), gr.update(), gr.update())
    resolution = Resolution(preset.input_size, preset.output_stride).value
    return PresetValues(preset.theta_mas, preset.theta_pas, preset.percentile, preset.tau_tap, resolution)


def wire(events: Events, controls: ControlsPanel) -> None:
    """Every control redraws the views (with its browser steps: :attr:`app.events.Events.with_update`); a hand-moved
    slider (τ in the Why TAP tab too) leaves the preset; a preset sets the sliders, τ and the resolution."""
    inputs = events.view_inputs
    for name, component in controls.by_field().items():
        steps = events.with_update.get(name)
        js = steps_js(steps, inputs.index(component)) if steps else None
        events.instant_views(component.change, events.render_now, inputs, events.view_outputs,
                             api_name=f"update_{name}", js=js)  # fmt: skip
        events.wired_controls.add(name)
    tau = events.named["tau"]  # the Why TAP tab's (shared by it: the control bar is wired last)
    moved = [slider.input for slider in (*controls.sliders, tau)]
    gr.on(moved, None, None, controls.preset, js="() => 'custom'")  # by hand: browser-only, no round trip
    controls.preset.change(
        apply_preset,
        [controls.preset],
        [*controls.sliders, tau, events.named["resolution"]],
        **events.quiet,  # UI only: no loading overlay on the sliders and the menu (it ran after every hand move)
    )
