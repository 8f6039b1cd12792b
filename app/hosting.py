"""Serving the app in public: per-request limits and a bounded upload folder, applied on every launch.

:class:`ExplainerBlocks` is a ``gr.Blocks`` whose :meth:`~ExplainerBlocks.launch` always installs
:class:`RequestLimits` (an ASGI middleware) and Gradio's age-based cache cleaning, so a test, a benchmark
or a Space that calls ``demo.launch()`` gets the same protection as ``python app.py``:

* a request body is at most :data:`MAX_BODY_BYTES` (events, JSON) or :data:`MAX_UPLOAD_BYTES` (file
  uploads), counted as it streams in (a missing or false ``Content-Length`` does not help);
* at most :data:`MAX_CONCURRENT_UPLOADS` uploads stream at once (others wait, at most :data:`UPLOAD_WAIT_S`,
  then get 503);
* one client address (:func:`app.lanes.scope_address`) uploads at most :data:`CLIENT_UPLOAD_BYTES` and
  :data:`CLIENT_UPLOADS` requests per :data:`CLIENT_WINDOW_S` (:class:`UploadLedger`; then 429), so one client
  cannot push the others' photos out of the upload folder;
* after each upload, files this app received are deleted oldest first until the upload folder's share
  is within :data:`UPLOAD_BUDGET_BYTES` (example files Gradio keeps are never deleted), and Gradio's
  ``delete_cache`` removes any upload older than :data:`UPLOAD_MAX_AGE_S` (no session reads its upload after
  the upload event: a model change re-analyses the display copy, so pruning never breaks a session);
* Gradio keeps at most :data:`SESSION_CAPACITY` sessions (``state_session_capacity``, least recently used
  dropped first), and a session idle for :data:`SESSION_IDLE_S` is dropped (:func:`expire_idle_sessions`);
* unqueued events (``run/predict``, ``run/<name>``) pass :class:`~app.fair_queue.UnqueuedGate`: a few per
  client address at once, a few in all;
* every response carries :data:`SECURITY_HEADERS` (:class:`SecurityHeaders`): a Content-Security-Policy that
  lets the page load only from its own origin (no foreign picture, form target, base URL or script; framed only
  by itself and the Hugging Face Hub), ``nosniff`` and a same-origin Referrer-Policy.

Its :meth:`~ExplainerBlocks.queue` is :class:`~app.fair_queue.FairQueue` (per-client shares, one long job per
visitor, round-robin within a lane), holding at most :data:`~app.fair_queue.MAX_QUEUE` waiting events, with
the REST routes closed to queued events (``api_open=False``: a queued event cannot be run around the queue
through ``run/predict``).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
import os
import signal
import threading
import time
from collections import OrderedDict
from typing import Any

import gradio as gr
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import files
from app.errors import quiet_refusal
from app.fair_queue import MAX_QUEUE, FairQueue, UnqueuedGate
from app.lanes import scope_address

LOGGER = logging.getLogger("cam_explainer")
MAX_BODY_BYTES = 1 * 2**20
MAX_FILE_MB = 20
MAX_UPLOAD_BYTES = 64 * 2**20
MAX_CONCURRENT_UPLOADS = 4
UPLOAD_WAIT_S = 30.0
UPLOAD_BUDGET_BYTES = int(float(os.environ.get("CAM_UPLOAD_BUDGET_MB", "512")) * 2**20)
UPLOAD_MAX_AGE_S = int(os.environ.get("CAM_UPLOAD_MAX_AGE_S", "3600"))
CLIENT_UPLOAD_BYTES = int(float(os.environ.get("CAM_CLIENT_UPLOAD_MB", "256")) * 2**20)
"""Bytes one client address may upload per :data:`CLIENT_WINDOW_S` (env ``CAM_CLIENT_UPLOAD_MB``, default 256 MiB:
half the upload folder's budget, so one address alone cannot empty it of the others' files)."""
CLIENT_UPLOADS = int(os.environ.get("CAM_CLIENT_UPLOADS", "300"))
"""Upload requests one client address may make per :data:`CLIENT_WINDOW_S` (env ``CAM_CLIENT_UPLOADS``)."""
CLIENT_WINDOW_S = float(os.environ.get("CAM_CLIENT_WINDOW_S", "600"))
"""The window of the per-address upload budget, in seconds (env ``CAM_CLIENT_WINDOW_S``, default 10 minutes)."""
MAX_CLIENTS = 10_000
"""Client addresses the upload ledger remembers (the oldest window is forgotten first)."""
SESSION_CAPACITY = int(os.environ.get("CAM_SESSIONS", "1000"))
"""Sessions Gradio keeps (``state_session_capacity``; env ``CAM_SESSIONS``; Gradio's default is 10,000)."""
SESSION_IDLE_S = float(os.environ.get("CAM_SESSION_IDLE_S", "3600"))
"""A session unused for this long is dropped (env ``CAM_SESSION_IDLE_S``, default one hour)."""
SWEEP_EVERY_S = 10.0
FRAME_ANCESTORS = ("'self'", "https://huggingface.co", "https://*.hf.space")
"""Who may frame the page: itself, and the Hub (a Space's page on huggingface.co frames ``*.hf.space``)."""
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        # Gradio's page runs inline scripts (its config) and compiles each event's `js=` step with `new Function`
        "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:",
        "style-src 'self' 'unsafe-inline'",  # Svelte's and our CSS, inline
        "img-src 'self' data: blob:",  # no picture from another host (a link's `<img src=//host>` cannot call home)
        "media-src 'self' data: blob:",
        "font-src 'self' data:",  # Gradio 6 serves its fonts itself
        "connect-src 'self'",  # fetch, server-sent events and websockets to this origin only
        "worker-src 'self' blob:",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",  # no form submits to another host
        "frame-ancestors " + " ".join(FRAME_ANCESTORS),
    ]
)
"""The page's Content-Security-Policy (issue #22 item 5): everything from this origin, nothing from elsewhere."""
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # a deep link's query (the view) is never sent to another site
}
"""Headers set on every HTTP response of the app (a header the route set itself is replaced)."""
OPTIONAL_TRAILING_INPUTS = {"explain": 3}
"""Public endpoints whose last N inputs were added after release (``/explain``: ``input_size``, ``output_stride``,
``method``): a raw-HTTP call that omits them gets the components' defaults, as gradio_client fills them."""


class _TooLargeError(Exception):
    pass


def is_unqueued_call(scope: Scope) -> bool:
    """Whether an HTTP request runs an event without the queue (``POST .../run/<name>`` or ``.../api/<name>``)."""
    if scope["method"] != "POST":
        return False
    parts = scope["path"].rstrip("/").split("/")
    return len(parts) >= 3 and parts[-2] in ("run", "api")


class _OverBudgetError(Exception):
    pass


class UploadLedger:
    """What each client address uploaded in its current window: bytes and requests, bounded per address.

    A window opens at an address's first upload and lasts :data:`CLIENT_WINDOW_S`. Used from the server's event
    loop only (no lock). At most :data:`MAX_CLIENTS` addresses are remembered.
    """

    def __init__(self) -> None:
        self._clients: OrderedDict[str, list[float]] = OrderedDict()  # address -> [window start, bytes, uploads]

    def _entry(self, address: str) -> list[float]:
        now = time.monotonic()
        entry = self._clients.get(address)
        if entry is None or now - entry[0] >= CLIENT_WINDOW_S:
            entry = self._clients[address] = [now, 0.0, 0.0]
        self._clients.move_to_end(address)
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)
        return entry

    def start(self, address: str, declared: int | None) -> str | None:
        """Count one upload request from ``address`` (declaring ``declared`` bytes, if it says); the refusal's text
        when the address is over its budget (the request is then not counted), else ``None``."""
        entry = self._entry(address)
        if entry[2] >= CLIENT_UPLOADS or entry[1] + (declared or 0) > CLIENT_UPLOAD_BYTES:
            return self.refusal(address)
        entry[2] += 1
        return None

    def charge(self, address: str, nbytes: int) -> bool:
        """Add ``nbytes`` received from ``address``; ``False`` once it is over its byte budget."""
        entry = self._entry(address)
        entry[1] += nbytes
        return entry[1] <= CLIENT_UPLOAD_BYTES

    def retry_after(self, address: str) -> int:
        """Seconds until ``address``'s window closes."""
        return max(1, math.ceil(self._entry(address)[0] + CLIENT_WINDOW_S - time.monotonic()))

    def refusal(self, address: str) -> str:
        """The 429 text: the budget, and when the address may upload again."""
        minutes = math.ceil(self.retry_after(address) / 60)
        return (
            f"Too many uploads from your address: at most {CLIENT_UPLOADS} uploads and "
            f"{CLIENT_UPLOAD_BYTES / 2**20:g} MB per {CLIENT_WINDOW_S / 60:g} minutes. Try again in {minutes} "
            f"minute{'s' if minutes > 1 else ''}."
        )


def expire_idle_sessions(blocks: gr.Blocks, idle_s: float | None = None) -> int:
    """Drop the sessions Gradio holds that were last used over ``idle_s`` seconds ago (default
    :data:`SESSION_IDLE_S`); returns how many.

    Gradio's ``state_session_capacity`` bounds how many sessions it keeps, but not for how long; a ``gr.State``
    ``time_to_live`` would free the state's value only, not the session (about 0.3 MB of per-session component
    configuration in Gradio, whatever the state holds). Gradio keeps ``session_data`` in order of last use, so
    the sweep stops at the first session still in use.
    """
    holder = getattr(blocks, "state_holder", None)
    if holder is None:
        return 0
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=SESSION_IDLE_S if idle_s is None else idle_s)
    dropped = 0
    with holder.lock:
        for session_id in list(holder.session_data):
            last = holder.time_last_used.get(session_id)
            if last is not None and last >= cutoff:
                break
            holder.session_data.pop(session_id, None)
            holder.time_last_used.pop(session_id, None)
            dropped += 1
    return dropped


def prune_uploads(blocks: gr.Blocks, budget: int | None = None) -> int:
    """Delete the oldest files this app received by upload until they total at most ``budget`` bytes
    (default :data:`UPLOAD_BUDGET_BYTES`).

    Files Gradio keeps for examples or defaults (``keep_in_cache``) are never deleted.

    Returns:
        The bytes still held by uploads.
    """
    budget = UPLOAD_BUDGET_BYTES if budget is None else budget
    keep: set[str] = set()
    for component in blocks.blocks.values():
        keep.update(getattr(component, "keep_in_cache", set()))
    entries = []
    for path in list(blocks.upload_file_set):
        try:
            info = os.stat(path)
        except OSError:
            blocks.upload_file_set.discard(path)
            continue
        entries.append((info.st_mtime, info.st_size, path))
    held = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if held <= budget:
            break
        if path in keep:
            continue
        try:
            os.remove(path)
        except OSError:
            continue
        blocks.upload_file_set.discard(path)
        held -= size
    return held


class RequestLimits:
    """ASGI middleware: bounded request bodies, bounded concurrent uploads and uploads per client address, upload
    folder pruned after each upload, idle sessions dropped."""

    def __init__(self, app: ASGIApp, blocks: gr.Blocks) -> None:
        self.app = app
        self.blocks = blocks
        self.uploads = asyncio.Semaphore(MAX_CONCURRENT_UPLOADS)
        self.unqueued = UnqueuedGate()
        self.ledger = UploadLedger()
        self.swept = time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if time.monotonic() - self.swept > SWEEP_EVERY_S:
            self.swept = time.monotonic()
            expire_idle_sessions(self.blocks)
        if is_unqueued_call(scope):
            async with self.unqueued.slot(scope_address(scope)) as admitted:
                if admitted:
                    await self._limited(scope, receive, send, MAX_BODY_BYTES)
                else:
                    await _reply(send, 429, "Too many requests from your address at once; try again in a moment.")
            return
        upload = scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/upload")
        if not upload:
            await self._limited(scope, receive, send, MAX_BODY_BYTES)
            return
        address, declared = scope_address(scope), dict(scope.get("headers", [])).get(b"content-length")
        size = int(declared) if declared is not None and declared.isdigit() else None
        too_large = declared is not None and (size is None or size > MAX_UPLOAD_BYTES)  # 413 below, not counted
        refused = None if too_large else self.ledger.start(address, size)
        if refused is not None:  # before it takes an upload slot
            await _reply(send, 429, refused, self.ledger.retry_after(address))
            return
        try:  # an upload waits for a slot (its body not yet read), but not for ever
            await asyncio.wait_for(self.uploads.acquire(), UPLOAD_WAIT_S)
        except TimeoutError:
            await _reply(send, 503, "Too many uploads at once; try again in a moment.")
            return
        try:
            await self._limited(scope, receive, send, MAX_UPLOAD_BYTES, address)
        finally:
            self.uploads.release()
            await asyncio.to_thread(prune_uploads, self.blocks)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int, uploader: str = "") -> None:
        """Pass the request on, its body counted against ``limit`` (413) and, for an upload, against the
        ``uploader`` address's budget (429)."""
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _reply(send, 413, f"Request body over {limit // 2**20} MB.")
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                body = len(message.get("body", b""))
                received += body
                if received > limit:
                    raise _TooLargeError
                if uploader and not self.ledger.charge(uploader, body):
                    raise _OverBudgetError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLargeError:
            if not started:
                await _reply(send, 413, f"Request body over {limit // 2**20} MB.")
        except _OverBudgetError:
            if not started:
                await _reply(send, 429, self.ledger.refusal(uploader), self.ledger.retry_after(uploader))
        except Exception as exc:  # a request Gradio's routes choke on (e.g. an unknown fn_index): one line, not 60
            LOGGER.warning("refused %s %s: %s: %s", scope["method"], scope["path"], type(exc).__name__, exc)
            LOGGER.debug("traceback of the refused request", exc_info=True)
            if not started:
                await _reply(send, 500, "Internal Server Error")


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every HTTP response, the app's own refusals included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                ours = {name for name, _ in self.headers}
                kept = [(name, value) for name, value in message.get("headers", []) if name.lower() not in ours]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, with_headers)


async def _reply(send: Send, status: int, text: str, retry_after: int | None = None) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ExplainerBlocks(gr.Blocks):
    """``gr.Blocks`` whose every launch is a public-safe launch (see the module docstring)."""

    css: str = ""  # type: ignore[assignment]  # Gradio declares it None until launch; set by build_demo

    def queue(self, *args: Any, **kwargs: Any) -> ExplainerBlocks:
        """Gradio's ``queue`` with its queue replaced by :class:`~app.fair_queue.FairQueue` (same settings),
        at most :data:`~app.fair_queue.MAX_QUEUE` waiting events and ``api_open=False`` unless given."""
        kwargs.setdefault("api_open", False)
        kwargs.setdefault("max_size", MAX_QUEUE)
        super().queue(*args, **kwargs)
        plain = self._queue
        self._queue = FairQueue(
            live_updates=plain.live_updates,
            concurrency_count=plain.max_thread_count,
            update_intervals=plain.update_intervals,
            max_size=plain.max_size,
            blocks=self,
            default_concurrency_limit=plain.default_concurrency_limit,
        )
        return self

    def launch(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("max_file_size", f"{MAX_FILE_MB}mb")
        kwargs.setdefault("state_session_capacity", SESSION_CAPACITY)
        kwargs.setdefault("enable_monitoring", False)  # /monitoring/summary: every event's counts, private ones too
        kwargs.setdefault("css", self.css)
        app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
        app_kwargs["middleware"] = [
            *app_kwargs.get("middleware", []),
            Middleware(SecurityHeaders),  # outside RequestLimits: its 413 / 503 replies get the headers too
            Middleware(RequestLimits, blocks=self),
        ]
        if self.delete_cache is None:
            self.delete_cache = (min(600, UPLOAD_MAX_AGE_S), UPLOAD_MAX_AGE_S)
        gr.set_static_paths([files.render_dir()])  # again: a close removed the folder the page was built with
        _stop_on_sigterm()
        _RUNNING.add(self)
        return super().launch(*args, app_kwargs=app_kwargs, **kwargs)

    def close(self, verbose: bool = True) -> None:
        """Stop the server; when no other app of this process still serves, remove the render folder too."""
        super().close(verbose)
        self._stopped()

    def block_thread(self) -> None:
        """``python app.py`` waits here until Ctrl-C or SIGTERM; the render folder goes at once (the process itself
        may still wait for a worker thread, e.g. a stalled hub download, before its exit handlers run)."""
        try:
            super().block_thread()
        finally:
            self._stopped()

    def _stopped(self) -> None:
        _RUNNING.discard(self)
        if not _RUNNING:
            files.remove_render_dir()

    async def process_api(self, block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Gradio's processing of one event; a refused request is logged as one line, not a traceback
        (:func:`app.errors.quiet_refusal`)."""
        try:
            return await super().process_api(block_fn, inputs, *args, **kwargs)
        except Exception as exc:
            reported = quiet_refusal(exc, str(getattr(block_fn, "api_name", None) or block_fn))
            if reported is exc:
                raise
            raise reported from None

    def validate_inputs(self, block_fn: Any, inputs: list[Any]) -> None:
        """Fill the omitted trailing inputs of :data:`OPTIONAL_TRAILING_INPUTS` with their components' values
        (in place: Gradio reads ``inputs`` after this check), then let Gradio count them."""
        optional = OPTIONAL_TRAILING_INPUTS.get(block_fn.api_name or "", 0)
        missing = block_fn.inputs[len(inputs) :]
        if 0 < len(missing) <= optional:
            inputs.extend(component.value for component in missing)
        try:
            super().validate_inputs(block_fn, inputs)
        except ValueError as exc:  # Gradio's count check: a refusal, said briefly (its text repeats every input)
            expected = len(block_fn.inputs)
            raise gr.Error(f"This event takes {expected} input values; the request sent {len(inputs)}.") from exc


_RUNNING: set[ExplainerBlocks] = set()
"""The apps of this process that serve now: the render folder is removed when the last one closes."""


def _stop_on_sigterm() -> None:
    """Let SIGTERM (how a container or a supervisor stops the server) end ``python app.py`` as Ctrl-C does, so the
    exit handlers run (:func:`app.files.remove_render_dir`); only where nothing else handles SIGTERM already."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
