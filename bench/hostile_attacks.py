"""The attacks of ``bench.bench_hostile`` that run while a victim uses the app, all bounded in count and time.

* :class:`Victim`: an ordinary visitor on its own source address (upload + analysis, then slider moves) that runs
  during the attacks and records its latencies and every refusal (:func:`attacked`);
* :func:`long_jobs`, :func:`join_flood`, :func:`unqueued_flood`: the attacker's long jobs at once (the slowest
  events of the worst phase, and a hub model load that never finishes), a queue kept full of joins under fresh
  session hashes, and many threads of instant (unqueued) events;
* :func:`sessions_phase`: many raw sessions with a photo (never closed, as raw clients do): RSS per 1000.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import gradio_raw as raw
from bench.gradio_raw import RawClient, RefusedError
from bench.hostile_inputs import Arsenal, Event, loads_a_download, ordinary_inputs, photo_of, slider_event, worst_inputs
from bench.hostile_phases import ATTACKER, LONG_S, VICTIM, Measured, Target, call_event, grow_choices, start_session

RETRY_S = 1.0
"""How long the victim waits after a refusal before it tries again."""


@dataclass
class VictimLog:
    """What the victim saw."""

    uploads: list[float] = field(default_factory=list)
    sliders: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    censored: int = 0
    """Uploads given up after the victim's timeout: counted as refused, and in ``uploads`` at the time waited."""


class Victim:
    """An ordinary visitor from :data:`VICTIM`: upload a photo + its analysis, then ``moves`` slider moves, again."""

    def __init__(self, target: Target, photos: list[Path], moves: int, timeout: float) -> None:
        self.target, self.photos, self.moves, self.timeout = target, photos, moves, timeout
        self.slider = slider_event(target.events, target.components)
        self.count = 0

    def round(self, log: VictimLog, stop: threading.Event | None = None) -> None:
        """One upload + analysis, then the slider moves (each refusal recorded; the round stops at the first, and
        after the first move once ``stop`` is set)."""
        event = self.target.photo_event
        if event is None:
            return
        photo = self.photos[self.count % len(self.photos)]
        self.count += 1
        arsenal = Arsenal()
        with RawClient(self.target.url, VICTIM, self.timeout) as client:
            started = time.perf_counter()
            try:
                (payload,) = client.upload([photo])
                output = client.queued(event.fn_index, photo_of(ordinary_inputs(event, arsenal), event, payload))
            except (RefusedError, httpx.HTTPError) as exc:
                log.refused.append(f"upload + analysis: {getattr(exc, 'reason', type(exc).__name__)}")
                if isinstance(exc, httpx.TimeoutException) or getattr(exc, "reason", "") == "timeout":
                    log.uploads.append(time.perf_counter() - started)  # waited at least this long
                    log.censored += 1
                return
            log.uploads.append(time.perf_counter() - started)
            arsenal.learn(event, output)
            if self.slider is None:
                return
            slider, control, position = self.slider
            low, high = float(control.props.get("minimum", 0)), float(control.props.get("maximum", 1))
            for move in range(self.moves):
                if move and stop is not None and stop.is_set():
                    return
                values = ordinary_inputs(slider, arsenal)
                values[position] = round(low + (high - low) * (0.1 + 0.15 * (move % 5)), 2)
                started = time.perf_counter()
                try:
                    client.direct(slider.fn_index, values)
                except (RefusedError, httpx.HTTPError) as exc:
                    log.refused.append(f"slider: {getattr(exc, 'reason', type(exc).__name__)}")
                    return
                log.sliders.append(time.perf_counter() - started)

    def during(self, stop: threading.Event, log: VictimLog, min_rounds: int = 1) -> threading.Thread:
        """Run rounds in a thread until ``stop`` is set (and at least ``min_rounds`` are done); after a refusal the
        victim tries again a second later, as a person would (so the count of refusals is about one a second)."""

        def loop() -> None:
            done = 0
            while not stop.is_set() or done < min_rounds:
                refused = len(log.refused)
                self.round(log, stop)
                done += 1
                if len(log.refused) > refused:
                    stop.wait(RETRY_S)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread


def attacked(victim: Victim, attack: Callable[[threading.Event], None], cap_s: float, min_rounds: int) -> VictimLog:
    """Run ``attack`` (it returns when done or when its event is set at ``cap_s``) while the victim runs."""
    log, stop, done = VictimLog(), threading.Event(), threading.Event()
    runner = victim.during(done, log, min_rounds)
    attacker = threading.Thread(target=lambda: (attack(stop), None), daemon=True)
    attacker.start()
    attacker.join(cap_s)
    stop.set()
    attacker.join(30)
    done.set()
    runner.join(2 * victim.timeout + 10)  # its last round: an upload and one move, each bounded by the timeout
    return log


def long_jobs(
    target: Target, arsenal: Arsenal, rows: list[Measured], photo: dict[str, Any]
) -> Callable[[threading.Event], None]:
    """The attack of the slowest events at once, each in its own attacker session, and a hub model load."""
    slow = sorted((r for r in rows if r.wall_s >= LONG_S and r.status == "ok"), key=lambda r: -r.wall_s)
    by_index = {e.fn_index: e for e in target.events}
    jobs = [(by_index[r.fn_index], False) for r in slow[:5] if by_index[r.fn_index] is not target.photo_event]
    jobs += [(e, True) for e in target.events if loads_a_download(e, target.components)][:1]

    def prepared(event: Event) -> tuple[RawClient, Arsenal]:
        client, own = (
            RawClient(target.url, ATTACKER, target.timeout),
            Arsenal(big_photo=arsenal.big_photo, eval_photos=arsenal.eval_photos, boxes_csv=arsenal.boxes_csv),
        )
        if event.needs_session:
            with contextlib.suppress(RefusedError, httpx.HTTPError):
                start_session(target, client, own, photo)
                grow_choices(target, client, own)
        return client, own

    sessions = [(event, download, *prepared(event)) for event, download in jobs]  # before the clock starts

    def attack(stop: threading.Event) -> None:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(sessions)))
        futures = []
        for event, download, client, own in sessions:
            values, data = worst_inputs(event, own, target.components, download)
            call = functools.partial(call_event, client, event, values, data, target.timeout)
            futures.append(pool.submit(_quiet, call))
        while not stop.is_set() and not all(f.done() for f in futures):
            stop.wait(0.5)
        pool.shutdown(wait=False)  # a job still running ends within its timeout; the phase does not wait for it
        if all(f.done() for f in futures):
            for _, _, client, _ in sessions:
                client.close()

    attack.jobs = [f"{e.name}{' (hub model)' if d else ''}" for e, d in jobs]  # type: ignore[attr-defined]
    return attack


def _quiet(call: Callable[[], Any]) -> None:
    with contextlib.suppress(RefusedError, httpx.HTTPError):
        call()


def join_flood(target: Target, arsenal: Arsenal, rows: list[Measured], joins: int) -> Callable[[threading.Event], None]:
    """Keep the queue full from the attacker's address: ``joins`` queued joins at once, each under a fresh session
    hash, then a new one whenever the queue takes it (at most ``10 * joins`` in all), until the phase ends. The
    event is the slowest queued one that needs no session (from the worst phase), with its worst input."""
    free = {e.fn_index: e for e in target.events if e.queued and not e.needs_session}
    timed = sorted((r for r in rows if r.fn_index in free and r.status == "ok"), key=lambda r: -r.wall_s)
    event = free[timed[0].fn_index] if timed else target.photo_event

    def attack(stop: threading.Event) -> None:
        if event is None:
            return
        sent: list[tuple[str, str]] = []
        with RawClient(target.url, ATTACKER, target.timeout) as client:
            values, data = worst_inputs(event, arsenal, target.components)
            for attempt in range(10 * joins):
                if stop.is_set():
                    break
                session = raw.new_session()
                try:
                    sent.append((client.join(event.fn_index, values, data, session=session), session))
                except (RefusedError, httpx.HTTPError):
                    stop.wait(0.25 if attempt >= joins else 0)  # full: try again in a moment
            stop.wait()
            for event_id, session in sent:  # leave nothing queued for the next phase
                client.cancel(event.fn_index, event_id, session)

    attack.event = event.name if event else None  # type: ignore[attr-defined]
    return attack


def unqueued_flood(
    target: Target, arsenal: Arsenal, photo: dict[str, Any], threads: int
) -> Callable[[threading.Event], None]:
    """``threads`` attacker threads sending the instant (unqueued) events of a session, worst inputs, round robin."""
    events = [e for e in target.events if not e.queued and e.needs_session]

    def attack(stop: threading.Event) -> None:
        if not events:
            return
        with RawClient(target.url, ATTACKER, target.timeout) as client:
            own = Arsenal(big_photo=arsenal.big_photo)
            with contextlib.suppress(RefusedError, httpx.HTTPError):
                start_session(target, client, own, photo)

            def hammer(offset: int) -> None:
                step = offset
                while not stop.is_set():
                    event = events[step % len(events)]
                    values, data = worst_inputs(event, own, target.components)
                    _quiet(lambda e=event, v=values, d=data: client.direct(e.fn_index, v, d))
                    step += 1

            workers = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(threads)]
            for worker in workers:
                worker.start()
            stop.wait()
            for worker in workers:
                worker.join(target.timeout)

    attack.event = [e.name for e in events]  # type: ignore[attr-defined]
    return attack


def sessions_phase(target: Target, small: dict[str, Any], count: int, threads: int = 8) -> dict[str, Any]:
    """``count`` raw sessions, each with the photo event on ``small`` (never closed); RSS before and after."""
    event = target.photo_event
    if event is None or count <= 0:
        return {"sessions": 0}
    with RawClient(target.url, ATTACKER, target.timeout) as client:  # the photo's analysis, cached for all
        client.queued(event.fn_index, photo_of(ordinary_inputs(event, Arsenal()), event, small))
    time.sleep(1.0)
    before = raw.rss_mb(target.pid)
    started = time.perf_counter()
    failed = 0

    def one(_: int) -> bool:
        with RawClient(target.url, ATTACKER, target.timeout) as client:
            try:
                client.queued(event.fn_index, photo_of(ordinary_inputs(event, Arsenal()), event, small))
            except (RefusedError, httpx.HTTPError):
                return False
        return True

    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        failed = sum(not ok for ok in pool.map(one, range(count)))
    time.sleep(1.0)
    after = raw.rss_mb(target.pid)
    done = count - failed
    return {
        "sessions": count,
        "failed": failed,
        "wall_s": round(time.perf_counter() - started, 1),
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "rss_mb_per_1000": round((after - before) / max(done, 1) * 1000, 1),
    }
