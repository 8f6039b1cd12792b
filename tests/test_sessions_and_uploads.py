"""What each visitor holds on the server, and what another visitor can take from them (issue #22, items 4 and 6).

Sessions hold keys only; the display copies sit in one content-keyed cache bounded in bytes; Gradio keeps at most
``CAM_SESSIONS`` sessions and drops idle ones. No event reads an upload after the upload event, and one client
address has an upload budget, so a flood of uploads from one address breaks nobody's photo. Raw HTTP throughout,
an attacker on 127.0.0.2 and a victim on 127.0.0.1.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import numpy as np
import pytest
from gradio.state_holder import StateHolder
from PIL import Image

import cam_core
from app import analyses, hosting, state
from app.events import event
from app.explanation import start_session
from app.inputs import VIEW
from app.state import DisplayCache, PhotoExpiredError
from app.tabs import compare
from tests.helpers import ROOT

CAT = ROOT / "assets" / "examples" / "cat.jpg"
COFFEE = ROOT / "assets" / "examples" / "coffee.jpg"
MODEL = cam_core.DEFAULT_MODEL
RAW_RENDER = event(compare.render_localization, VIEW)
CONTROLS = [0.2, 0.35, 90, False, True, True, "cam"]


# ------------------------------------------------------------------ item 4: what a session holds


def test_a_session_holds_keys_and_one_copy_per_photo_is_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "DISPLAYS", DisplayCache())
    first, second = (start_session({"path": str(CAT)}, MODEL) for _ in range(2))
    assert not any(isinstance(value, np.ndarray) for value in vars(first).values())  # no pixels in gr.State
    assert first.display is second.display and len(state.DISPLAYS) == 1  # by content: one copy
    assert first.display.shape[:2] == first.size_on_screen and not first.display.flags.writeable
    assert first.name == "cat.jpg" and "/" not in first.name


def test_the_display_cache_is_bounded_in_bytes() -> None:
    pictures = {f"h{i}": np.full((100, 100, 3), i, np.uint8) for i in range(6)}  # 30 kB each
    cache = DisplayCache(max_bytes=100_000)
    for key, picture in pictures.items():
        cache.put(key, picture)
        assert cache.nbytes <= 100_000 and cache.nbytes == sum(v.nbytes for v in cache._entries.values())
    assert len(cache) == 3 and cache.need("h5")[0, 0, 0] == 5
    cache.need("h3")  # used: h4 is now the least recently used
    cache.put("h6", np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(PhotoExpiredError, match="upload it again"):
        cache.need("h4")
    assert cache.need("h3")[0, 0, 0] == 3
    cache.put("h3", np.full((100, 100, 3), 9, np.uint8))  # same key = same pixels: the held copy stays
    assert cache.need("h3")[0, 0, 0] == 3
    tiny = DisplayCache(max_bytes=10)
    tiny.put("big", pictures["h1"])  # over the budget alone: the newest copy is kept all the same
    assert tiny.need("big") is pictures["h1"]


def test_an_expired_photo_is_said_never_another_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "DISPLAYS", DisplayCache(max_bytes=1))  # holds only the newest copy
    monkeypatch.setattr(state, "ANALYSES", state.AnalysisCache())
    cat = start_session({"path": str(CAT)}, MODEL)
    coffee = start_session({"path": str(COFFEE)}, MODEL)  # evicts the cat's copy
    with pytest.raises(gr.Error, match="no longer held on the server") as refused:
        RAW_RENDER(cat, "285", *CONTROLS, "")
    assert "<path>" not in refused.value.message
    assert RAW_RENDER(coffee, "", *CONTROLS, "").payload["image_size"] == {"height": 400, "width": 600}
    switch = analyses.on_model("lite0_gap_head", cat)  # said in the status line, the field put back
    assert "no longer held on the server" in switch.status and switch.session == gr.skip()


def test_idle_sessions_are_dropped_oldest_first() -> None:
    holder = StateHolder()
    now = datetime.datetime.now()
    for name, idle in (("old", 7200), ("older-but-used", 10), ("new", 1)):
        holder.session_data[name] = object()  # type: ignore[assignment]
        holder.time_last_used[name] = now - datetime.timedelta(seconds=idle)
    holder.session_data.move_to_end("older-but-used")  # Gradio keeps them in order of last use

    class Blocks:
        state_holder = holder

    assert hosting.expire_idle_sessions(Blocks(), idle_s=60) == 1  # type: ignore[arg-type]
    assert list(holder.session_data) == ["new", "older-but-used"] and "old" not in holder.time_last_used


# ------------------------------------------------------------------ item 4: sessions of a real server, raw HTTP

SESSIONS, CAPACITY, GROWTH_LIMIT_MB = 300, 100, 100
"""300 raw sessions, each with a photo and a slider move, against a server that keeps 100: the server's memory
grows by at most 100 MB (measured: 47 MB; before: 0.74 MB a session, 222 MB)."""


def _page_event(http: httpx.Client, indices: dict[str, int], session: str, name: str, data: list[Any]) -> Any:
    """A queued event as the page sends it (``queue/join`` + the session's stream): its outputs."""
    body = {"data": data, "fn_index": indices[name], "session_hash": session}
    http.post("/gradio_api/queue/join", json=body).raise_for_status()
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and "process_completed" in line:
                output = json.loads(line[5:])["output"]
                assert "data" in output, output
                return output["data"]
    raise AssertionError("no process_completed message")


def _slide(http: httpx.Client, indices: dict[str, int], session: str, picked: str | None) -> list[Any]:
    """The MaS slider's unqueued update (``run/predict``): its outputs (the panels first, the notice last)."""
    body = {"data": [None, picked, 0.3, 0.35, 90.0, False, True, True, "cam", "", None],
            "fn_index": indices["update_theta_mas"], "session_hash": session}  # fmt: skip
    response = http.post("/gradio_api/run/predict", json=body)
    response.raise_for_status()
    return response.json()["data"]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) / 1024


@pytest.fixture(scope="module")
def small_server() -> Iterator[tuple[str, int]]:
    """``python app.py`` in its own process, keeping at most :data:`CAPACITY` sessions."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "CAM_SESSIONS": str(CAPACITY)}  # fmt: skip
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the app did not start within 3 minutes"
                time.sleep(0.5)
        yield url, server.pid
    finally:
        server.kill()
        server.wait(30)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_raw_sessions_keep_the_servers_memory_bounded(small_server: tuple[str, int]) -> None:
    url, pid = small_server
    with httpx.Client(base_url=url, timeout=120) as http:
        indices = _indices(http)
        with CAT.open("rb") as handle:  # one upload, shared by every session (the examples are not FileData)
            (uploaded,) = http.post("/gradio_api/upload", files={"files": ("cat.jpg", handle)}).json()
        photo = [{"path": uploaded, "meta": {"_type": "gradio.FileData"}, "orig_name": "cat.jpg"}, MODEL, "448/16"]

        def visit() -> tuple[str, str]:
            session = os.urandom(8).hex()
            picked = str(_page_event(http, indices, session, "on_image", photo)[1]["value"])
            assert "Egyptian cat" in _slide(http, indices, session, picked)[0]
            return session, picked

        for _ in range(5):  # warm-up: the first requests allocate what every later one reuses
            first = visit()
        time.sleep(1)
        before = _rss_mb(pid)
        visits = [visit() for _ in range(SESSIONS)]
        time.sleep(1)
        growth = _rss_mb(pid) - before
        assert growth <= GROWTH_LIMIT_MB, f"{SESSIONS} sessions took {growth:.0f} MB"
        assert "Egyptian cat" in _slide(http, indices, *visits[-1])[0]  # the newest are kept
        # the oldest was dropped: its page's next move finds no photo (with no class picked: Gradio itself refuses a
        # class its fresh copy of the session does not offer)
        assert "Upload a photo first" in _slide(http, indices, first[0], None)[-1]


# ------------------------------------------------------------------ item 6: uploads per client address


@pytest.fixture
def victim(app_url: str) -> Iterator[httpx.Client]:
    """A visitor from an address of its own (the suite's other requests come from 127.0.0.1 to the same server, and
    count against that address's upload budget)."""
    transport = httpx.HTTPTransport(local_address="127.0.0.3")
    with httpx.Client(base_url=app_url, timeout=120, transport=transport) as client:
        yield client


@pytest.fixture
def attacker(app_url: str) -> Iterator[httpx.Client]:
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=app_url, timeout=120, transport=transport) as client:
        yield client


def _indices(http: httpx.Client) -> dict[str, int]:
    return {d["api_name"]: i for i, d in enumerate(http.get("/config").json()["dependencies"]) if d.get("api_name")}


def test_a_flood_of_uploads_breaks_no_other_visitors_photo(
    victim: httpx.Client, attacker: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hosting, "UPLOAD_BUDGET_BYTES", 16 * 2**20)  # the folder: 16 MB
    monkeypatch.setattr(hosting, "CLIENT_UPLOAD_BYTES", 8 * 2**20, raising=False)  # one address: 8 MB
    indices, session = _indices(victim), os.urandom(8).hex()
    own = io.BytesIO()  # the victim's own photo (an example's bytes would land on the example's kept file)
    Image.open(CAT).resize((450, 300)).save(own, format="PNG")
    (uploaded,) = victim.post("/gradio_api/upload", files={"files": ("mine.png", own.getvalue())}).json()
    photo = {"path": uploaded, "meta": {"_type": "gradio.FileData"}, "orig_name": "mine.png"}
    assert "Egyptian cat" in _page_event(victim, indices, session, "on_image", [photo, MODEL, "448/16"])[2]
    rng, statuses, refusal = np.random.default_rng(0), [], None
    for i in range(40):  # 40 MB of incompressible upload-only POSTs
        files = {"files": (f"noise{i}.bin", rng.bytes(2**20), "application/octet-stream")}
        response = attacker.post("/gradio_api/upload", files=files)
        statuses.append(response.status_code)
        refusal = response if response.status_code == 429 else refusal
    switch = _page_event(victim, indices, session, "on_model", ["lite0_gap_head", None, "448/16"])
    status = next(value for value in switch if isinstance(value, str) and "**" in value)
    assert "⚠️" not in status and "Egyptian cat" in status, status
    assert statuses[:7] == [200] * 7 and statuses[-20:] == [429] * 20, statuses
    assert refusal is not None and "Too many uploads from your address" in refusal.text
    assert int(refusal.headers["retry-after"]) > 0
    Path(uploaded).unlink(missing_ok=True)  # the upload is gone (pruned, expired): the photo lives on
    back = _page_event(victim, indices, session, "on_model", [MODEL, None, "448/16"])
    assert any(isinstance(value, str) and "Egyptian cat" in value and "⚠️" not in value for value in back)
    with COFFEE.open("rb") as handle:  # the victim's own budget is untouched by the attacker's
        assert victim.post("/gradio_api/upload", files={"files": ("coffee.jpg", handle)}).status_code == 200
