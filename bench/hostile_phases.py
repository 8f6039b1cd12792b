"""The first attack of ``bench.bench_hostile``: each event alone with its worst input, measured on the server.

:func:`worst_phase` runs each event once with its worst input (:mod:`bench.hostile_inputs`), one after the other with
nothing else running, in one attacker session started by the page's photo event: the server's peak RSS above its RSS
just before, and its CPU seconds, per request (:func:`measure`; :class:`Watch` stops a request past the RSS ceiling).
The attacks with a victim are in :mod:`bench.hostile_attacks`.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import gradio_raw as raw
from bench.gradio_raw import RawClient, RefusedError
from bench.hostile_inputs import (
    MULTISELECT_MAX,
    Arsenal,
    Component,
    Event,
    photo_of,
    worst_inputs,
)

ATTACKER = "127.0.0.2"
VICTIM = "127.0.0.1"
LONG_S = 1.0
"""An event whose worst input took at least this long in the worst phase is a long job."""


@dataclass
class Target:
    """The app under attack: its URL, the process to measure, its events and components."""

    url: str
    pid: int
    events: list[Event]
    components: list[Component]
    timeout: float
    ceiling_mb: float = 4000.0
    killed: list[str] = field(default_factory=list)
    on_kill: Callable[[], None] | None = None
    revive: Callable[[], None] | None = None
    alive: Callable[[], bool] = lambda: True

    @property
    def photo_event(self) -> Event | None:
        """The page's upload event (a session's first), if any."""
        return next((e for e in self.events if e.is_photo_event), None)


@dataclass
class Measured:
    """One request of the worst phase."""

    name: str
    fn_index: int
    queued: bool
    status: str
    wall_s: float
    cpu_s: float
    peak_mb_above_before: float
    rss_before_mb: float
    detail: str = ""

    def row(self) -> dict[str, Any]:
        """As the JSON holds it (rounded)."""
        return {
            "name": self.name,
            "fn_index": self.fn_index,
            "queued": self.queued,
            "status": self.status,
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "peak_rss_mb_above_before": round(self.peak_mb_above_before, 1),
            "rss_before_mb": round(self.rss_before_mb, 1),
            "detail": self.detail,
        }


class Watch:
    """Samples the server's RSS every 50 ms; past ``ceiling_mb`` above ``base`` it kills the server (the machine
    is shared: a request that would take 9 GB is stopped at the ceiling and reported as such)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.peak = 0.0
        self.cpu = raw.cpu_s(target.pid)
        self.base = raw.rss_mb(target.pid)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            rss, cpu = raw.rss_mb(self.target.pid), raw.cpu_s(self.target.pid)
            if rss == 0.0:  # gone
                return
            self.peak, self.cpu = max(self.peak, rss), cpu
            if rss - self.base > self.target.ceiling_mb and self.target.on_kill is not None:
                self.target.killed.append(f"RSS {rss:.0f} MB, over the ceiling of {self.target.ceiling_mb:.0f} MB")
                self.target.on_kill()
                return

    def reset(self) -> None:
        """Start a new request: the base is the RSS now."""
        self.base = raw.rss_mb(self.target.pid)
        self.peak = self.base

    def close(self) -> None:
        """Stop sampling."""
        self.stop.set()
        self.thread.join(2)


def measure(target: Target, watch: Watch, event: Event, call: Callable[[], list[Any]], name: str = "") -> Measured:
    """Run ``call`` (one request) and measure the server: wall, CPU and peak RSS above the RSS just before."""
    watch.reset()
    before, cpu0 = watch.base, raw.cpu_s(target.pid)
    exact = raw.reset_peak(target.pid)
    started = time.perf_counter()
    status = "ok"
    try:
        call()
    except RefusedError as exc:
        status = exc.reason
    except httpx.HTTPError as exc:
        status = f"{type(exc).__name__}"
    wall = time.perf_counter() - started
    time.sleep(0.1)  # the last sample
    peak = max(watch.peak, raw.peak_mb(target.pid) if exact else 0.0)
    cpu = raw.cpu_s(target.pid) - cpu0
    if not target.alive():
        status = f"killed: {target.killed[-1] if target.killed else 'the server died'}"
        cpu = watch.cpu - cpu0  # the last sample before it went
    return Measured(
        name or event.name,
        event.fn_index,
        event.queued,
        status,
        wall,
        cpu,
        max(0.0, peak - before),
        before,
    )


def call_event(client: RawClient, event: Event, values: list[Any], event_data: Any, timeout: float) -> list[Any]:
    """One request of ``event`` as the page sends it (queued: join + stream; else ``run/predict``)."""
    if event.queued:
        return client.queued(event.fn_index, values, event_data, timeout=timeout)
    return client.direct(event.fn_index, values, event_data)


def start_session(target: Target, client: RawClient, arsenal: Arsenal, photo: dict[str, Any]) -> list[Any]:
    """The photo event in ``client``'s session with ``photo`` and the worst menus (no download); learnt."""
    event = target.photo_event
    if event is None:
        return []
    values, _ = worst_inputs(event, arsenal, target.components)
    output = client.queued(event.fn_index, photo_of(values, event, photo), timeout=target.timeout)
    arsenal.learn(event, output)
    return output


def grow_choices(target: Target, client: RawClient, arsenal: Arsenal, tries: int = 25) -> int:
    """Grow each multi-select's choices the way a user can: an event that takes the multi-select and a menu and
    sets the multi-select's choices (search-and-add) is run with the menu's next values. Returns the calls made."""
    calls = 0
    for event in target.events:
        multi = [
            c for c in event.inputs if c.type == "dropdown" and c.props.get("multiselect") and c.id in event.outputs
        ]
        menus = [c for c in event.inputs if c.type == "dropdown" and not c.props.get("multiselect")]
        if not multi or not menus:
            continue
        offered = [v for v in _values(menus[-1]) if v not in arsenal.choices.get(multi[0].id, [])]
        for value in offered[:tries]:
            if len(arsenal.choices.get(multi[0].id, [])) >= MULTISELECT_MAX:
                break
            values, data = worst_inputs(event, arsenal, target.components)
            values[event.inputs.index(menus[-1])] = value
            with contextlib.suppress(RefusedError, httpx.HTTPError):
                arsenal.learn(event, call_event(client, event, values, data, target.timeout))
            calls += 1
    return calls


def _values(component: Component) -> list[Any]:
    return [c[1] if isinstance(c, list | tuple) else c for c in component.props.get("choices") or []][::-1]


def worst_phase(target: Target, arsenal: Arsenal, on_row: Callable[[Measured], None]) -> list[Measured]:
    """Each server event once with its worst input, in one attacker session, one after the other.

    A request that takes the server past the RSS ceiling is stopped there (:class:`Watch`); the server is started
    again (``target.revive``) with a new session, and the phase goes on with the next event.
    """
    rows: list[Measured] = []
    photo = target.photo_event
    client = RawClient(target.url, ATTACKER, target.timeout)
    watch = Watch(target)

    def session() -> None:
        if photo is not None and arsenal.big_photo is not None:
            rows.append(
                measure(target, watch, photo, lambda: start_session(target, client, arsenal, arsenal.big_photo))
            )
            on_row(rows[-1])
            grow_choices(target, client, arsenal)

    try:
        session()
        for event in target.events:
            if event is photo or (event.needs_session and photo is None):
                continue
            if not target.alive():
                if target.revive is None:
                    break
                watch.close()
                target.revive()
                client.close()
                client, watch = RawClient(target.url, ATTACKER, target.timeout), Watch(target)
                session()
            if _short_of_choices(event, arsenal):  # an earlier event reset them (a new photo's top classes)
                grow_choices(target, client, arsenal)
            values, data = worst_inputs(event, arsenal, target.components)
            call = functools.partial(_learnt, client, event, values, data, target.timeout, arsenal)
            rows.append(measure(target, watch, event, call))
            rows[-1].detail = _detail(event, values)
            on_row(rows[-1])
    finally:
        watch.close()
        client.close()
    return rows


def _short_of_choices(event: Event, arsenal: Arsenal) -> bool:
    """Whether ``event`` takes a multi-select whose session offers fewer than :data:`MULTISELECT_MAX` choices now."""
    multi = [c for c in event.inputs if c.type == "dropdown" and c.props.get("multiselect")]
    return any(len(arsenal.choices.get(c.id, [])) < MULTISELECT_MAX for c in multi)


def _detail(event: Event, values: list[Any]) -> str:
    """What is notable in a worst input: how many values its lists hold (photos, classes)."""
    return ", ".join(f"{c.label or c.type}: {len(v)}" for c, v in zip(event.inputs, values, strict=True)
                     if isinstance(v, list))  # fmt: skip


def _learnt(
    client: RawClient, event: Event, values: list[Any], data: Any, timeout: float, arsenal: Arsenal
) -> list[Any]:
    output = call_event(client, event, values, data, timeout)
    arsenal.learn(event, output)
    return output
