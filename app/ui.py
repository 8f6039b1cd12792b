"""The Gradio app: :func:`build_demo` lays out the page (:mod:`app.layout`) and wires it (:mod:`app.wiring`).

Where a value goes, in three files: the component is laid out in :mod:`app.layout`, its event is
registered in :mod:`app.wiring` and converted on arrival in :mod:`app.inputs`; the handler in
:mod:`app.handlers` asks :mod:`app.explanation` for the explanation and :mod:`app.views` for its views.
"""

from __future__ import annotations

import gradio as gr

import cam_core
from app import texts
from app.files import render_dir
from app.hosting import ExplainerBlocks
from app.inputs import DEFAULT_RESOLUTION
from app.lanes import install_lanes
from app.layout import build_page
from app.state import get_model
from app.wiring import wire_page

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
