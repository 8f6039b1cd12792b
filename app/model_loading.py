"""A model that is still loading, on the page: said at once, finished by itself when the load is done.

A photo, model or resolution event whose model is not loaded yet gets :class:`~app.errors.LoadingNotice` after at
most :data:`app.model_cache.LOAD_WAIT_S` (the load goes on in the background, in no worker of the queue).
:func:`answering_at_once` turns that into the event's own outputs: the status line says "Loading <model> (...):
about N s left" with a progress bar, the panels keep what they show, and a :class:`PendingLoad` starts the page's
:class:`LoadWatch` timer. Each tick (unqueued, a look at :meth:`~app.model_cache.ModelCache.status`, nothing
started, no network, no file write) moves the bar (time spent against the expected time); when the model is ready
the tick writes that kind's ``done`` field, whose change runs the same event again (queued, fast lane: now a cache
hit), with the same chained redraws. ``done`` is a hidden textbox, not a ``gr.State``: Gradio's client fires a
state's change only from a *queued* event's answer (the queue's messages carry ``changed_state_ids``; an unqueued
answer does not), so a state set by the tick never ran the event again; a component's change fires in the browser
whatever answer set its value. A failed load is said in the status line and the Model field goes back to the model
the panels show.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import gradio as gr

import cam_core
from app import model_cache
from app.errors import LoadingNotice
from app.events import Events
from app.model_cache import ModelLoading
from app.state import Session

Kind = Literal["photo", "model", "resolution"]
KINDS: tuple[Kind, ...] = ("photo", "model", "resolution")
POLL_S = 1.0
"""Seconds between two looks at a pending load (each a few microseconds of work, one small request)."""


@dataclass(frozen=True)
class PendingLoad:
    """What the page waits for: the event ``kind`` to run again once ``model`` at ``output_stride`` is loaded."""

    kind: Kind
    model: str
    output_stride: int
    since: float  # makes each pending load a new value (a state's change event compares values)


@dataclass(frozen=True)
class LoadWatch:
    """The page's invisible parts: what waits, the timer that looks at it, and one ``done`` field per kind (a hidden
    textbox whose value :func:`done_token` changes when that kind's load is ready)."""

    pending: gr.State
    timer: gr.Timer
    done: dict[str, gr.Textbox]

    @property
    def outputs(self) -> list[Any]:
        """What :func:`answering_at_once` appends to an event's outputs."""
        return [self.pending, self.timer]


def build_load_watch() -> LoadWatch:
    """The state, the (inactive) timer and the hidden ``done`` fields, inside the current ``gr.Blocks``."""
    done: dict[str, gr.Textbox] = {
        kind: gr.Textbox("", visible="hidden", elem_id=f"load-done-{kind}", elem_classes="load-done") for kind in KINDS
    }
    return LoadWatch(gr.State(None), gr.Timer(POLL_S, active=False), done)


def done_token(pending: PendingLoad) -> str:
    """The ``done`` field's value for ``pending``: new for each load (its ``since``), so each change fires."""
    return f"{pending.model}@{pending.output_stride}#{pending.since:.6f}"


def loading_status(loading: ModelLoading | Any, elapsed_s: float = 0.0, expected_s: float | None = None) -> str:
    """The status line while ``loading`` goes on: what loads, from where, a progress bar of the time spent
    (``elapsed_s``) against the expected time (``expected_s``, default elapsed + ``loading.remaining_s``), and about
    how long is left; past the estimate, the time so far (the remaining time is clamped at 1 s)."""
    expected = elapsed_s + loading.remaining_s if expected_s is None else expected_s
    over = elapsed_s > expected
    left = f"{elapsed_s:.0f} s so far, longer than the estimate" if over else f"about {loading.remaining_s:.0f} s left"
    top = max(expected, elapsed_s + loading.remaining_s)  # past the estimate the bar stays short of full
    verb = "downloading" if "download" in loading.source else "loading"
    bar = (
        f'<progress class="load-progress" value="{elapsed_s:.1f}" max="{top:.1f}" '
        f'aria-label="{verb} {loading.name}: {elapsed_s:.0f} of about {expected:.0f} s"></progress>'
    )
    return (
        f"⏳ Loading **{loading.name}** ({loading.source}): {left}.\n\n{bar} {elapsed_s:.0f} s / about "
        f"{expected:.0f} s\n\nThe panels keep what they show; the page switches by itself when it is ready."
    )


def answering_at_once(
    handler: Callable[..., tuple[Any, ...]], kind: Kind, result: type[tuple[Any, ...]]
) -> Callable[..., tuple[Any, ...]]:
    """``handler``'s outputs plus (pending load, timer): a model still loading is said in ``result``'s ``status``
    field at once (every other field left as it is) and starts the timer; otherwise both extras stay as they are."""

    @functools.wraps(handler)
    def answered(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        try:
            return (*handler(*args, **kwargs), gr.skip(), gr.skip())
        except LoadingNotice as exc:
            loading = exc.loading
            names: tuple[str, ...] = result._fields  # type: ignore[attr-defined]  # a NamedTuple of the outputs
            started = model_cache.MODELS.status(loading.name, loading.output_stride)  # a look at the dicts, no I/O
            line = loading_status(loading, started.elapsed_s, started.expected_s or None)
            said = tuple(line if name == "status" else gr.skip() for name in names)
            pending = PendingLoad(kind, loading.name, loading.output_stride, time.monotonic())
            return (*said, pending, gr.Timer(active=True))

    return answered


class PollResult(NamedTuple):
    """A tick's outputs: what still waits, the timer, each kind's ``done`` field, the status line, the Model field."""

    pending: Any
    timer: Any
    done_photo: Any
    done_model: Any
    done_resolution: Any
    status: Any
    model: Any


def poll_load(pending: Any, session: Session | None) -> PollResult:
    """One tick: count down while ``pending`` loads; when ready, write its kind's ``done`` (the event runs again);
    when failed, say why and put the Model field back to the model the panels show."""
    skip = gr.skip()
    if not isinstance(pending, PendingLoad):
        # a tick queued behind the one that finished the load: the timer is no longer its to set (a load started
        # since may have just restarted it, and this answer can land after that one's); a dropped session stops it
        timer = gr.Timer(active=False) if session is None else skip
        return PollResult(skip, timer, skip, skip, skip, skip, skip)
    status = model_cache.MODELS.status(pending.model, pending.output_stride)
    if status.state == "loading":
        source = model_cache.weights_source(pending.model)
        loading = ModelLoading(pending.model, pending.output_stride, status.remaining_s, source)
        return PollResult(
            skip, skip, skip, skip, skip, loading_status(loading, status.elapsed_s, status.expected_s), skip
        )
    stop = gr.Timer(active=False)
    if status.state == "ready":
        photo, model, resolution = (done_token(pending) if kind == pending.kind else skip for kind in KINDS)
        return PollResult(None, stop, photo, model, resolution, f"**{pending.model}** is loaded: analysing…", skip)
    shown = session.model if session is not None else cam_core.DEFAULT_MODEL
    back = gr.update(value=shown) if pending.kind == "model" else skip
    return PollResult(None, stop, skip, skip, skip, f"⚠️ {status.error} The panels still show **{shown}**.", back)


def wire_model_loads(events: Events, loads: LoadWatch) -> None:
    """The timer's tick (unqueued: it only reads the load's status)."""
    named = events.named
    outputs = [loads.pending, loads.timer, *loads.done.values(), named["status"], named["model"]]
    loads.timer.tick(poll_load, [loads.pending, named["session"]], outputs, **events.instant)
