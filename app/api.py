"""``/explain``, the only public endpoint: one photo in, the JSON and both overlays out.

Its parameters are declared here, on their own (:data:`API_PARAMETERS`), and only ever appended to: a positional
caller (gradio_client, raw HTTP) sends values in this order, so a new control never moves an old parameter. They are
not derived from :class:`~app.inputs.Controls`' fields, whose order may change. The endpoint's hidden components
(class, resolution, overlays) are laid out by :func:`build`; the photo, model and controls are the page's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr
from gradio.components import Component

import cam_core
from app import files, inputs, views
from app.errors import user_errors
from app.events import Events
from app.explanation import explain_arrays, explanation_json, start_session
from app.inputs import DEFAULT_RESOLUTION, Controls

API_PARAMETERS: tuple[str, ...] = (
    "image",
    "model",
    "class_name",
    "theta_mas",
    "theta_pas",
    "percentile",
    "tap",
    "nwc",
    "pas",
    "input_size",  # appended for issue #13: a 9-value call still works and gets the default
    "output_stride",
    "method",  # appended for issue #25: an 11-value call still works and gets plain CAM
)
"""``/explain``'s parameters in the order positional callers send them. Append only: a new parameter goes last,
with a default (``tests/test_api.py`` holds the frozen list)."""
_DEFAULT = Controls()


@dataclass(frozen=True)
class ApiInputs:
    """Hidden components that only ``/explain`` uses (its class and resolution inputs, overlay outputs)."""

    button: gr.Button
    class_name: gr.Textbox
    input_size: gr.Number
    output_stride: gr.Number
    plain: gr.Image
    ours: gr.Image

    def shares(self) -> dict[str, Component]:
        """Nothing: only ``/explain`` reads these."""
        return {}

    def own(self) -> dict[str, Component]:
        """The endpoint's own inputs, by parameter name."""
        return {"class_name": self.class_name, "input_size": self.input_size, "output_stride": self.output_stride}


def build() -> ApiInputs:
    """The hidden components of the public API (never shown: no place in the page's DOM)."""
    button = gr.Button(visible=False)
    class_name = gr.Textbox("", visible=False, label="class: index or name; empty = top-1 (API input)")
    input_size = gr.Number(DEFAULT_RESOLUTION.input_size, precision=0, visible=False, label="input_size (API input)")
    output_stride = gr.Number(
        DEFAULT_RESOLUTION.output_stride, precision=0, visible=False, label="output_stride (API input)"
    )
    plain = gr.Image(format="png", visible=False, label="plain CAM overlay (API output)")
    ours = gr.Image(format="png", visible=False, label="improved CAM overlay (API output)")
    return ApiInputs(button, class_name, input_size, output_stride, plain, ours)


class ApiResult(NamedTuple):
    """``/explain``'s outputs: the JSON payload and both overlays as PNG files."""

    payload: dict[str, Any]
    plain_png: str
    ours_png: str


@user_errors
def explain(
    image: Any,
    model: str = cam_core.DEFAULT_MODEL,
    class_name: str = "",
    theta_mas: float = _DEFAULT.theta_mas,
    theta_pas: float = _DEFAULT.theta_pas,
    percentile: float = _DEFAULT.percentile,
    tap: bool = _DEFAULT.tap,
    nwc: bool = _DEFAULT.nwc,
    pas: bool = _DEFAULT.pas,
    input_size: int = DEFAULT_RESOLUTION.input_size,
    output_stride: int = DEFAULT_RESOLUTION.output_stride,
    method: str = _DEFAULT.method,
) -> ApiResult:
    """Public API: explain one photo. Returns (JSON, plain overlay PNG, improved overlay PNG).

    Repeated images reuse their cached forward pass. Boxes are in original-image pixels, inclusive. The parameters
    are :data:`API_PARAMETERS`, in that order: the controls' defaults from :class:`Controls`, then the analysis
    resolution (one of :data:`app.inputs.RESOLUTIONS`, default :data:`app.inputs.DEFAULT_RESOLUTION`), then the
    ``method`` both panels threshold (a key of :data:`app.inputs.METHODS`; default ``"cam"``), each appended last so
    that older positional calls keep working.
    """
    resolution = inputs.resolution(input_size, output_stride)
    controls = Controls.of(theta_mas, theta_pas, percentile, tap, nwc, pas, method)  # checked before any decoding
    session = start_session(image, model or cam_core.DEFAULT_MODEL, resolution)
    ex = explain_arrays(session, class_name, controls)
    return ApiResult(
        explanation_json(ex, None),
        files.save_png(views.panel_picture(ex, "plain", None)),
        files.save_png(views.panel_picture(ex, "ours", None)),
    )


def wire(events: Events, api: ApiInputs) -> None:
    """``/explain``: its inputs are the components of :data:`API_PARAMETERS`, in that order (the page's photo, model and
    controls, this endpoint's own class and resolution); its outputs the export tab's JSON and both overlays."""
    named = {**events.named, **api.own()}
    api.button.click(
        explain,
        [named[name] for name in API_PARAMETERS],
        [named["payload"], api.plain, api.ours],
        api_name="explain",
        preprocess=False,
        **events.fast,
    )
