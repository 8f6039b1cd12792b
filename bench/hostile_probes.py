"""The probes of ``bench.bench_hostile`` that are not about load: shared links, headers, monitoring, the log, the
render folder; and the slow hub it points the server's model downloads to.

* :func:`link_probes`: the page's load event with a hostile query (issue #22 item 5's payloads under several keys);
  each notice it returns is rendered as CommonMark (markdown-it) and must hold no ``<img>``, ``<a>``, ``<form>`` or
  ``<input>``; the browser-side check is ``tests/test_browser_hosting.py``;
* :func:`header_probes`: the security headers on the page, the config, an upload, a 404 and a refused body;
* :func:`monitoring_probes`: Gradio's ``/monitoring`` routes must not answer with data;
* :func:`refusal_log_probes`: log lines written per refused request (one is the goal; a traceback is 20+);
* :class:`SlowHub`: a loopback HTTP server that answers every request one byte per second (``HF_ENDPOINT`` of the
  server process): a hub model load that never finishes, as on a slow or stalled network.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import urllib.parse
from typing import Any

import httpx
from markdown_it import MarkdownIt

from bench.gradio_raw import API, RawClient, RefusedError, ServerProcess, file_data
from bench.hostile_inputs import Event

FOREIGN = "127.0.0.9:9"
"""The host the payloads point to (never contacted by the harness itself)."""
LINK_PAYLOADS = {
    "img": f"<img src=//{FOREIGN}/x>",
    "markdown link": f"Session expired: [log in again](http://{FOREIGN}/p)",
    "form": f'<form action="http://{FOREIGN}/p"><input type=password name=pw><button>Log in</button></form>',
    "autolink": f"see http://{FOREIGN}/q or www.example.com",
}
LINK_KEYS = ("class", "tab", "theta_mas", "zzz")
"""Query keys the payloads are sent under: known keys with a check, and an unknown one (its name is the payload)."""
FORBIDDEN_TAGS = ("<img", "<a ", "<form", "<input", "<iframe", "<script")
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy")
CSP_DIRECTIVES = ("img-src", "form-action", "base-uri", "frame-ancestors")


def link_probes(client: RawClient, load: Event | None) -> dict[str, Any]:
    """Run the page's load event with each payload under each key (and as a key); count the answers with a text
    whose Markdown would become a tag of :data:`FORBIDDEN_TAGS` or a GFM autolink (:func:`unsafe_markdown`)."""
    if load is None:
        return {"probes": 0, "unsafe": 0, "note": "no load event on the page"}
    probes, unsafe, examples = 0, 0, []
    for name, payload in LINK_PAYLOADS.items():
        queries = [urllib.parse.urlencode({"example": "cat.jpg", key: payload}) for key in LINK_KEYS]
        queries.append(urllib.parse.urlencode({payload: "1"}))
        for query in queries:
            probes += 1
            try:
                output = client.direct(load.fn_index, [], query=query)
            except RefusedError as exc:
                examples.append(f"{name}: refused ({exc.reason[:60]})")
                continue
            found = [bad for bad in (unsafe_markdown(_text_of(value)) for value in output) if bad]
            if found:
                unsafe += 1
                examples.append(f"{name} ({query[:40]}...): {found[0]}")
    return {"probes": probes, "unsafe": unsafe, "examples": examples[:4]}


_RENDERER = MarkdownIt("commonmark", {"html": True})
_CODE_SPAN = re.compile(r"`[^`]*`")
_AUTOLINK = re.compile(r"(?:https?|ftp)://|www\.|[\w.+-]+@[\w-]+\.\w")


def unsafe_markdown(text: str) -> str | None:
    """What ``text``, rendered as the page renders Markdown, would make of a payload: the first tag of
    :data:`FORBIDDEN_TAGS` CommonMark makes of it, or ``"autolink"`` where GFM would link a bare URL (outside code
    spans); ``None`` when it stays text."""
    rendered = _RENDERER.render(text)
    tag = next((t for t in FORBIDDEN_TAGS if t in rendered), None)
    if tag is not None:
        return f"{tag}...> in {rendered[:100]!r}"
    return "autolink" if _AUTOLINK.search(_CODE_SPAN.sub("", text)) else None


def _text_of(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("value")
    return value if isinstance(value, str) else ""


def header_probes(url: str) -> dict[str, Any]:
    """The security headers on several kinds of response (page, config, API, 404, refused body)."""
    missing: dict[str, list[str]] = {}
    csp = ""
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as http:
        responses = {
            "page": http.get("/"),
            "config": http.get("/config"),
            "404": http.get("/no/such/route"),
            "413": http.post(f"{API}/queue/join", content=b"x" * (2**20 + 2)),
        }
    for name, response in responses.items():
        gone = [h for h in SECURITY_HEADERS if h not in response.headers]
        if gone:
            missing[name] = gone
        if name == "page":
            csp = response.headers.get("content-security-policy", "")
    directives = [d for d in CSP_DIRECTIVES if d not in csp]
    embeds = "huggingface.co" in csp.split("frame-ancestors")[-1] if "frame-ancestors" in csp else False
    return {"missing": missing, "csp_missing_directives": directives, "hub_may_frame": embeds, "csp": csp}


def monitoring_probes(url: str) -> dict[str, Any]:
    """Gradio's monitoring routes: the status of each; ``exposed`` when one answers with data."""
    statuses, exposed = {}, []
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as http:
        for path in ("/monitoring", "/monitoring/summary", f"{API}/monitoring/summary"):
            response = http.get(path)
            statuses[path] = response.status_code
            if response.status_code == 200:
                exposed.append(path)
    return {"status": statuses, "exposed": exposed}


def refusal_log_probes(
    server: ServerProcess, client: RawClient, photo_event: Event | None, photo: dict[str, Any] | None
) -> dict[str, Any]:
    """Send a few requests the app must refuse; the log lines each adds (the most of them) and any traceback.

    ``photo``: a file the server received by upload (the menu value is then the only thing wrong)."""
    requests: list[tuple[str, Any]] = [
        ("unknown fn_index", lambda: client.join(10**6, [])),
        ("server path", lambda: _photo(client, photo_event, file_data("/etc/passwd", "passwd"))),
        ("not a file", lambda: _photo(client, photo_event, "/etc/passwd")),
        ("bad menu value", lambda: _photo(client, photo_event, photo, model="../../evil")),
    ]
    lines, tracebacks = {}, 0
    for name, send in requests:
        mark = server.log_size()
        with contextlib.suppress(RefusedError, httpx.HTTPError):
            send()
        time.sleep(0.3)  # the log is written just after the answer
        text = server.log_since(mark)
        lines[name] = len([line for line in text.splitlines() if line.strip()])
        tracebacks += text.count("Traceback (most recent call last)")
    return {"lines": lines, "max_lines": max(lines.values(), default=0), "tracebacks": tracebacks}


def _photo(client: RawClient, event: Event | None, photo: Any, model: str | None = None) -> None:
    if event is None:
        return
    values = [
        photo
        if c.type == "image"
        else (model or c.props.get("value"))
        if c.type == "dropdown" and "model" in c.label.lower()
        else c.props.get("value")
        for c in event.inputs
    ]
    client.queued(event.fn_index, values, timeout=60)


class SlowHub:
    """A loopback HTTP server that sends every answer one byte per ``interval`` s, for at most ``limit`` s."""

    def __init__(self, interval: float = 1.0, limit: float = 600.0) -> None:
        self.interval, self.limit = interval, limit
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.requests: list[str] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.socket.settimeout(0.5)
        while not self.stopped.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            with contextlib.suppress(OSError):
                self.requests.append(connection.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace"))
                answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"." * 100_000
                deadline = time.monotonic() + self.limit
                for byte in answer:
                    if self.stopped.is_set() or time.monotonic() > deadline:
                        break
                    connection.sendall(bytes([byte]))
                    self.stopped.wait(self.interval)

    def close(self) -> None:
        """Stop answering (every trickle ends within ``interval`` s)."""
        self.stopped.set()
        self.socket.close()


def dumps(report: dict[str, Any]) -> str:
    """The report as JSON (numbers rounded where they are floats)."""
    return json.dumps(report, indent=2, default=str)
