"""Issue #22 item 2: model loads outside every worker. An event whose model is not loaded answers at once with
"loading <model>, about N s" (instead of holding a queue slot for up to two minutes), the page's timer finishes the
switch when the load is done, and a failed load is said (offline: the weights need a network)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr
import pytest

import cam_core
from app import analyses, inputs, model_cache
from app.explanation import start_session
from app.model_loading import PendingLoad, answering_at_once, done_token, loading_status, poll_load
from app.state import Session
from tests.helpers import CAT

MODEL = cam_core.DEFAULT_MODEL
SLOW = "lite0_gap_head"  # a shipped checkpoint; its 224 / 32 member is what a 224 / 32 session asks for


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[model_cache.ModelCache, threading.Event]]:
    """A fresh model cache whose load of :data:`SLOW` waits for the test (the default loads as ever)."""
    fresh, release, real = model_cache.ModelCache(), threading.Event(), model_cache._load

    def load(name: str, output_stride: int) -> cam_core.LoadedModel:
        if name == SLOW:
            release.wait(30)
        return real(name, output_stride)

    monkeypatch.setattr(model_cache, "MODELS", fresh)
    monkeypatch.setattr(model_cache, "_load", load)
    fresh.get(MODEL, 32)  # the default, loaded as the app does at start (any time it takes)
    monkeypatch.setattr(model_cache, "LOAD_WAIT_S", 0.3)
    yield fresh, release
    release.set()


@pytest.fixture
def session() -> Session:
    return start_session({"path": str(CAT)}, MODEL, inputs.resolution_choice("224/32"))


def _switch(session: Session) -> tuple[Any, ...]:
    return answering_at_once(analyses.on_model, "model", analyses.ModelSwitch)(SLOW, session, "224/32")


def test_a_model_switch_answers_at_once_and_the_page_finishes_it(session: Session, cache: Any) -> None:
    fresh, release = cache
    started = time.perf_counter()
    model, new_session, class_pick, status, tap, pending, timer = _switch(session)
    assert time.perf_counter() - started < 3  # before: the event held its worker until the load ended (<= 120 s)
    assert f"Loading **{SLOW}** (local weights): about" in status and "switches by itself" in status
    assert isinstance(pending, PendingLoad) and (pending.kind, pending.model) == ("model", SLOW)
    assert isinstance(timer, gr.Timer) and timer.active is True
    assert all(isinstance(value, dict) and value.get("__type__") == "update" for value in (model, class_pick, tap))
    assert isinstance(new_session, dict)  # skipped: the panels keep the model they show
    tick = poll_load(pending, session)  # while loading: a countdown, nothing else
    assert "about" in tick.status and tick.done_model == gr.skip() and tick.pending == gr.skip()
    release.set()
    deadline = time.monotonic() + 60
    while fresh.status(SLOW, 32).state == "loading":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    tick = poll_load(pending, session)
    assert tick.done_model == done_token(pending) and tick.pending is None and tick.timer.active is False
    assert tick.done_photo == gr.skip() and tick.done_resolution == gr.skip()
    finished = _switch(session)  # what the done field's change runs: now a cache hit
    assert isinstance(finished[1], Session) and finished[1].model == SLOW and "lite0_gap_head" in finished[3]


def test_a_failed_load_is_said_and_the_model_field_goes_back(session: Session, cache: Any, monkeypatch: Any) -> None:
    fresh, release = cache
    real = model_cache._load

    def offline(name: str, output_stride: int) -> cam_core.LoadedModel:
        if name == SLOW:
            release.wait(30)
            raise cam_core.WeightsUnavailableError(f"{SLOW}'s weights must be downloaded (test).")
        return real(name, output_stride)

    monkeypatch.setattr(model_cache, "_load", offline)
    pending = _switch(session)[5]
    release.set()
    deadline = time.monotonic() + 30
    while fresh.status(SLOW, 32).state == "loading":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    tick = poll_load(pending, session)
    assert tick.status.startswith("⚠️") and "must be downloaded (test)" in tick.status
    assert f"still show **{MODEL}**" in tick.status and tick.model.get("value") == MODEL
    assert tick.pending is None and tick.done_model == gr.skip()


def test_an_offline_hub_model_says_that_its_weights_need_a_network() -> None:
    """``HF_HUB_OFFLINE`` (tests/conftest.py) stands for a server without a network."""
    with pytest.raises(cam_core.WeightsUnavailableError, match="must be downloaded from the Hugging Face Hub, and "
                       "this server has no network access"):  # fmt: skip
        model_cache._load("resnet18", 32)


def test_the_estimate_comes_from_the_weights_size_then_from_the_last_load() -> None:
    assert model_cache.weights_source(MODEL) == "local weights"
    assert model_cache.estimate_load_s(MODEL) == model_cache.LOCAL_LOAD_S
    size = model_cache.weights_mb("resnet18")
    assert 40 < size < 50  # 11.7 M float32 parameters
    if not model_cache.hub_weights_cached("resnet18"):
        assert model_cache.weights_source("resnet18") == "weights download from the Hugging Face Hub, 45 MB"
        expected = model_cache.LOCAL_LOAD_S + size / model_cache.DOWNLOAD_MB_PER_S
        assert model_cache.estimate_load_s("resnet18") == pytest.approx(expected)
    fresh = model_cache.ModelCache()
    assert fresh.get(MODEL, 32).name == MODEL
    assert fresh.status(MODEL, 32).state == "ready"
    assert fresh.status("lite0_gap_head", 32).state == "loading"  # nothing started: nothing to report yet


def test_a_photo_under_a_loading_model_waits_for_it(session: Session, cache: Any) -> None:
    """The photo event says the load at once and keeps the panels; its ``done`` field runs it again."""
    fresh, release = cache
    photo = answering_at_once(analyses.on_photo, "photo", analyses.Photo)
    new_session, class_pick, status, pending, timer = photo({"path": str(CAT)}, SLOW, "224/32")
    assert new_session == class_pick == gr.skip() and f"Loading **{SLOW}**" in status
    assert isinstance(pending, PendingLoad) and pending.kind == "photo" and timer.active is True
    release.set()
    while fresh.status(SLOW, 32).state == "loading":
        time.sleep(0.05)
    tick = poll_load(pending, None)
    assert tick.done_photo == done_token(pending) and tick.done_model == tick.done_resolution == gr.skip()
    done = photo({"path": str(CAT)}, SLOW, "224/32")
    assert isinstance(done[0], Session) and done[0].model == SLOW and done[3] == done[4] == gr.skip()


def test_the_app_waits_for_its_default_model_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events wait at most ``LOAD_WAIT_S`` for a load; building the app waits for the default however long it takes."""
    from app.ui import build_demo

    fresh = model_cache.ModelCache()
    monkeypatch.setattr(model_cache, "MODELS", fresh)
    monkeypatch.setattr(model_cache, "LOAD_WAIT_S", 0.001)
    build_demo()
    assert fresh.status(MODEL, 16).state == "ready"


def test_a_tick_behind_the_finished_load_leaves_the_timer_to_a_new_load(cat_session: Any) -> None:
    """Ticks run one after another (the last of a burst): the tick queued behind the one that found the load ready
    sees nothing pending. Its answer may reach the page after a new load's event restarted the timer, so it must
    not stop it (it did: the resolution's load then never finished by itself on a loaded machine)."""
    stale = poll_load(None, cat_session)
    assert stale.pending == gr.skip() and stale.timer == gr.skip()  # not Timer(active=False), not pending None
    dropped = poll_load(None, None)  # the server dropped the session: nothing will ever be pending again
    assert isinstance(dropped.timer, gr.Timer) and dropped.timer.active is False


def test_a_state_change_is_never_left_to_an_unqueued_event(config: dict[str, Any]) -> None:
    """Gradio's client fires a ``gr.State``'s change only from a queued event's answer (the queue's messages carry
    ``changed_state_ids``; the answer of an unqueued ``/run`` request has none). The load timer's tick is unqueued:
    while it set ``done`` *states*, their change never fired, so a switch that waited for a load never finished by
    itself (seen on a loaded machine, where a load takes more than ``LOAD_WAIT_S``). No state whose change runs an
    event may be written by an unqueued event."""
    states = {c["id"] for c in config["components"] if c.get("type") == "state"}
    watched = {target for dep in config["dependencies"] for target, event in dep["targets"] if event == "change"}
    unqueued_writers = [
        (dep.get("api_name"), output)
        for dep in config["dependencies"]
        if dep.get("queue") is False
        for output in dep["outputs"]
        if output in states & watched
    ]
    assert unqueued_writers == []
    done = [c for c in config["components"] if c.get("props", {}).get("elem_id", "").startswith("load-done-")]
    assert len(done) == 3 and all(c["type"] == "textbox" and c["props"]["visible"] == "hidden" for c in done)


def test_the_loading_line_shows_the_time_spent_against_the_expected_time() -> None:
    """Issue #24 item 4: a progress bar (elapsed of elapsed + remaining), the time left, and past the estimate
    (remaining clamped at 1 s) the time so far instead of a countdown that never ends; a download says so."""
    local = model_cache.ModelLoading(SLOW, 32, 3.0, "local weights")
    line = loading_status(local, elapsed_s=4.0)
    assert f"Loading **{SLOW}** (local weights): about 3 s left" in line
    assert '<progress class="load-progress" value="4.0" max="7.0"' in line and "4 s / about 7 s" in line
    late = loading_status(model_cache.ModelLoading(SLOW, 32, 1.0, "local weights"), elapsed_s=12.0, expected_s=7.0)
    assert "12 s so far, longer than the estimate" in late and 'value="12.0" max="13.0"' in late
    assert "about 1 s left" in loading_status(model_cache.ModelLoading(SLOW, 32, 1.0, "local weights"), 6.4, 7.0)
    hub = model_cache.ModelLoading("resnet50", 32, 5.0, "weights download from the Hugging Face Hub, 98 MB")
    assert 'aria-label="downloading resnet50: 0 of about 5 s"' in loading_status(hub)


def test_a_tick_moves_the_bar_from_the_loads_own_start(session: Session, cache: Any) -> None:
    """The elapsed time is the load's own (from its start in the cache), so the bar moves from tick to tick."""
    *_, pending, _ = _switch(session)
    first = poll_load(pending, session).status
    time.sleep(1.1)
    second = poll_load(pending, session).status
    value = [float(line.split('value="')[1].split('"')[0]) for line in (first, second)]
    assert value[0] >= model_cache.LOAD_WAIT_S - 0.05 and value[1] >= value[0] + 1.0
