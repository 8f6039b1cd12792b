"""Plain vs improved, the main tab: both panels (a box can be dragged on either), caption, histogram, masks.

Its update is the one every control, class and ground-truth change runs (:class:`~app.events.ViewsUpdate`, registered
by :func:`wire`): both panels, histogram, masks (HTML over cached pictures) and caption, plus the swipe pictures and
the export JSON while their tabs are open (:mod:`app.tabs.swipe`, :mod:`app.tabs.export` ride on it). The forward pass
runs only for a new photo, model or resolution (:mod:`app.analyses`); everything here works on the cache.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
from gradio.components import Component

import cam_core
from app import html_views, inputs, views
from app.errors import user_errors, with_notice
from app.events import Events, ViewsUpdate, event
from app.explanation import explain_request
from app.inputs import DRAG, VIEW, ViewRequest
from app.tabs import export, swipe

ID, LABEL = "compare", "Plain vs improved"
HERE = Path(__file__).parent
DRAW_BOX_JS = (HERE / "draw_box.js").read_text(encoding="utf-8")  # drag a ground-truth box
COLOUR_MAP_JS = (HERE / "colormap.js").read_text(encoding="utf-8")  # colour map, opacity: browser only


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

    def shares(self) -> dict[str, Component]:
        """The views' update fills these (:class:`LinkedViews`' fields)."""
        return {"plain": self.plain, "ours": self.ours, "histogram": self.histogram, "masks": self.masks,
                "caption": self.caption}  # fmt: skip


def build() -> CompareTab:
    """The main tab."""
    with gr.Tab(LABEL, id=ID):
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


# ---------------------------------------------------------------- handlers


class LinkedViews(NamedTuple):
    """:class:`~app.views.LocalizationViews` plus the swipe pictures (``None`` while their tab is hidden; so is
    ``payload``, the export tab's JSON). The export zip is made on request only (:func:`app.tabs.export.export_zip`).

    ``None``, not ``gr.skip()``: Gradio answers a skip by building a new component and updating the session's
    config (~1.5 ms each on the slider path, ``bench/bench_browser.py``); a hidden tab's view is redrawn when the
    tab opens anyway."""

    plain: str
    ours: str
    histogram: str
    masks: str
    caption: str
    payload: dict[str, Any] | None
    swipe: Any


class DrawnBox(NamedTuple):
    """After a box was dragged on a panel: the ground-truth field's new text, then the views."""

    gt_text: str
    plain: str
    ours: str
    histogram: str
    masks: str
    caption: str
    payload: dict[str, Any]


@user_errors
def render_localization(request: ViewRequest) -> views.LocalizationViews:
    """Slider / toggle update: both panels, histogram, masks (HTML over cached pictures), caption, JSON."""
    return views.localization_views(explain_request(request), request.gt)


@user_errors
def render_linked(request: ViewRequest, tab: str | None) -> LinkedViews:
    """:func:`render_localization` plus the swipe pictures and the export tab's JSON, each only while its tab is open.

    The swipe view needs two encoded pictures, so it is redrawn only where someone can see it; opening its tab
    draws it for the current controls (:func:`app.tabs.swipe.swipe_pair`). The export tab's JSON is sent only while
    that tab is open too: rendering its tree in the page cost every slider move time the user could see
    (``bench/bench_browser.py``). No zip here: a slider move never writes one (:func:`app.tabs.export.export_zip`).
    """
    ex = explain_request(request)
    pictures = views.swipe_pictures(ex, request.gt) if tab == swipe.ID else None
    shown = views.localization_views(ex, request.gt)
    payload = shown.payload if tab == export.ID else None
    return LinkedViews(shown.plain, shown.ours, shown.histogram, shown.masks, shown.caption, payload, pictures)


CLEARED = LinkedViews("", "", "", "", "", {}, None)
"""Every linked view emptied (no photo, or a refused one)."""


@user_errors
def render_photo(request: ViewRequest, tab: str | None) -> LinkedViews:
    """After a new photo, model or class: :func:`render_linked`, or every view emptied when there is no photo
    (a refused upload, a model picked first): the status line has said why, so no second message."""
    return CLEARED if request.session is None else render_linked(request, tab)


ADD_BOX = "add"
"""``event.value`` of a drag that adds a box (Shift held, or the "add boxes" checkbox); any other replaces them."""


@user_errors
def draw_gt(request: ViewRequest, gt_text: Any, event: gr.SelectData) -> DrawnBox:
    """A box dragged on either panel (``event.index`` = corner fractions): fill the ground-truth field, re-render.

    A plain drag replaces the boxes; an adding drag (``event.value == "add"``, see ``app/tabs/draw_box.js``) appends
    the box to those in ``gt_text`` (the field's raw text, checked here), up to :data:`app.inputs.MAX_GT_BOXES`.
    """
    size = request.need_session().size
    box = inputs.box_from_fractions(event.index, size)[None, :]  # (1, 4)
    if event.value == ADD_BOX:
        try:
            before = inputs.parse_boxes(gt_text, size)
        except cam_core.ParameterError as exc:
            raise cam_core.ParameterError(
                f"{exc} Fix or clear the field, or drag without Shift to replace it."
            ) from exc
        if before is not None and len(before) >= inputs.MAX_GT_BOXES:
            raise cam_core.ParameterError(f"At most {inputs.MAX_GT_BOXES} ground-truth boxes: clear some first.")
        box = box if before is None else np.concatenate([before, box])
    drawn = dataclasses.replace(request, gt=box)
    return DrawnBox(inputs.format_boxes(box), *render_localization(drawn))


# ---------------------------------------------------------------- events


def wire(events: Events, tab: CompareTab) -> None:
    """Register the views' update (every control, class and photo change runs it: :mod:`app.controls`,
    :mod:`app.sidebar`); a box dragged on either panel (``app/tabs/draw_box.js``) replaces the ground truth, or joins
    it (Shift)."""
    width = len(LinkedViews._fields)
    events.views = ViewsUpdate(
        now=with_notice(event(render_linked, VIEW), width),
        after_photo=with_notice(event(render_photo, VIEW), width),
        result=LinkedViews,
    )
    draw_now = with_notice(event(draw_gt, DRAG), len(DrawnBox._fields))
    drawn = [*events.outputs(DrawnBox), events.named["notice"]]
    sent = [*events.inputs(DRAG), events.named["gt_text"]]  # the old boxes, for an adding drag
    gr.on([tab.plain.select, tab.ours.select], draw_now, sent, drawn, **events.instant)
