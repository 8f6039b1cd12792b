"""The Gradio app: :func:`build_demo` lays out the page and wires it (:mod:`app.page`), then installs the lanes.

Where a value goes: each area of the page (the sidebar, the control bar, a tab in :mod:`app.tabs`, ``/explain`` in
:mod:`app.api`) is one module holding its components, its handlers and its events; the values are converted on
arrival in :mod:`app.inputs`, and the handlers ask :mod:`app.explanation` for the explanation and :mod:`app.views`
for its views.
"""

from __future__ import annotations

import gradio as gr

import cam_core
from app import texts
from app.analyses import pin_opening_example
from app.files import render_dir
from app.hosting import ExplainerBlocks
from app.inputs import DEFAULT_RESOLUTION
from app.lanes import install_lanes
from app.page import build_page, wire_page
from app.state import get_model

STARTUP_LOAD_WAIT_S = 600.0
"""How long building the app waits for the default model (it is on disk: seconds, however busy the machine)."""


def build_demo(expose_ui_events: bool = False) -> gr.Blocks:
    """Build the whole app (no server is started).

    Args:
        expose_ui_events: make the UI-only events callable by gradio_client (hidden from the API page)
            and add ``/noop`` events (queued and unqueued). For benchmarks and tests only; the app keeps them private.
    """
    gr.set_static_paths([render_dir()])  # the app's own pictures, served without a copy into Gradio's cache
    # loaded before the first request, however long it takes here (events wait for a load at most a second)
    get_model(cam_core.DEFAULT_MODEL, DEFAULT_RESOLUTION.output_stride, wait_s=STARTUP_LOAD_WAIT_S)
    pin_opening_example()  # the photo every page opens on: analysed once, here, never evicted
    with ExplainerBlocks(title="CAM Explainer") as demo:
        page = build_page()
        wire_page(page, "undocumented" if expose_ui_events else "private")
        if expose_ui_events:
            noop = gr.Button(visible=False)
            noop.click(lambda: None, None, None, api_name="noop", api_visibility="undocumented")
            noop.click(lambda: None, None, None, api_name="noop_direct", api_visibility="undocumented", queue=False)
    demo.queue(default_concurrency_limit=4)  # FairQueue, api_open=False, MAX_QUEUE: app/hosting.py
    install_lanes(demo)  # each lane's torch threads; unqueued events only read the caches (app/lanes.py)
    demo.css = texts.CSS
    return demo
