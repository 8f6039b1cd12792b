"""Lanes: which queue group each event waits in, with how many torch threads, and who a request comes from.

Two concurrency groups share the queue (Gradio's ``concurrency_id``), so that a visitor's upload never waits
behind another visitor's long job:

* :data:`FAST` (``"fast"``): a photo's analysis (upload, model, resolution), class search, the M+ / M- and
  P1 views, the export zip, ``/explain``, and the views redrawn after an analysis miss: each well under a
  second (a forward pass at most); :data:`FAST_WORKERS` at once (``CAM_ANALYSIS_CONCURRENCY``, default 2,
  each client address at most one of them: :data:`app.fair_queue.RUNNING_PER_CLIENT`);
* :data:`SLOW` (``"slow"``): Evaluate (both buttons), the CRF tab, the Segmentation CRF and zip: seconds to
  tens of seconds each; :data:`SLOW_WORKERS` at once (``CAM_SLOW_CONCURRENCY``, default 1). Each client
  holds at most one of them, queued or running (:mod:`app.fair_queue`).

Every queued event is in one of the two (``tests/test_lanes.py`` checks the page's config). Each lane's
handlers run with their own torch intra-op thread count (:func:`lane_threads`; OpenMP's count is a per-thread
setting, so the two lanes' worker threads do not change each other's): measured with
``python -m bench.bench_lanes`` and stated in the README. Unqueued events run under
:func:`~app.model_cache.cache_only` (:func:`cache_only_event`): no forward pass, no model load, ever.
:func:`install_lanes` wraps every event function of the page with the one or the other.

:func:`client_address` says who a request comes from, for the per-client rules of :mod:`app.fair_queue` and
:mod:`app.hosting`.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import gradio as gr
import torch

from app.errors import MISSED, RERUN_QUEUED
from app.model_cache import NotCached, cache_only

R = TypeVar("R")
FAST, SLOW = "fast", "slow"
FAST_WORKERS = int(os.environ.get("CAM_ANALYSIS_CONCURRENCY", "2"))
"""Fast-lane events running at once. Two, of different client addresses (:data:`app.fair_queue.RUNNING_PER_CLIENT`):
one client's costly analysis (a 144 MP photo: 2 s) never makes another visitor's upload wait for it
(``bench/bench_hostile.py``); a lone visitor's events still run one at a time with every core."""
SLOW_WORKERS = int(os.environ.get("CAM_SLOW_CONCURRENCY", "1"))
"""Slow-lane events running at once."""
FAST_THREADS = int(os.environ.get("CAM_FAST_TORCH_THREADS", os.environ.get("CAM_TORCH_THREADS", "0")))
"""torch intra-op threads of a fast-lane event (0: one per core, torch's default)."""
SLOW_THREADS = int(os.environ.get("CAM_SLOW_TORCH_THREADS", "1"))
"""torch intra-op threads of a slow-lane event: one, so that a long job leaves the other core to the fast lane
(measured: README, "Lanes")."""
LANE_THREADS = {FAST: FAST_THREADS, SLOW: SLOW_THREADS}


def lane_options(lane: str) -> dict[str, Any]:
    """The event options that put an event in ``lane`` (``concurrency_id`` and the lane's worker count)."""
    workers = {FAST: FAST_WORKERS, SLOW: SLOW_WORKERS}[lane]
    return {"concurrency_id": lane, "concurrency_limit": workers}


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads in *this* thread (0: leave torch's setting), then
    restore the previous count. OpenMP keeps the count per thread, so other threads are not affected."""
    if count <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def lane_threads(fn: Callable[..., R], lane: str) -> Callable[..., R]:
    """``fn`` running with ``lane``'s torch thread count (:data:`LANE_THREADS`); signature kept (Gradio reads it)."""
    count = LANE_THREADS[lane]

    @functools.wraps(fn)
    def in_lane(*args: Any, **kwargs: Any) -> R:
        with torch_threads(count):
            return fn(*args, **kwargs)

    in_lane.lane = lane  # type: ignore[attr-defined]  # read by tests and install_lane_threads
    return in_lane


def cache_only_event(fn: Callable[..., R], falls_back: bool) -> Callable[..., R]:
    """``fn`` run under :func:`app.model_cache.cache_only` (an unqueued event: no forward pass, no model load).

    On a miss it fails: quietly when the page runs it again through the queue (``falls_back``: a ``.failure``
    step, :meth:`app.events.Events.instant_views`), else with :data:`~app.errors.MISSED` (inline where the
    event has a notice: :func:`app.errors.with_notice`).
    """

    @functools.wraps(fn)
    def unqueued(*args: Any, **kwargs: Any) -> R:
        rerun = RERUN_QUEUED.set(falls_back)  # an inline notice (app.errors.with_notice) when nothing reruns it
        try:
            with cache_only():
                return fn(*args, **kwargs)
        except NotCached:
            if falls_back:
                raise gr.Error("Not cached: run through the queue.", visible=False, print_exception=False) from None
            raise gr.Error(MISSED, print_exception=False) from None
        finally:
            RERUN_QUEUED.reset(rerun)

    unqueued.cache_only = True  # type: ignore[attr-defined]
    return unqueued


def install_lanes(blocks: Any) -> tuple[int, int]:
    """Wrap ``blocks``' event functions once: every queued one in a lane with :func:`lane_threads`, every unqueued
    one with :func:`cache_only_event`. Returns ``(queued, unqueued)`` counts wrapped."""
    fallbacks = {fn.trigger_after for fn in blocks.fns.values() if fn.trigger_only_on_failure and fn.queue}
    queued = unqueued = 0
    for block_fn in blocks.fns.values():
        if block_fn.fn is None:
            continue
        if not block_fn.queue and not getattr(block_fn.fn, "cache_only", False):
            block_fn.fn = cache_only_event(block_fn.fn, block_fn._id in fallbacks)
            unqueued += 1
        elif block_fn.queue and block_fn.concurrency_id in LANE_THREADS and getattr(block_fn.fn, "lane", None) is None:
            block_fn.fn = lane_threads(block_fn.fn, block_fn.concurrency_id)
            queued += 1
    return queued, unqueued


# ---------------------------------------------------------------- who a request comes from

ON_SPACE = os.environ.get("SYSTEM") == "spaces"
"""Running as a Hugging Face Space (its proxy sets ``SYSTEM=spaces`` and ``X-Forwarded-For``)."""


def client_address(peer: str | None, forwarded_for: str | None, on_space: bool | None = None) -> str:
    """The address a request counts against: the TCP peer, or on a Space the first ``X-Forwarded-For`` hop.

    Only a Space's own proxy sets the header there; anywhere else a client could write any value in it, so it
    is ignored. An IPv6 address counts as its /64 network (one host usually holds a whole /64), an IPv4-mapped
    one as its IPv4 address.

    Args:
        peer: ``request.client.host`` (``None`` for a test client without one).
        forwarded_for: the ``X-Forwarded-For`` header, comma-separated hops, the client first.
        on_space: whether the header is trusted (default: :data:`ON_SPACE`, read at the call).

    Returns:
        ``"203.0.113.7"``, ``"2001:db8:1:2::/64"``, or ``"unknown"`` when there is no usable address.
    """
    candidate = peer
    if (ON_SPACE if on_space is None else on_space) and forwarded_for:
        first = forwarded_for.split(",", 1)[0].strip()
        candidate = first or peer
    try:
        address = ipaddress.ip_address((candidate or "").strip())
    except ValueError:
        return "unknown" if not peer or candidate == peer else client_address(peer, None, False)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


def headers_address(peer: str | None, headers: Mapping[str, str] | None) -> str:
    """:func:`client_address` of a request's peer and headers (a Starlette ``Headers`` or a plain mapping)."""
    forwarded = headers.get("x-forwarded-for") if headers is not None else None
    return client_address(peer, forwarded)


def scope_address(scope: Mapping[str, Any]) -> str:
    """:func:`client_address` of an ASGI scope (the middleware's view of a request)."""
    client = scope.get("client")
    forwarded = None
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            forwarded = value.decode("latin-1")
            break
    return client_address(client[0] if client else None, forwarded)
