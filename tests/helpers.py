"""What several test modules use and is not a fixture (the fixtures are in ``conftest.py``): paths, the root
``app.py`` as a module, a view request from raw values, Chromium's settings and its CSP watch, waiting for a
condition.

Test modules import from here (and from ``tests/bad_inputs.py``), never from one another.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from cam_core.cam import Analysis

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
CAT = EXAMPLES / "cat.jpg"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip
DESKTOP = {"width": 1500, "height": 1150}
"""The viewport of the browser tests (wider than 1440: both panels and the control bar at their desktop size)."""
THETA_MAS = "number input for θ for MaS: threshold = θ · max"
"""The accessible name of the MaS slider's number field (what a user types into)."""
OPENED_JS = """(() => {
  const status = document.querySelector('#status')?.innerText ?? '';
  if (!(status.includes('top-1') || status.includes('⚠️'))) return false;
  const histogram = document.querySelector('#histogram');
  return !histogram || histogram.offsetParent === null || histogram.querySelector('line.threshold') !== null;
})()"""
"""True once the page's first photo is analysed (the opening cat, or a link's example: issue #23) and, with the
first tab open, its views drawn: a test's own upload then never races the opening photo's events."""
T = TypeVar("T")


def load_app_module() -> ModuleType:
    """Import the root ``app.py`` (shadowed by the ``app`` package for plain imports): it builds the demo, and must
    not launch it."""
    spec = importlib.util.spec_from_file_location("app_main", ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def view_request(session: Any, class_choice: Any = "285", gt: str = "", **controls: object) -> Any:
    """The :class:`~app.inputs.ViewRequest` a view event builds from raw values: the default controls, overridden by
    ``controls`` (e.g. ``theta_mas=0.6``), the class as the picker sends it, the ground-truth field's text."""
    from dataclasses import asdict

    from app.inputs import VIEW, Controls

    values = {**asdict(Controls()), **controls}
    return VIEW.convert(session, class_choice, *values.values(), gt)


def shots(tmp_path: Path) -> Path:
    """Where screenshots go: ``$CAM_SCREENSHOT_DIR`` if set (to look at them), else the test's temporary folder."""
    return Path(os.environ.get("CAM_SCREENSHOT_DIR", tmp_path))


CSP_WATCH = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
                          (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"""


def watch_csp(page: Any) -> list[str]:
    """Record the page's Content-Security-Policy violations (issue #22 item 5): the DOM event (from the next
    navigation on) and the console's report; read them with :func:`csp_violations`."""
    seen: list[str] = []
    page.add_init_script(CSP_WATCH)
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None)
    return seen


def csp_violations(page: Any, seen: list[str]) -> list[str]:
    """Every violation :func:`watch_csp` recorded so far."""
    return [*seen, *page.evaluate("window.__csp || []")]


def show_cat(page: Any) -> None:
    """The cat in the panels, analysed and drawn: the page opens on it (issue #23), so it is uploaded only where the
    page shows something else (another photo, a refused file); waits for the opening photo first."""
    page.wait_for_function(OPENED_JS)
    if "Egyptian cat" not in page.locator("#status").inner_text():
        page.locator("input[type=file]").first.set_input_files(str(CAT))
        page.wait_for_function("(document.querySelector('#status')?.innerText ?? '').includes('Egyptian cat')")
    page.wait_for_function(OPENED_JS)


def wait_until(condition: Callable[[], T], timeout_s: float = 60.0, every_s: float = 0.05) -> T:
    """Poll ``condition`` until it returns a true value (returned), at most ``timeout_s`` (``AssertionError``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {condition}"
        time.sleep(every_s)


class TinyCNN(nn.Module):
    """Conv -> ReLU -> Conv -> ReLU -> GAP -> Linear, with timm's forward_features / forward_head API."""

    def __init__(self, channels: int = 6, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, channels, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.fc = nn.Linear(channels, classes)
        self.pretrained_cfg = {"input_size": (3, 32, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3,
                               "interpolation": "bilinear", "crop_pct": 1.0}  # fmt: skip

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.global_pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def hand_analysis(features: np.ndarray, weights: np.ndarray, image_size: tuple[int, int] = (2, 3)) -> Analysis:
    """An Analysis built by hand: features float (C, h, w), weights float (K, C), zero bias, uniform-ish logits."""
    features, weights = features.astype(np.float32), weights.astype(np.float32)
    logits = np.einsum("kc,chw->k", weights, features) / features[0].size  # GAP head, bias 0
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    return Analysis(
        "hand", np.zeros((*image_size, 3), np.uint8), features, weights, np.zeros(len(weights), np.float32),
        logits.astype(np.float32), probabilities.astype(np.float32), tuple(f"class{k}" for k in range(len(weights))),
        image_size,
    )  # fmt: skip


def svg_boxes(html: str) -> list[list[int]]:
    """The boxes drawn over a panel, in display pixels."""
    return [[int(v) for v in box.split(",")] for box in re.findall(r'data-box="([0-9,]+)"', html)]


def panel_picture(html: str) -> Any:
    """The (static, served) picture behind a panel's SVG overlay, as a PIL image."""
    from PIL import Image

    match = re.search(r'<img src="gradio_api/file=([^"]+)"', html)
    assert match, html[:200]
    return Image.open(match.group(1))


def config_component(config: dict[str, Any], elem_id: str) -> dict[str, Any]:
    """The component of a page's Gradio config with this ``elem_id``."""
    return next(c for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)


def check_labels_apart(boxes: list[np.ndarray], rects: list[Any], picture: tuple[int, int], stroke: float) -> None:
    """Box labels (``rects``, x0 y0 x1 y1) lie inside the ``picture`` (H, W), never overlap one another, and no box
    edge (``stroke`` wide) cuts one."""
    from itertools import combinations

    from app import render

    height, width = picture
    for rect in rects:
        assert min(rect[0], rect[1]) >= 0 and rect[2] <= width and rect[3] <= height, rect
    for a, b in combinations(rects, 2):
        assert not render._overlap(a, b), (a, b)  # labels never overlap
    for rect in rects:
        for box in boxes:
            for edge in render._edges(box, stroke):
                assert not render._overlap(rect, edge), (rect, box)  # no edge cuts a label


def call(http: Any, name: str, data: list[Any]) -> tuple[str, Any]:
    """``POST /gradio_api/call/<name>`` then read its event stream: ``("complete" | "error", payload)``."""
    response = http.post(f"/gradio_api/call/{name}", json={"data": data})
    assert response.status_code == 200, response.text
    stream = http.get(f"/gradio_api/call/{name}/{response.json()['event_id']}").text
    kind = "error" if "event: error" in stream else "complete"
    payload = json.loads(stream.rsplit("data:", 1)[1])
    return kind, payload["error"] if kind == "error" and isinstance(payload, dict) else payload


def fn_index(demo: Any, api_name: str) -> int:
    config = demo.get_config_file()
    return next(i for i, dep in enumerate(config["dependencies"]) if dep.get("api_name") == api_name)


def queue_join(http: Any, demo: Any, api_name: str, data: list[Any]) -> dict[str, Any]:
    """What the page itself does: ``queue/join`` with an ``fn_index``, then the session's event stream; the event's
    ``output``. A join refused because this address's previous long job is still held (it leaves the queue just
    after its answer) is sent again, as the refusal asks, for at most 120 s."""
    from app import fair_queue

    session = os.urandom(8).hex()
    body = {"data": data, "fn_index": fn_index(demo, api_name), "session_hash": session}
    deadline = time.monotonic() + 120
    response = http.post("/gradio_api/queue/join", json=body)
    while response.status_code == 429 and fair_queue.ONE_LONG_JOB in response.text and time.monotonic() < deadline:
        time.sleep(0.2)
        response = http.post("/gradio_api/queue/join", json=body)
    assert response.status_code == 200, response.text
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and "process_completed" in line:
                return dict(json.loads(line[5:])["output"])
    raise AssertionError("no process_completed message")
