"""Segmentation: several classes at once as label maps, plain CAM vs the improved rule (issue #16).

The label maps and their views are Gradio-free (:mod:`app.label_maps`). The tab follows the main controls only
while it is open: after each control's view update a browser-only step (:data:`FOLLOW_JS`) clicks the
tab's hidden ``#seg-follow`` button when the tab is on screen, so a slider move sends no second request
while the tab is closed (a chained request per move cost the page ~35 ms of state handling, measured with
``bench/bench_browser.py``). The server checks too (the page's ``open_tab`` state, as the Swipe view): a
hidden tab answers with ``gr.skip()`` and computes nothing. Opening the tab draws it for the current controls. Every
event says its errors in the tab (:func:`~app.errors.with_notice`), CRF and download included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import gradio as gr
from gradio.components import Component

import cam_core
from app import label_maps as seg
from app import views
from app.errors import user_errors, with_notice
from app.events import Events, components, event
from app.explanation import resolve_class
from app.inputs import CONTROL_FIELDS, CRF, need_session
from app.label_maps import SEG, TOP_K_MAX, SegRequest
from app.state import get_analysis
from cam_core import crf
from cam_core.crf import CrfParams

ID, LABEL = "segmentation", "Segmentation"
INTRO = (
    "Several classes at once: each pixel takes the class whose CAM, over its own threshold, is strongest, "
    "else background, from the cached forward pass (no new one). Left plain CAM (MaS), right the improved "
    "rule of the controls below (always plain CAM's maps: the Method menu drives the other tabs). Pick classes, or "
    "leave the picker empty for the top-k over the floor."
)


@dataclass(frozen=True)
class SegmentationTab:
    """The tab's components."""

    tab: gr.Tab
    classes: gr.Dropdown
    search: gr.Dropdown
    top_k: gr.Slider
    min_probability: gr.Slider
    notice: gr.Markdown
    plain: gr.HTML
    ours: gr.HTML
    legend: gr.HTML
    caption: gr.Markdown
    refine: gr.Button
    download: gr.Button
    zip_file: gr.File
    follow: gr.Button

    def shares(self) -> dict[str, Component]:
        """Nothing: the tab reads the shared inputs and fills only its own views."""
        return {}

    @property
    def views(self) -> list[Any]:
        """The outputs of :class:`SegViews`, in order."""
        return [self.plain, self.ours, self.legend, self.caption]


def build() -> SegmentationTab:
    """The tab (inside the page's ``gr.Tabs``); class set defaults from :class:`cam_core.segment.SegmentConfig`."""
    start = seg.ClassSet()
    with gr.Tab(LABEL, id=ID) as tab:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=True):
            classes = gr.Dropdown(
                [], value=[], multiselect=True, label="Classes (empty: top-k over the floor)", elem_id="seg-classes"
            )
            search = gr.Dropdown(  # fixed 1000 choices, never an output (see the sidebar's search box)
                views.search_choices(), value=None, label="Add any ImageNet class", filterable=True, elem_id="seg-add"
            )
        with gr.Row():
            top_k = gr.Slider(1, TOP_K_MAX, start.top_k, step=1, label="top-k classes", elem_id="seg-top-k")
            floor = gr.Slider(0.0, 0.5, start.min_probability, step=0.01, label="probability floor", elem_id="seg-p")
        notice = gr.Markdown(elem_id="seg-notice")
        with gr.Row():
            plain = gr.HTML(elem_id="seg-plain", elem_classes="cam-panel")
            ours = gr.HTML(elem_id="seg-ours", elem_classes="cam-panel")
        legend = gr.HTML(elem_id="seg-legend")
        caption = gr.Markdown(elem_classes="caption", elem_id="seg-caption")
        with gr.Row():
            refine = gr.Button("Refine both label maps with dense CRF", interactive=crf.crf_available())
            download = gr.Button("Download label PNGs + JSON (.zip)", elem_id="seg-download")
        zip_file = gr.File(visible=False, elem_id="seg-download-file")  # the made zip: the browser downloads it
        follow = gr.Button("Redraw", elem_id="seg-follow", visible="hidden")  # in the DOM: FOLLOW_JS clicks it
    return SegmentationTab(
        tab, classes, search, top_k, floor, notice, plain, ours, legend, caption, refine, download, zip_file, follow
    )


# ---------------------------------------------------------------- handlers


class SegViews(NamedTuple):
    """Both label maps (HTML), the legend (HTML), the caption (Markdown)."""

    plain: Any
    ours: Any
    legend: Any
    caption: Any


FOLLOW_JS = """() => {
  const open = document.querySelector("#seg-top-k");
  if (open && open.offsetParent !== null) document.querySelector("#seg-follow")?.click();
}"""
"""Browser-only step of a control's view update: redraw the Segmentation tab if it is on screen (while it is, the
main tab's panels are hidden, so both requests may run at once)."""

_SKIP = SegViews(gr.skip(), gr.skip(), gr.skip(), gr.skip())


@user_errors
def render_segmentation(request: SegRequest, tab: str | None) -> SegViews:
    """A control moved: redraw from the cache while the tab is open; nothing at all while it is hidden."""
    if tab != ID:
        return _SKIP
    return SegViews(*seg.segmentation_views(seg.segment_pair(request)))


@user_errors
def open_segmentation(request: SegRequest) -> SegViews:
    """The tab was opened: draw it for the current controls (a message before the first photo)."""
    return SegViews(*seg.segmentation_views(seg.segment_pair(request)))


@user_errors
def new_photo(request: SegRequest, tab: str | None) -> tuple[Any, ...]:
    """A new photo or model: the picker offers its top classes and is emptied (automatic); drawn if open."""
    if request.session is None:
        return (*_SKIP, gr.skip())
    analysis = get_analysis(request.session, request.session.model)
    picker = gr.update(choices=seg.class_choices(analysis), value=[])
    automatic = replace(request, classes=replace(request.classes, picked=()))
    return (*render_segmentation(automatic, tab), picker)


@user_errors
def add_class(request: SegRequest, choice: Any) -> tuple[Any]:
    """A class found by search joins the picked ones (or the automatic set, when none was picked).

    Returns a 1-tuple (the picker's update), as :func:`~app.errors.with_notice` appends the notice to a tuple.
    """
    session = need_session(request.session)
    analysis = get_analysis(session, session.model)
    index = resolve_class(choice, analysis)
    current = [str(c) for c in seg.chosen_classes(request, analysis)]
    value = current if str(index) in current else [*current, str(index)]
    return (gr.update(choices=seg.class_choices(analysis, value), value=value),)


@user_errors
def refine_segmentation(request: SegRequest, params: CrfParams) -> SegViews:
    """Both label maps after the dense CRF (parameters of the CRF tab), on request."""
    if not crf.crf_available():
        raise cam_core.CrfUnavailableError("Dense CRF is unavailable here: " + crf._INSTALL_HINT)
    return SegViews(*seg.segmentation_views(seg.refine_pair(seg.segment_pair(request), params), refined=True))


@user_errors
def download_segmentation(request: SegRequest) -> tuple[str]:
    """The zip of both label PNGs (photo size) and their JSON sidecars (one output: the file the browser downloads)."""
    return (seg.export_zip(request),)


# ---------------------------------------------------------------- events


def wire(events: Events, tab: SegmentationTab) -> None:
    """The controls and the tab's own inputs redraw it (only while open); opening, CRF, search, download."""
    own = {"seg_classes": tab.classes, "top_k": tab.top_k, "min_probability": tab.min_probability}
    named = {**events.named, **own}
    inputs, outputs = components(named, SEG), [*tab.views, tab.notice]
    session, open_tab, visibility = events.named["session"], events.named["open_tab"], events.quiet["api_visibility"]
    live = with_notice(event(render_segmentation, SEG), len(SegViews._fields))
    for name in CONTROL_FIELDS:  # with every control's view update; a request only while the tab is open
        if name != "method":  # the label maps are plain CAM's whatever the method (app.label_maps.segment_request)
            events.in_browser_with_update(name, FOLLOW_JS)
    listeners = [tab.follow.click, tab.top_k.change, tab.min_probability.change, tab.classes.input]
    events.instant_views(listeners, live, [*inputs, open_tab], outputs, api_name="segmentation_live")
    opened = with_notice(event(open_segmentation, SEG), len(SegViews._fields))
    events.instant_views(tab.tab.select, opened, inputs, outputs, api_name="segmentation_open")
    photo = with_notice(event(new_photo, SEG), len(SegViews._fields) + 1)
    session.change(photo, [*inputs, open_tab], [*tab.views, tab.classes, tab.notice], **events.instant)
    added = tab.search.input(
        with_notice(event(add_class, SEG), 1), [*inputs, tab.search], [tab.classes, tab.notice], **events.instant
    )
    added.success(live, [*inputs, open_tab], outputs, **events.instant)
    added.then(None, None, [tab.search], js="() => null")  # browser-only: emptied for the next search
    refine = with_notice(event(refine_segmentation, SEG, CRF), len(SegViews._fields))
    tab.refine.click(refine, components(named, SEG, CRF), outputs, api_name="segmentation_crf",
                     api_visibility=visibility, **events.slow)  # fmt: skip
    download = with_notice(event(download_segmentation, SEG), 1)
    events.prepared_download(tab.download, download, inputs, [tab.zip_file, tab.notice], events.slow,
                             api_name="segmentation_zip", api_visibility=visibility)  # fmt: skip
