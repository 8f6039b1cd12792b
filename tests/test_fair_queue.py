"""Issue #22 item 2: per-client shares of the queue and of the unqueued events, round-robin within a lane, one long
job per visitor; raw HTTP from two source addresses (127.0.0.1 the visitor, 127.0.0.2 the other client) against a
small app served by :class:`app.hosting.ExplainerBlocks`, whose events wait on a gate the test opens."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr
import httpx
import pytest

from app import fair_queue
from app.fair_queue import MAX_EVENTS_PER_CLIENT, ONE_LONG_JOB
from app.hosting import ExplainerBlocks
from app.lanes import FAST, SLOW, lane_options

GATE = threading.Event()
RAN: list[str] = []


def _held(tag: str) -> str:
    """Wait (bounded) for the gate unless the tag says ``quick``; record the order events ran in."""
    if not tag.startswith("quick"):
        GATE.wait(30)
    RAN.append(tag)
    return tag


@pytest.fixture(scope="module")
def queue_demo() -> Iterator[Any]:
    """A small page of three held events, one in each lane and one unqueued, on a server of its own."""
    with ExplainerBlocks() as blocks:
        box, button = gr.Textbox(), gr.Button()
        button.click(_held, box, box, api_name="fast", **lane_options(FAST))
        button.click(_held, box, box, api_name="slow", **lane_options(SLOW))
        button.click(_held, box, box, api_name="direct", queue=False)
    blocks.queue()
    blocks.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    try:
        yield blocks
    finally:
        GATE.set()
        blocks.close()


@pytest.fixture(scope="module")
def url(queue_demo: Any) -> str:
    return str(queue_demo.local_url)


@pytest.fixture(autouse=True)
def closed_gate() -> Iterator[None]:
    GATE.clear()
    RAN.clear()
    yield
    GATE.set()


def client(url: str, address: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60, transport=httpx.HTTPTransport(local_address=address))


def indices(url: str) -> dict[str, int]:
    config = httpx.get(f"{url.rstrip('/')}/config").json()
    return {dep["api_name"]: dep["id"] for dep in config["dependencies"] if dep.get("api_name")}


def join(http: httpx.Client, fn_index: int, tag: str, session: str | None = None) -> httpx.Response:
    body = {"data": [tag], "fn_index": fn_index, "session_hash": session or os.urandom(8).hex()}
    return http.post("/gradio_api/queue/join", json=body)


def wait_for(condition: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_one_client_cannot_fill_the_queue(url: str) -> None:
    """Before: 64 joins from one address filled Gradio's 64 slots and every other visitor got 503."""
    fn = indices(url)["fast"]
    with client(url, "127.0.0.2") as other, client(url, "127.0.0.1") as visitor:
        statuses = [join(other, fn, f"other{i}").status_code for i in range(MAX_EVENTS_PER_CLIENT + 8)]
        assert statuses[:MAX_EVENTS_PER_CLIENT] == [200] * MAX_EVENTS_PER_CLIENT  # one running, the rest waiting
        refused = join(other, fn, "one more")
        assert refused.status_code == 429 and "Too many requests from your address" in refused.json()["detail"]
        assert set(statuses[MAX_EVENTS_PER_CLIENT:]) == {429}
        assert join(visitor, fn, "visitor").status_code == 200
        GATE.set()
        wait_for(lambda: "visitor" in RAN and len(RAN) == MAX_EVENTS_PER_CLIENT + 1)


def test_the_next_event_is_taken_round_robin_over_addresses(queue_demo: Any, url: str) -> None:
    """The visitor's event runs at once on the lane's free worker, while the other client's backlog waits for its
    running one (one running event per address and lane); then the backlog runs in order."""
    fn = indices(url)["fast"]
    assert isinstance(queue_demo._queue, fair_queue.FairQueue)
    running = lambda: [e for job in queue_demo._queue.active_jobs if job for e in job]  # noqa: E731
    with client(url, "127.0.0.2") as other, client(url, "127.0.0.1") as visitor:
        assert join(other, fn, "a1").status_code == 200
        wait_for(lambda: len(running()) == 1)  # a1 runs (held at the gate)
        for tag in ("a2", "a3", "a4"):
            assert join(other, fn, tag).status_code == 200
        time.sleep(0.3)  # a worker is free, but a2 waits: its address already runs an event of this lane
        assert len(running()) == 1
        assert join(visitor, fn, "v1").status_code == 200
        wait_for(lambda: len(running()) == 2)  # the visitor's event took the free worker at once
        assert {fair_queue.event_address(e) for e in running()} == {"127.0.0.1", "127.0.0.2"}
        GATE.set()
        wait_for(lambda: len(RAN) == 5)
    assert set(RAN[:2]) == {"a1", "v1"} and RAN[2:] == ["a2", "a3", "a4"]


def test_fair_pick_takes_the_least_served_address_under_its_cap() -> None:
    """By hand: addresses A (running 1), B (running 0, served before C), C (never served)."""

    def event(address: str) -> Any:
        made = type("Event", (), {})()
        setattr(made, fair_queue._ADDRESS, address)
        return made

    waiting = [event("A"), event("A"), event("B"), event("C")]
    running = [event("A")]
    assert fair_queue.fair_pick(waiting, running, {"B": 5.0}, per_client=2) == 3  # C: never served
    assert fair_queue.fair_pick(waiting, running, {"B": 5.0, "C": 9.0}, per_client=2) == 2  # B: served first
    assert fair_queue.fair_pick(waiting[:2], running, {}, per_client=1) is None  # A at its cap: the lane waits
    assert fair_queue.fair_pick(waiting[:2], running, {}, per_client=2) == 0


def test_one_long_job_per_visitor_refused_at_once(url: str) -> None:
    fn = indices(url)["slow"]
    with client(url, "127.0.0.2") as other, client(url, "127.0.0.1") as visitor:
        session = os.urandom(8).hex()
        assert join(other, fn, "long1", session).status_code == 200
        started = time.perf_counter()
        second = join(other, fn, "long2")  # another session, same address
        assert second.status_code == 429 and second.json()["detail"] == ONE_LONG_JOB
        assert time.perf_counter() - started < 2  # refused at once, never queued
        same_session = join(visitor, fn, "long3", session)  # the same session from elsewhere
        assert same_session.status_code == 429
        assert join(visitor, fn, "long4").status_code == 200  # another visitor waits its turn in the slow lane
        GATE.set()
        wait_for(lambda: RAN == ["long1", "long4"])
        assert join(other, fn, "quick-again").status_code == 200  # done: the next one is welcome
        wait_for(lambda: "quick-again" in RAN)


def direct(http: httpx.Client, fn_index: int, tag: str) -> httpx.Response:
    body = {"data": [tag], "fn_index": fn_index, "session_hash": os.urandom(8).hex()}
    return http.post("/gradio_api/run/predict", json=body)


def test_unqueued_events_are_capped_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of unqueued events from one address holds at most its share; the visitor's run at once."""
    monkeypatch.setattr(fair_queue, "UNQUEUED_WAIT_S", 1.0)
    monkeypatch.setattr(fair_queue, "UNQUEUED_WAITING_PER_CLIENT", 1)
    with ExplainerBlocks() as demo:  # a fresh launch: its gate reads the patched limits
        box, button = gr.Textbox(), gr.Button()
        button.click(_held, box, box, api_name="direct", queue=False)
    demo.queue()
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    try:
        fn = indices(demo.local_url)["direct"]
        with client(demo.local_url, "127.0.0.2") as other, client(demo.local_url, "127.0.0.1") as visitor:
            held = [threading.Thread(target=direct, args=(other, fn, f"held{i}")) for i in range(2)]
            for thread in held:
                thread.start()
            time.sleep(0.5)
            started = time.perf_counter()
            waiting = threading.Thread(target=lambda: RAN.append(str(direct(other, fn, "waits").status_code)))
            waiting.start()
            time.sleep(0.2)
            assert direct(other, fn, "too many").status_code == 429  # two running, one waiting: no more
            quick = direct(visitor, fn, "quick visitor")
            assert quick.status_code == 200 and quick.json()["data"] == ["quick visitor"]
            assert time.perf_counter() - started < 1.0  # not behind the other client's
            waiting.join(10)
            assert "429" in RAN  # no slot within UNQUEUED_WAIT_S
            GATE.set()
            for thread in held:
                thread.join(10)
    finally:
        GATE.set()
        demo.close()


def test_a_queued_event_cannot_be_run_around_the_queue(url: str) -> None:
    """``api_open=False``: ``run/predict`` refuses a queued event (before: it ran at once, outside every lane)."""
    fn = indices(url)["slow"]
    with client(url, "127.0.0.2") as other:
        response = direct(other, fn, "quick-around")
    assert response.status_code == 404 and "does not accept direct HTTP POST" in json.dumps(response.json())
    assert "quick-around" not in RAN
