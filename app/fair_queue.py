"""Fair shares of the queue and of the unqueued events, per client address (:func:`app.lanes.client_address`).

:class:`FairQueue` is Gradio's queue with three rules, checked when an event joins (``queue/join``,
``/call/<name>``: every queued route goes through :meth:`FairQueue.push`) and when a worker takes the next one:

* a client address holds at most :data:`MAX_EVENTS_PER_CLIENT` events, waiting or running; one more is
  refused at once (HTTP 429, the page shows the message), so one client cannot fill the queue for everyone;
* a session, and a client address, holds at most one slow-lane event (Evaluate, CRF, Segmentation CRF or
  zip), waiting or running: a second is refused at once, never queued;
* within a lane the next event is taken round-robin over client addresses, not first-come first-served: the
  address with the fewest events running, then the one served longest ago (never: first), goes first, so a
  visitor's upload waits for at most one job per other active client, however many that client queued;
* a client address runs at most :data:`RUNNING_PER_CLIENT` events of one lane at once: with the fast lane's two
  workers, one client's long queue of costly analyses (a 144 MP photo takes 2 s) holds one worker and the other
  stays free for everyone else, so a visitor's upload does not wait behind it at all.

:class:`UnqueuedGate` bounds the unqueued events (slider moves, ``queue=False``): at most
:data:`UNQUEUED_PER_CLIENT` of one address run at once and :data:`UNQUEUED_TOTAL` in all; the others wait
(without a thread) up to :data:`UNQUEUED_WAIT_S`, at most :data:`UNQUEUED_WAITING_PER_CLIENT` of one address.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Iterable
from typing import Any

from fastapi import HTTPException
from gradio import queueing

from app.lanes import SLOW, headers_address

MAX_EVENTS_PER_CLIENT = int(os.environ.get("CAM_MAX_EVENTS_PER_CLIENT", "16"))
"""Queued-or-running events one client address may hold (a page queues one or two at a time)."""
MAX_QUEUE = int(os.environ.get("CAM_MAX_QUEUE", "256"))
"""Events waiting in all lanes together (Gradio's ``max_size``): 16 addresses' full shares."""
SERVED_MEMORY = 4096
"""Addresses whose last service time is remembered for the round-robin (the oldest forgotten first)."""
RUNNING_PER_CLIENT = int(os.environ.get("CAM_RUNNING_PER_CLIENT", "1"))
"""Events of one lane that one client address may have running at once (the rest of its share waits)."""
SLOW_PER_CLIENT = 1
"""Slow-lane events one session, and one client address, may hold (waiting or running)."""
UNQUEUED_PER_CLIENT = int(os.environ.get("CAM_UNQUEUED_PER_CLIENT", "2"))
UNQUEUED_TOTAL = int(os.environ.get("CAM_UNQUEUED_TOTAL", "4"))
UNQUEUED_WAIT_S = 10.0
UNQUEUED_WAITING_PER_CLIENT = 32
TOO_MANY = (
    "Too many requests from your address at once ({count} waiting or running); wait for them to finish, then try again."
)
ONE_LONG_JOB = (
    "You already have a long job (Evaluate, CRF or a Segmentation zip) waiting or running: one at a time per "
    "visitor. Wait for it to finish, then try again."
)
_ADDRESS = "_cam_client_address"


def event_address(event: queueing.Event) -> str:
    """The client address of a queued event (computed once, kept on the event)."""
    address = getattr(event, _ADDRESS, None)
    if address is None:
        request = event.request
        address = headers_address(request.client.host if request.client else None, request.headers)
        setattr(event, _ADDRESS, address)
    return str(address)


def fair_pick(
    waiting: list[queueing.Event],
    running: Iterable[queueing.Event],
    served: dict[str, float],
    per_client: int | None = None,
) -> int | None:
    """The position in ``waiting`` of the event to run next: of the first event of each address with fewer than
    ``per_client`` events running (default :data:`RUNNING_PER_CLIENT`), the one whose address has the fewest
    events running, then was served longest ago (``served``: address -> when its last event started; absent:
    never). Round-robin over addresses, first-come first-served within one. ``None``: every waiting address is
    at its cap (the lane waits, although a worker is free)."""
    cap = RUNNING_PER_CLIENT if per_client is None else per_client
    load = Counter(event_address(event) for event in running)
    best, best_rank, seen = None, None, set()
    for position, event in enumerate(waiting):
        address = event_address(event)
        if address in seen or load[address] >= cap:
            continue
        seen.add(address)
        rank = (load[address], served.get(address, float("-inf")))
        if best_rank is None or rank < best_rank:
            best, best_rank = position, rank
    return best


class FairQueue(queueing.Queue):
    """Gradio's queue with per-client shares and round-robin order (the rules in the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._admission = asyncio.Lock()
        self._served: OrderedDict[str, float] = OrderedDict()  # address -> when its last event started (LRU)

    def _events(self) -> list[queueing.Event]:
        """Every event waiting or running, all lanes."""
        events = [event for lane in self.event_queue_per_concurrency_id.values() for event in lane.queue]
        return events + [event for job in self.active_jobs if job for event in job]

    def refusal(self, concurrency_id: str | None, session_hash: str | None, address: str) -> str | None:
        """Why an event of lane ``concurrency_id`` from ``session_hash`` at ``address`` may not join (``None``: it
        may)."""
        events = self._events()
        mine = [event for event in events if event_address(event) == address]
        if len(mine) >= MAX_EVENTS_PER_CLIENT:
            return TOO_MANY.format(count=len(mine))
        if concurrency_id == SLOW:
            slow = [event for event in events if event.concurrency_id == SLOW]
            same = [e for e in slow if event_address(e) == address or (session_hash and e.session_hash == session_hash)]
            if len(same) >= SLOW_PER_CLIENT:
                return ONE_LONG_JOB
        return None

    async def push(self, body: Any, request: Any, username: str | None) -> Any:
        """Join the queue, or raise ``HTTPException(429)`` with the reason (the page shows it)."""
        fn = self.blocks.fns.get(body.fn_index) if isinstance(body.fn_index, int) else None
        if fn is None:  # Gradio answers a missing or unknown fn_index itself
            return await super().push(body, request, username)
        address = headers_address(request.client.host if request.client else None, request.headers)
        async with self._admission:  # checked and joined as one step: two joins cannot both take the last share
            reason = self.refusal(fn.concurrency_id, body.session_hash, address)
            if reason is not None:
                raise HTTPException(status_code=429, detail=reason)
            result = await super().push(body, request, username)
        success, event_id, _ = result
        if success and isinstance(event_id, str) and event_id in self.event_ids_to_events:
            setattr(self.event_ids_to_events[event_id], _ADDRESS, address)
        return result

    def get_events(self) -> tuple[list[queueing.Event], bool, str] | None:
        """Gradio's choice of lane, then :func:`fair_pick` within it (batched functions: Gradio's own order)."""
        lanes = list(self.event_queue_per_concurrency_id.items())
        random.shuffle(lanes)  # as Gradio: no lane starves another
        for concurrency_id, lane in lanes:
            if not lane.queue or lane.queue[0].fn.batch:
                continue
            if lane.concurrency_limit is not None and lane.current_concurrency >= lane.concurrency_limit:
                continue
            running = [e for job in self.active_jobs if job for e in job if e.concurrency_id == concurrency_id]
            position = fair_pick(lane.queue, running, self._served)
            if position is None:
                continue
            event = lane.queue.pop(position)
            address = event_address(event)
            self._served[address] = time.monotonic()
            self._served.move_to_end(address)
            if len(self._served) > SERVED_MEMORY:
                self._served.popitem(last=False)
            return [event], False, concurrency_id
        if any(lane.queue and lane.queue[0].fn.batch for lane in self.event_queue_per_concurrency_id.values()):
            return super().get_events()  # batched functions (none in this app): Gradio's own order
        return None


class UnqueuedGate:
    """Concurrency caps for unqueued events, per client address and in total (see the module docstring)."""

    def __init__(
        self,
        per_client: int | None = None,
        total: int | None = None,
        wait_s: float | None = None,
        waiting_per_client: int | None = None,
    ) -> None:
        """Each limit defaults to its module constant as it is when the gate is made (a launch makes one)."""
        self.per_client = UNQUEUED_PER_CLIENT if per_client is None else per_client
        self.wait_s = UNQUEUED_WAIT_S if wait_s is None else wait_s
        self.waiting_per_client = UNQUEUED_WAITING_PER_CLIENT if waiting_per_client is None else waiting_per_client
        self.total = asyncio.Semaphore(UNQUEUED_TOTAL if total is None else total)
        self._clients: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}  # address -> (its slots, [holders])

    @contextlib.asynccontextmanager
    async def slot(self, address: str) -> AsyncIterator[bool]:
        """Hold one slot for ``address`` while the block runs; yields ``False`` (run nothing) when the address has
        too many waiting or no slot came within the wait."""
        own, users = self._clients.setdefault(address, (asyncio.Semaphore(self.per_client), [0]))
        if users[0] >= self.per_client + self.waiting_per_client:
            yield False
            return
        users[0] += 1
        try:
            async with asyncio.timeout(self.wait_s):
                await own.acquire()
                try:
                    await self.total.acquire()
                except BaseException:
                    own.release()
                    raise
        except TimeoutError:
            self._leave(address, users)
            yield False
            return
        try:
            yield True
        finally:
            self.total.release()
            own.release()
            self._leave(address, users)

    def _leave(self, address: str, users: list[int]) -> None:
        users[0] -= 1
        if users[0] == 0:  # nobody holds or waits: forget the address (the dict stays as small as the traffic)
            self._clients.pop(address, None)
