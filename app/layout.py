"""The page's layout: one builder per area, each returning a small dataclass of its components.

No event is registered here (that is :mod:`app.wiring`). Every default a component shows is read from
where it is defined: the thresholds from :class:`app.inputs.Controls` (itself from
``cam_core.PRESETS[DEFAULT_PRESET]``), τ from that preset, the CRF sliders from
:class:`cam_core.crf.CrfParams`. Slider *ranges* are laid out in the tables below.

Here: the sidebar, the control bar, the hidden API inputs and the page; the tabs' builders (with the CRF
sliders' table) are in :mod:`app.tabs`, and their names are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import gradio as gr

import cam_core
from app import texts, views
from app.inputs import (
    DEFAULT_PRESET,
    DEFAULT_RESOLUTION,
    EXAMPLES,
    MAX_GT_BOXES,
    Controls,
    resolution_choices,
    resolution_info,
)
from app.models import model_choices, tap_toggle
from app.segmentation_tab import SegmentationTab, build_segmentation_tab
from app.tabs import COLOUR_MAP_JS as COLOUR_MAP_JS
from app.tabs import (
    COMPARE_TAB,
    CompareTab,
    CrfTab,
    EvaluateTab,
    ExportTab,
    SwipeTab,
    WeightsTab,
    WhyTapTab,
    build_compare_tab,
    build_crf_tab,
    build_evaluate_tab,
    build_export_tab,
    build_swipe_tab,
    build_weights_tab,
    build_why_tap_tab,
)
from app.tabs import CRF_SLIDERS as CRF_SLIDERS
from app.tabs import DRAW_BOX_JS as DRAW_BOX_JS

EXAMPLE_FILES = ["cat.jpg", "coffee.jpg", "rocket.jpg", "coins.jpg", "astronaut.jpg"]
EXAMPLES_LABEL = (  # in EXAMPLE_FILES' order, one label per photo
    "Examples, left to right: cat (fills the photo), espresso (large), rocket (small), "
    "coins (several objects), astronaut (no ImageNet class fits)"
)

# name: (minimum, maximum, step, label); the values come from Controls() and the preset
THRESHOLD_SLIDERS: dict[str, tuple[float, float, float, str]] = {
    "theta_mas":  (0.0,  1.0,   0.01, "θ for MaS: threshold = θ · max"),
    "theta_pas":  (0.0,  1.0,   0.01, "θ for PaS: threshold = θ · P_p"),
    "percentile": (50.0, 100.0, 1.0,  "percentile p for PaS"),
    "tau":        (0.0,  0.5,   0.01, "τ for TAP (statistics in 'Why TAP')"),
}  # fmt: skip


def _slider(name: str, value: float) -> gr.Slider:
    low, high, step, label = THRESHOLD_SLIDERS[name]
    return gr.Slider(low, high, value, step=step, label=label, elem_id=name.replace("_", "-"))


@dataclass(frozen=True)
class LinkRow:
    """The deep link (see :mod:`app.deeplink`): the link field, its notice, and three hidden helpers.

    Attributes:
        box: the link to this view, written by the browser.
        copy: copies the page's URL (the link) to the clipboard, in the browser.
        notice: what a link's restore ignored.
        example: hidden: the bundled example the photo is (``""`` for an upload), for the link.
        pending: ``gr.State`` of what a link restores once its example is analysed.
        tab: hidden: the id of the tab a link opens (a browser-only step selects it: ``app.deeplink``).
    """

    box: gr.Textbox
    copy: gr.Button
    notice: gr.Markdown
    example: gr.Textbox
    pending: gr.State
    tab: gr.Number


def build_link_row() -> LinkRow:
    """The "link to this view" field: filled by the browser from the page state."""
    box = gr.Textbox(
        label="Link to this view",
        info="Restores an example photo, the model, class, sliders, toggles and tab. Uploaded photos are not "
        "linkable: the link then keeps only the settings.",
        interactive=False,
        max_lines=3,
        elem_id="link",
    )  # its text is written by the browser (app.deeplink.writer_js), not by an event output: so is the copy
    copy = gr.Button("Copy the link", size="sm", variant="secondary", elem_id="link-copy")
    # shown when a link ignores something; plain text (its values are made inert), never maths
    notice = gr.Markdown(elem_id="link-notice", visible=False, latex_delimiters=[])
    example = gr.Textbox("", visible=False, elem_id="link-example")
    tab = gr.Number(None, visible=False, precision=0, elem_id="link-tab")
    return LinkRow(box, copy, notice, example, gr.State(None), tab)


@dataclass(frozen=True)
class Sidebar:
    """The left column: photo, model, resolution, class, ground truth, status, deep link."""

    image: gr.Image
    model: gr.Dropdown
    resolution: gr.Dropdown
    class_pick: gr.Radio
    class_search: gr.Dropdown
    status: gr.Markdown
    gt_box: gr.Textbox
    gt_clear: gr.Button
    gt_add: gr.Checkbox
    link: LinkRow


def build_sidebar() -> Sidebar:
    """Photo upload with examples, model and resolution menus, class picker and search, ground-truth field,
    deep link."""
    image = gr.Image(label="Photo", sources=["upload", "clipboard", "webcam"], type="filepath", height=240)
    gr.Examples(
        [[str(EXAMPLES / name)] for name in EXAMPLE_FILES],
        inputs=[image],
        label=EXAMPLES_LABEL,
    )
    model = gr.Dropdown(model_choices(), value=cam_core.DEFAULT_MODEL, label="Model")
    resolution = gr.Dropdown(
        resolution_choices(),
        value=DEFAULT_RESOLUTION.value,
        label="Resolution",
        info=resolution_info(),
        elem_id="resolution",
    )
    class_pick = gr.Radio([], label="Class: the model's top-5 (probability)", elem_id="class-pick")
    # all 1000 classes: fixed choices, never an event output (Gradio copies every output's props on each
    # status update, so a 1000-choice output would slow every slider move several-fold)
    class_search = gr.Dropdown(
        views.search_choices(),
        value=None,
        label="Any other ImageNet class (type to search)",
        filterable=True,
        elem_id="class-search",
    )
    status = gr.Markdown("Upload a photo or pick an example.", elem_id="status")
    gt_box = gr.Textbox(
        label=f"Ground-truth boxes (optional, up to {MAX_GT_BOXES}): drag on a photo, or type and press Enter",
        placeholder="x0, y0, x1, y1; x0, y0, x1, y1 (photo pixels)",
        info="A drag replaces the boxes; Shift+drag (or tick “add boxes”) adds one. IoU: the best-matching box.",
        elem_id="gt-box",
    )
    with gr.Row(equal_height=True):
        gt_add = gr.Checkbox(False, label="add boxes", info="drags add a box (touch screens)", elem_id="gt-add")
        gt_clear = gr.Button("Clear the ground-truth boxes", size="sm", variant="secondary")
    link = build_link_row()
    return Sidebar(image, model, resolution, class_pick, class_search, status, gt_box, gt_clear, gt_add, link)


@dataclass(frozen=True)
class ControlsPanel:
    """Preset, module toggles and threshold sliders (``tau`` is the P1 tab's, not a :class:`Controls` field)."""

    preset: gr.Radio
    tap: gr.Checkbox
    nwc: gr.Checkbox
    pas: gr.Checkbox
    theta_mas: gr.Slider
    theta_pas: gr.Slider
    percentile: gr.Slider
    tau: gr.Slider

    def by_field(self) -> dict[str, Any]:
        """The six :class:`Controls` components by field name."""
        return {field.name: getattr(self, field.name) for field in fields(Controls)}

    @property
    def sliders(self) -> list[gr.Slider]:
        """The sliders a preset sets, in :class:`app.handlers.PresetValues` order (the resolution comes after)."""
        return [self.theta_mas, self.theta_pas, self.percentile, self.tau]


def build_controls() -> ControlsPanel:
    """The control bar over the tabs; every value from :class:`Controls` and the default preset.

    Two rows (preset and toggles; the four sliders side by side), short enough to stay on screen with both
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
    with gr.Row(elem_id="sliders"):
        theta_mas = _slider("theta_mas", start.theta_mas)
        theta_pas = _slider("theta_pas", start.theta_pas)
        percentile = _slider("percentile", start.percentile)
        tau = _slider("tau", cam_core.PRESETS[DEFAULT_PRESET].tau_tap)
    return ControlsPanel(preset, tap, nwc, pas, theta_mas, theta_pas, percentile, tau)


@dataclass(frozen=True)
class ApiInputs:
    """Hidden components that only ``/explain`` uses (its class and resolution inputs, overlay outputs)."""

    button: gr.Button
    class_name: gr.Textbox
    input_size: gr.Number
    output_stride: gr.Number
    plain: gr.Image
    ours: gr.Image


def build_api() -> ApiInputs:
    """The hidden components of the public API."""
    button = gr.Button(visible=False)
    class_name = gr.Textbox("", visible=False, label="class: index or name; empty = top-1 (API input)")
    input_size = gr.Number(DEFAULT_RESOLUTION.input_size, precision=0, visible=False, label="input_size (API input)")
    output_stride = gr.Number(
        DEFAULT_RESOLUTION.output_stride, precision=0, visible=False, label="output_stride (API input)"
    )
    plain = gr.Image(format="png", visible=False, label="plain CAM overlay (API output)")
    ours = gr.Image(format="png", visible=False, label="improved CAM overlay (API output)")
    return ApiInputs(button, class_name, input_size, output_stride, plain, ours)


@dataclass(frozen=True)
class Page:
    """Every area of the page, plus the per-session states.

    Attributes:
        session: ``gr.State`` of the :class:`~app.state.Session` (``None`` before the first photo).
        open_tab: ``gr.State`` of the tab on screen: views nobody sees are not redrawn.
        notice: errors of the instant (unqueued) events.
    """

    session: gr.State
    open_tab: gr.State
    tabs: gr.Tabs
    sidebar: Sidebar
    compare: CompareTab
    swipe: SwipeTab
    weights: WeightsTab
    why_tap: WhyTapTab
    crf: CrfTab
    evaluate: EvaluateTab
    export: ExportTab
    notice: gr.Markdown
    controls: ControlsPanel
    api: ApiInputs
    segmentation: SegmentationTab

    def view_inputs(self) -> dict[str, Any]:
        """Inputs by the names of :func:`app.inputs.view_request`'s and :func:`app.inputs.crf_params`' parameters."""
        return {
            "session": self.session,
            "class_choice": self.sidebar.class_pick,
            "gt_text": self.sidebar.gt_box,
            **self.controls.by_field(),
            **self.crf.sliders,
        }

    def view_outputs(self) -> dict[str, Any]:
        """Outputs by the field names of the handlers' named results (:mod:`app.handlers`, :mod:`app.views`)."""
        c = self.compare
        return {
            "plain": c.plain,
            "ours": c.ours,
            "histogram": c.histogram,
            "masks": c.masks,
            "caption": c.caption,
            "payload": self.export.json,
            "swipe": self.swipe.view,
            "gt_text": self.sidebar.gt_box,
        }


def build_page() -> Page:
    """Lay out the whole page inside the current ``gr.Blocks``: sidebar | sticky control bar, tabs, "How it works"."""
    gr.Markdown(texts.INTRO)
    session = gr.State(None)
    open_tab = gr.State(COMPARE_TAB)
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            sidebar = build_sidebar()
        with gr.Column(scale=3):
            with gr.Column(elem_id="control-bar"):  # sticky over the tabs: a box stays in sight while sliding
                controls = build_controls()
                notice = gr.Markdown(elem_id="notice", latex_delimiters=[])  # redrawn on every move: no LaTeX scan
            with gr.Tabs() as tabs:
                compare, swipe, weights = build_compare_tab(), build_swipe_tab(), build_weights_tab()
                why_tap, crf_tab, evaluate = build_why_tap_tab(), build_crf_tab(), build_evaluate_tab()
                export, segmentation = build_export_tab(), build_segmentation_tab()
            with gr.Accordion("How it works", open=False):
                gr.Markdown(texts.HOW_IT_WORKS, latex_delimiters=[{"left": "$", "right": "$", "display": False}])
    api = build_api()
    return Page(
        session,
        open_tab,
        tabs,
        sidebar,
        compare,
        swipe,
        weights,
        why_tap,
        crf_tab,
        evaluate,
        export,
        notice,
        controls,
        api,
        segmentation,
    )
