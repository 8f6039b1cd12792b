"""Public-hosting robustness: awkward uploads through the UI handlers and the API, file-route safety,
bounded memory, and concurrent sessions that never see each other's results."""

from __future__ import annotations

import concurrent.futures
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

import cam_core
from app import analyses, api, explanation, inputs, state
from app.files import render_dir
from app.inputs import VIEW
from app.tabs import compare
from tests.bad_inputs import CAT, REFUSED, WORKS, exif_rotated
from tests.helpers import ROOT

FIXED = {"truncated.jpg", "notes.png"}  # a representative pair through the API (the rest via handlers)


@pytest.mark.parametrize("name", sorted(WORKS))
def test_awkward_uploads_work_in_the_app(name: str, uploads: Path) -> None:
    session, _classes, _status = analyses.on_image({"path": str(WORKS[name](uploads / name))}, cam_core.DEFAULT_MODEL)
    request = VIEW.convert(session, "", 0.2, 0.35, 90, False, True, True, "cam", "")
    payload = compare.render_localization(request).payload
    h, w = payload["image_size"]["height"], payload["image_size"]["width"]
    for key in ("plain", "ours"):
        x0, y0, x1, y1 = payload[key]["box"]
        assert 0 <= x0 <= x1 < w and 0 <= y0 <= y1 < h


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_uploads_get_a_clear_message(name: str, uploads: Path) -> None:
    make, message = REFUSED[name]
    with pytest.raises(gr.Error, match=message):
        analyses.on_image({"path": str(make(uploads / name))}, cam_core.DEFAULT_MODEL)


def test_exif_rotated_boxes_are_on_the_upright_photo(uploads: Path) -> None:
    upright = api.explain({"path": str(CAT)})[0]
    rotated = api.explain({"path": str(exif_rotated(uploads / "r.jpg"))})[0]
    assert rotated["image_size"] == upright["image_size"] == {"height": 300, "width": 451}
    assert cam_core.box_iou(rotated["ours"]["box"], upright["ours"]["box"])[0, 0] > 0.8


def test_upload_size_cap(uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_UPLOAD_MB", 0.01)
    with pytest.raises(gr.Error, match="limit is"):
        analyses.on_image({"path": str(CAT)}, cam_core.DEFAULT_MODEL)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_api_gives_the_message_and_keeps_serving(name: str, client: Client, uploads: Path) -> None:
    make, message = REFUSED[name]
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(str(make(uploads / name))), api_name="/explain")
    assert client.predict(handle_file(str(CAT)), api_name="/explain")[0]["class"]["index"] == 285


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize(
    "target",
    ["/etc/passwd", "../../../../etc/passwd", str(ROOT / "app.py"), str(ROOT / "pyproject.toml"),
     f"{render_dir()}/../../etc/passwd", f"{render_dir()}/%2e%2e/%2e%2e/etc/passwd"],
)  # fmt: skip
def test_file_routes_refuse_path_traversal(target: str, app_url: str) -> None:
    url = app_url
    for route in ("gradio_api/file=", "file="):
        assert _status(f"{url}{route}{target}") in (400, 403, 404)


def test_own_pictures_are_served(app_url: str) -> None:
    url = app_url
    session, _, _ = analyses.on_image({"path": str(CAT)}, cam_core.DEFAULT_MODEL)
    html = compare.render_localization(VIEW.convert(session, "", 0.2, 0.35, 90, False, True, True, "cam", "")).plain
    picture = re.search(r'src="(gradio_api/file=[^"]+)"', html).group(1)
    assert _status(url + picture) == 200


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_many_distinct_uploads_keep_memory_bounded(
    uploads: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: cam_core.LoadedModel
) -> None:
    # a tiny network keeps 500 forward passes fast; the cache holds the 230 kB photos either way
    state.register_model("tiny-test", tiny_model)
    monkeypatch.setattr(state, "ANALYSES", state.AnalysisCache(max_bytes=16 * 2**20))
    monkeypatch.setattr(explanation, "ANALYSES", state.ANALYSES)
    monkeypatch.setattr(state, "DISPLAYS", state.DisplayCache(max_bytes=16 * 2**20))  # bounded in bytes, as above
    base = np.asarray(Image.open(CAT).convert("RGB").resize((320, 240)))
    path = uploads / "u.png"

    def upload(i: int) -> None:
        image = base.copy()
        image[0, 0] = (i % 256, i // 256, 3)
        Image.fromarray(image).save(path)
        analyses.on_image({"path": str(path)}, "tiny-test", "224/32")  # registered at stride 32

    for i in range(60):
        upload(i)
    before = _rss_mb()
    for i in range(60, 500):
        upload(i)
    growth = _rss_mb() - before
    assert state.ANALYSES.nbytes <= 16 * 2**20 and len(state.ANALYSES) < 100
    assert state.DISPLAYS.nbytes <= 16 * 2**20
    assert growth < 60, f"RSS grew {growth:.0f} MB over 440 distinct uploads"


def test_concurrent_sessions_do_not_mix(app_url: str, uploads: Path) -> None:
    url = app_url
    photos = []
    for i in range(16):  # each session its own photo, told apart by its size
        path = uploads / f"s{i}.png"
        Image.open(CAT).convert("RGB").resize((300 + 7 * i, 200 + 3 * i)).save(path)
        photos.append(path)

    def run(i: int) -> list[dict]:
        client = Client(url, verbose=False, download_files=False)
        results = []
        for theta in (0.2, 0.5, 0.3):
            results.append(client.predict(handle_file(str(photos[i])), "tf_efficientnet_lite0", "", theta,
                                          api_name="/explain")[0])  # fmt: skip
        return results

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(run, range(16)))
    for i, results in enumerate(outcomes):
        for result in results:
            assert result["image_size"] == {"height": 200 + 3 * i, "width": 300 + 7 * i}


def test_concurrent_slider_updates_render_safely() -> None:
    """Several events at once draw plots in parallel (matplotlib is not thread-safe: the app serialises it)."""
    session, _, _ = analyses.on_image({"path": str(CAT)}, cam_core.DEFAULT_MODEL)

    def update(i: int) -> dict:
        # distinct classes: each needs a fresh histogram plot, so the plotting really runs concurrently
        request = VIEW.convert(session, str(280 + i), 0.2 + 0.05 * (i % 3), 0.35, 90, False, True, True, "cam", "")
        return compare.render_localization(request).payload

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(update, range(16)))
    assert [r["class"]["index"] for r in results] == [280 + i for i in range(16)]


def test_a_large_photos_boxes_are_in_its_own_pixels(uploads: Path) -> None:
    """A 2816 x 2112 photo (5.9 MP) is analysed at 2309 x 1732, but every box is in the photo's own pixels.

    At 224 px / stride 32: both copies are shrunk to the network input, so their 7 x 7 maps agree; at the default
    448 px the 451 x 300 copy is stretched *up* and its 28 x 28 map moves by about a cell (17 of its pixels)."""
    path = uploads / "large.jpg"
    Image.open(CAT).convert("RGB").resize((2816, 2112)).save(path, quality=90)
    protocol = (0.2, 0.35, 90, False, True, True, 224, 32)
    payload = api.explain({"path": str(path)}, cam_core.DEFAULT_MODEL, "", *protocol)[0]
    assert payload["image_size"] == {"height": 2112, "width": 2816}
    small = api.explain({"path": str(CAT)}, cam_core.DEFAULT_MODEL, "", *protocol)[0]  # same picture, 451 x 300
    for key in ("plain", "ours"):
        x0, y0, x1, y1 = payload[key]["box"]
        assert 0 <= x0 <= x1 <= 2815 and 0 <= y0 <= y1 <= 2111
        assert x1 > 2000 or x0 > 500  # in the large frame, not the analysed 2309 x 1732 one
        expected = np.asarray(small[key]["box"]) * [2816 / 451, 2112 / 300, 2816 / 451, 2112 / 300]
        assert np.abs(np.asarray(payload[key]["box"]) - expected).max() < 0.03 * 2816
    session = analyses.on_image({"path": str(path)}, cam_core.DEFAULT_MODEL)[0]
    views = compare.render_localization(
        VIEW.convert(session, "", 0.2, 0.35, 90, False, True, True, "cam", "100, 100, 2800, 2100")
    )
    assert views.payload["ground_truth"]["boxes"] == [[100, 100, 2800, 2100]]  # the real box is not "outside"
