"""Swipe: both panels as one picture with a slider between them (server-drawn with inferno).

Drawn only while its tab is open: opening the tab draws it for the current controls (:func:`swipe_pair`); while it
stays open the views' update (:func:`app.tabs.compare.render_linked`) redraws it, and a closed tab's picture is
emptied, never redrawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.components import Component

from app import views
from app.errors import user_errors
from app.events import Events, event
from app.explanation import explain_request
from app.inputs import VIEW, ViewRequest

ID, LABEL = "swipe", "Swipe"


@dataclass(frozen=True)
class SwipeTab:
    """Both panels as one picture with a slider between them."""

    tab: gr.Tab
    view: gr.ImageSlider

    def shares(self) -> dict[str, Component]:
        """The views' update fills the picture while the tab is open."""
        return {"swipe": self.view}


def build() -> SwipeTab:
    """The swipe view (drawn only while its tab is open)."""
    with gr.Tab(LABEL, id=ID) as tab:
        view = gr.ImageSlider(label="Swipe: plain CAM | improved", format="png", interactive=False, elem_id="swipe")
    return SwipeTab(tab, view)


@user_errors
def swipe_pair(request: ViewRequest) -> tuple[str, str] | None:
    """The swipe view's two pictures, drawn when its tab is opened (nothing before the first photo)."""
    if request.session is None:
        return None
    return views.swipe_pictures(explain_request(request), request.gt)


def wire(events: Events, tab: SwipeTab) -> None:
    """Opening the tab draws it for the current controls."""
    tab.tab.select(event(swipe_pair, VIEW), events.inputs(VIEW), [tab.view], api_visibility="private", **events.fast)
