"""Issue #22 items 2 and 3: the lanes of the real app, who a request comes from, each lane's torch threads, no
forward pass and no zip in an unqueued event, and the CRF out of the server's process (it holds the GIL)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from app import fair_queue, files, hosting, lanes
from app.crf_worker import WORKER, mean_field_in_worker
from app.lanes import FAST, SLOW, client_address, lane_threads
from app.state import ANALYSES, NotCached, cache_only, get_analysis, get_model
from app.tabs import export
from cam_core import crf
from cam_core.crf import CrfParams
from tests.helpers import CAT

MODEL = "tf_efficientnet_lite0"
SLOW_EVENTS = {"render_crf", "run_evaluation", "run_examples", "segmentation_crf", "segmentation_zip"}


@pytest.mark.parametrize(
    ("peer", "forwarded", "on_space", "expected"),
    [
        ("203.0.113.7", None, False, "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", False, "203.0.113.7"),  # anyone can write the header: ignored off a Space
        ("10.16.3.80", "198.51.100.1, 10.0.0.1", True, "198.51.100.1"),  # a Space: its proxy's first hop
        ("10.16.3.80", " 198.51.100.1 ", True, "198.51.100.1"),
        ("10.16.3.80", "not-an-address, 1.2.3.4", True, "10.16.3.80"),  # an unusable first hop: the peer
        ("10.16.3.80", "", True, "10.16.3.80"),
        ("2001:db8:1:2:3:4:5:6", None, False, "2001:db8:1:2::/64"),  # one host holds a /64
        ("2001:db8:1:2:ffff::1", None, False, "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.9", None, False, "198.51.100.9"),
        ("fe80::1%eth0", None, False, "fe80::/64"),
        (None, None, False, "unknown"),
        ("testclient", None, False, "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: str | None, on_space: bool, expected: str) -> None:
    assert client_address(peer, forwarded, on_space) == expected


def test_the_forwarded_header_counts_only_on_a_space(monkeypatch: pytest.MonkeyPatch) -> None:
    scope = {"client": ("10.16.3.80", 5000), "headers": [(b"x-forwarded-for", b"198.51.100.1, 10.0.0.1")]}
    monkeypatch.setattr(lanes, "ON_SPACE", False)
    assert lanes.scope_address(scope) == "10.16.3.80"
    monkeypatch.setattr(lanes, "ON_SPACE", True)
    assert lanes.scope_address(scope) == "198.51.100.1"


def test_every_queued_event_is_in_a_lane(demo: Any) -> None:
    """Long jobs in the slow lane, everything else queued in the fast lane; unqueued ones only read the caches."""
    lanes_by_name: dict[str, set[str]] = {FAST: set(), SLOW: set()}
    for block_fn in demo.fns.values():
        if block_fn.fn is None:
            continue
        if block_fn.queue:
            assert block_fn.concurrency_id in (FAST, SLOW), block_fn.name
            assert block_fn.fn.lane == block_fn.concurrency_id, block_fn.name  # its torch threads
            lanes_by_name[block_fn.concurrency_id].add(block_fn.api_name)
        else:
            assert getattr(block_fn.fn, "cache_only", False), block_fn.name
    assert lanes_by_name[SLOW] == SLOW_EVENTS
    assert {"on_image", "on_model", "on_resolution", "pick_class", "explain", "export_zip"} <= lanes_by_name[FAST]
    assert isinstance(demo._queue, fair_queue.FairQueue) and demo._queue.max_size == fair_queue.MAX_QUEUE
    assert demo.api_open is False


def test_each_lane_runs_with_its_own_torch_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two lanes at once in two threads: each sees its own count (OpenMP's count is per thread)."""
    monkeypatch.setitem(lanes.LANE_THREADS, FAST, 2)
    monkeypatch.setitem(lanes.LANE_THREADS, SLOW, 1)
    both = threading.Barrier(2)
    seen: dict[str, int] = {}

    def probe(lane: str) -> None:
        both.wait(10)  # both lanes have set their count
        torch.ones(256, 256) @ torch.ones(256, 256)
        both.wait(10)
        seen[lane] = torch.get_num_threads()

    threads = [threading.Thread(target=lane_threads(probe, lane), args=(lane,)) for lane in (FAST, SLOW)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert seen == {FAST: 2, SLOW: 1}


def test_a_cache_miss_never_runs_a_forward_pass_in_an_unqueued_event(cat_session: Any) -> None:
    """Under :func:`cache_only` (every unqueued event) a missing analysis or model raises, and nothing is computed."""
    moved = cat_session.__class__(**{**cat_session.__dict__, "image_hash": "not-analysed-" + os.urandom(4).hex()})
    entries = len(ANALYSES)
    with cache_only(), pytest.raises(NotCached):
        get_analysis(moved, MODEL)
    with cache_only(), pytest.raises(NotCached):
        get_model("lite0_gap_head", 8)  # not loaded at stride 8: nothing is started either
    assert len(ANALYSES) == entries
    assert get_analysis(cat_session, MODEL) is not None  # a hit is fine anywhere


def test_a_miss_without_a_queued_rerun_is_said_inline(cat_session: Any) -> None:
    """An unqueued event the page does not rerun (a drag, the Segmentation tab's search) says the miss in its
    notice instead of failing silently."""
    from app.errors import MISSED, with_notice

    def needs_an_analysis() -> tuple[str]:
        moved = cat_session.__class__(**{**cat_session.__dict__, "image_hash": "dropped-" + os.urandom(4).hex()})
        return (str(get_analysis(moved, MODEL)),)

    said = lanes.cache_only_event(with_notice(needs_an_analysis, 1), falls_back=False)()
    assert said[0] == gr.skip() and said[1] == f"⚠️ {MISSED}"
    with pytest.raises(gr.Error) as quiet:  # with a rerun: a failure the page's .failure step answers
        lanes.cache_only_event(with_notice(needs_an_analysis, 1), falls_back=True)()
    assert quiet.value.visible is False


# ---------------------------------------------------------------- through a launched server (raw HTTP)


def fn_index(demo: Any, api_name: str) -> int:
    return next(fn._id for fn in demo.fns.values() if fn.api_name == api_name)


def completed(http: httpx.Client, session: str) -> dict[str, Any]:
    """The session's next ``process_completed`` message."""
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if "process_completed" in line:
                return dict(json.loads(line[5:]))
    raise AssertionError("the event stream ended without a result")


def session_with_photo(http: httpx.Client, demo: Any, path: Any) -> tuple[str, str]:
    """A session whose photo is analysed (``on_image``, as the page sends it), and its picked class."""
    session = os.urandom(8).hex()
    body = {"data": [{"path": str(path)}, MODEL, "448/16"], "fn_index": fn_index(demo, "on_image"),
            "session_hash": session}  # fmt: skip
    assert http.post("/gradio_api/queue/join", json=body).status_code == 200
    return session, completed(http, session)["output"]["data"][1]["value"]


def test_turning_tap_on_runs_no_forward_pass_unqueued(http: httpx.Client, demo: Any, uploads: Path) -> None:
    """Before: the TAP toggle's unqueued update ran the TAP head's forward pass (48 at once: +3.1 GB). Now it fails
    quietly on the miss and the page's queued rerun (fast lane) computes it."""
    photo = uploads / "tap.png"
    Image.open(CAT).convert("RGB").resize((420, 310)).save(photo)  # pixels no other test analysed
    session, picked = session_with_photo(http, demo, photo)
    entries = len(ANALYSES)
    data = [None, picked, 0.2, 0.35, 90, True, True, True, "cam", "", "Plain vs improved"]
    direct = {"data": data, "fn_index": fn_index(demo, "update_tap"), "session_hash": session}
    response = http.post("/gradio_api/run/predict", json=direct)
    assert response.status_code == 500 and response.json().get("visible") is False  # the page's .failure step
    assert len(ANALYSES) == entries  # no forward pass ran
    queued = {**direct, "fn_index": fn_index(demo, "update_tap_queued")}
    assert http.post("/gradio_api/queue/join", json=queued).status_code == 200
    assert completed(http, session)["success"] is True
    assert len(ANALYSES) == entries + 1  # the TAP head's analysis, made in the fast lane
    response = http.post("/gradio_api/run/predict", json=direct)  # now a hit: unqueued as before
    assert response.status_code == 200 and "TAP" in str(response.json()["data"][4])


def test_a_slider_move_with_the_export_tab_open_writes_no_file(http: httpx.Client, demo: Any) -> None:
    """Before: every move with the export tab open wrote a 5-picture zip (98 ms instead of 11 ms)."""
    session, picked = session_with_photo(http, demo, CAT)
    opened = {"data": [], "fn_index": fn_index(demo, "selected_tab"), "session_hash": session,
              "event_data": {"index": 6, "value": export.ID, "selected": True}}  # fmt: skip
    assert http.post("/gradio_api/run/predict", json=opened).status_code == 200  # the page's tab state: export open
    before = set(os.listdir(files.output_dir()))
    for theta in (0.3, 0.4, 0.5):
        data = [None, picked, theta, 0.35, 90, False, True, True, "cam", "", export.ID]
        body = {"data": data, "fn_index": fn_index(demo, "update_theta_mas"), "session_hash": session}
        response = http.post("/gradio_api/run/predict", json=body)
        assert response.status_code == 200 and response.json()["data"][5]["plain"]["theta"] == theta
    assert set(os.listdir(files.output_dir())) == before


def test_a_second_long_job_from_one_client_is_refused_at_once(demo: Any) -> None:
    """The real app's slow lane: Evaluate on the examples, twice from one address (two sessions)."""
    fn = fn_index(demo, "run_examples")
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=demo.local_url, timeout=120, transport=transport) as other:
        sessions = [os.urandom(8).hex() for _ in range(2)]
        first = other.post("/gradio_api/queue/join", json={"data": [MODEL, "224/32", []], "fn_index": fn,
                                                            "session_hash": sessions[0]})  # fmt: skip
        second = other.post("/gradio_api/queue/join", json={"data": [MODEL, "224/32", []], "fn_index": fn,
                                                             "session_hash": sessions[1]})  # fmt: skip
        assert first.status_code == 200
        assert second.status_code == 429 and second.json()["detail"] == fair_queue.ONE_LONG_JOB
        assert completed(other, sessions[0])["success"] is True
    assert hosting.is_unqueued_call({"method": "POST", "path": "/gradio_api/run/predict"})
    assert not hosting.is_unqueued_call({"method": "POST", "path": "/gradio_api/queue/join"})


# ---------------------------------------------------------------- the CRF in its own process


def test_the_crf_worker_gives_the_same_marginals_and_leaves_the_gil_free() -> None:
    """pydensecrf holds the GIL for a whole inference (1.2 s measured, every thread of the server stopped); in the
    worker process the same numbers come back while this process keeps running."""
    if not crf.crf_available():
        pytest.skip("pydensecrf2 is not installed")
    rng = np.random.default_rng(0)
    image = (rng.random((300, 400, 3)) * 255).astype(np.uint8)
    heatmap = rng.random((300, 400)).astype(np.float32)
    params = CrfParams(iterations=5)
    here = crf.refine_probability(image, heatmap, 0.5, params)
    there = crf.refine_probability(image, heatmap, 0.5, params, runner=mean_field_in_worker)
    np.testing.assert_array_equal(here, there)
    done, gaps = threading.Event(), []

    def long_crf() -> None:
        crf.refine_mask(image, heatmap, 0.5, CrfParams(iterations=20, max_side=512), runner=mean_field_in_worker)
        done.set()

    threading.Thread(target=long_crf, daemon=True).start()
    last = time.perf_counter()
    while not done.wait(0.002):
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    assert max(gaps) < 0.2, max(gaps)  # in-process: one gap as long as the whole inference
    WORKER.close()
    assert crf.refine_mask(image, heatmap, 0.5, params, runner=mean_field_in_worker).shape == (300, 400)  # restarts
