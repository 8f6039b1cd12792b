"""JSON & export: the explanation's JSON, and a zip of the JSON and the pictures made at the click.

Opening the tab shows the JSON (while it stays open the views' update redraws it:
:func:`app.tabs.compare.render_linked`); the download button makes the zip of what is on screen at the click, in the
fast lane, and the browser downloads it (:meth:`app.events.Events.prepared_download`).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
from gradio.components import Component

from app import files, views
from app.errors import user_errors
from app.events import Events, event
from app.explanation import Explanation, explain_request, explanation_json
from app.inputs import VIEW, ViewRequest

ID, LABEL = "export", "JSON & export"


@dataclass(frozen=True)
class ExportTab:
    """The explanation's JSON and the zip download: a click makes the zip of what is on screen (queued), then the
    browser downloads it (``zip_file``: the hidden holder of the made file)."""

    tab: gr.Tab
    json: gr.JSON
    download: gr.Button
    zip_file: gr.File

    def shares(self) -> dict[str, Component]:
        """The views' update (while the tab is open) and ``/explain`` fill the JSON."""
        return {"payload": self.json}


def build() -> ExportTab:
    """JSON & export."""
    with gr.Tab(LABEL, id=ID) as tab:
        json = gr.JSON(label="Explanation (boxes in original-image pixels)")
        download = gr.Button("Download JSON + PNGs (.zip)", elem_id="download")
        zip_file = gr.File(visible=False, elem_id="download-file")
    return ExportTab(tab, json, download, zip_file)


def zip_file(ex: Explanation, gt: np.ndarray | None, photo: str = "") -> str:
    """Bundle the JSON and the pictures (PNG) of ``ex`` into one zip file; returns its path (downloaded as
    ``cam-explanation-<photo>.zip``, ``photo`` the upload's file name)."""
    path = files.new_path(".zip", name=f"cam-explanation {os.path.splitext(photo)[0]}")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("explanation.json", json.dumps(explanation_json(ex, gt), indent=2))
        for name, picture in views.export_pictures(ex, gt)._asdict().items():
            archive.write(files.save_png(picture), f"{name}.png")
    return path


@user_errors
def export_json(request: ViewRequest) -> dict[str, Any]:
    """The export tab's JSON for the current controls, drawn when the tab opens (``{}`` before a photo)."""
    if request.session is None:
        return {}
    ex = explain_request(request)
    return views.explanation_json(ex, request.gt)


@user_errors
def export_zip(request: ViewRequest) -> str:
    """The zip of the JSON and the pictures for the controls at the click (fast lane; the browser then downloads it:
    :meth:`app.events.Events.prepared_download`).

    Raises:
        InvalidImageError: no photo yet.
    """
    return zip_file(explain_request(request), request.gt, request.need_session().name)


def wire(events: Events, tab: ExportTab) -> None:
    """Opening the tab shows the JSON; the download button makes the zip and the browser downloads it."""
    inputs = events.inputs(VIEW)
    tab.tab.select(event(export_json, VIEW), inputs, [tab.json], api_visibility="private", **events.fast)
    events.prepared_download(tab.download, event(export_zip, VIEW), inputs, [tab.zip_file], events.fast,
                             api_name="export_zip", api_visibility=events.quiet["api_visibility"])  # fmt: skip
