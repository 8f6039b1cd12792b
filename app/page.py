"""The page: the only module that knows every area. It lays them out (:func:`build_page`) and wires them
(:func:`wire_page`); each area's layout, handlers and events live in its own module.

Areas: the sidebar (:mod:`app.sidebar`, with the deep link's row, :mod:`app.link.deeplink`), the control bar
(:mod:`app.controls`), the tabs (:data:`TABS`, one module each in :mod:`app.tabs`) and ``/explain``'s hidden inputs
(:mod:`app.api`). A new tab is a module with ``ID``, ``LABEL``, ``build()`` and ``wire(events, tab)``, named in
:data:`TABS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gradio as gr

from app import api, controls, sidebar, texts
from app.api import ApiInputs
from app.controls import ControlsPanel
from app.events import Area, Events
from app.link import deeplink
from app.sidebar import Sidebar
from app.tabs import compare, crf, evaluate, export, segmentation, swipe, weights, why_tap

TABS = (compare, swipe, weights, why_tap, crf, evaluate, export, segmentation)
"""The tab modules in screen order; the first is open when the page loads. The compare tab is wired first: its update
is the views' update the others' events run (:class:`app.events.ViewsUpdate`)."""
TAB_IDS: tuple[str, ...] = tuple(tab.ID for tab in TABS)
"""The tabs' ids (``gr.Tab(id=...)``): a link's ``tab``, the open-tab state, the tab buttons' ``data-tab-id``."""


@dataclass(frozen=True)
class Page:
    """Every area of the page, plus the per-session states.

    Attributes:
        session: ``gr.State`` of the :class:`~app.state.Session` (``None`` before the first photo).
        open_tab: ``gr.State`` of the id of the tab on screen: views nobody sees are not redrawn.
        notice: errors of the instant (unqueued) events.
        tabs: the ``gr.Tabs`` holding the tabs.
        sidebar, controls, api: the areas outside the tabs.
        tab_areas: each tab's components (its module's dataclass), by tab id, in screen order.
    """

    session: gr.State
    open_tab: gr.State
    notice: gr.Markdown
    tabs: gr.Tabs
    sidebar: Sidebar
    controls: ControlsPanel
    api: ApiInputs
    tab_areas: dict[str, Any]

    def areas(self) -> list[Area]:
        """Every area, the tabs in screen order last."""
        return [self.sidebar, self.controls, self.api, *self.tab_areas.values()]


def build_page() -> Page:
    """Lay out the whole page inside the current ``gr.Blocks``: sidebar | sticky control bar, tabs, "How it works"."""
    gr.Markdown(texts.INTRO)
    session = gr.State(None)
    open_tab = gr.State(TAB_IDS[0])
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            side = sidebar.build()
        with gr.Column(scale=3):
            with gr.Column(elem_id="control-bar"):  # sticky over the tabs: a box stays in sight while sliding
                bar = controls.build()
                notice = gr.Markdown(elem_id="notice", latex_delimiters=[])  # redrawn on every move: no LaTeX scan
            with gr.Tabs(overflow_behavior="wrap", elem_id="tabs") as tabs:  # on a phone: rows, never a "..." menu
                tab_areas = {tab.ID: tab.build() for tab in TABS}
            with gr.Accordion("How it works", open=False):
                gr.Markdown(texts.HOW_IT_WORKS, latex_delimiters=[{"left": "$", "right": "$", "display": False}])
    hidden = api.build()
    return Page(session=session, open_tab=open_tab, notice=notice, tabs=tabs, sidebar=side, controls=bar, api=hidden,
                tab_areas=tab_areas)  # fmt: skip


def selected_tab(event: gr.SelectData) -> Any:
    """The id of the tab just opened (kept in a per-session state: views of closed tabs are not drawn); Gradio's
    ``event.index`` is the tab's place in :data:`TABS`. Any other index (raw HTTP) leaves the state as it is."""
    index = event.index
    valid = isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(TAB_IDS)
    return TAB_IDS[index] if valid else gr.skip()


def wire_page(page: Page, ui_visibility: Literal["private", "undocumented"]) -> None:
    """Register every event of ``page`` (inside its ``gr.Blocks``); each queued one in a lane (:mod:`app.lanes`).

    Args:
        page: the laid-out components (:func:`build_page`).
        ui_visibility: ``"private"`` (the app) or ``"undocumented"`` (benchmarks and tests call UI events).
    """
    events = Events.for_page(ui_visibility)
    events.share({"session": page.session, "open_tab": page.open_tab, "notice": page.notice, "tabs": page.tabs})
    for area in page.areas():
        events.share(area.shares())
    page.tabs.select(selected_tab, None, page.open_tab, queue=False, api_visibility="private")
    for tab in TABS:  # the compare tab first: it registers the views' update
        tab.wire(events, page.tab_areas[tab.ID])  # type: ignore[attr-defined]
    sidebar.wire(events, page.sidebar)
    api.wire(events, page.api)
    deeplink.wire(events, page.sidebar.link, TAB_IDS)
    controls.wire(events, page.controls)  # last: with the browser steps the others registered
