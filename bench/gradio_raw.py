"""Gradio's own wire protocol over raw HTTP, and the app as a server process measured from ``/proc``.

Shared by the benches that treat the app as a black box (``bench.bench_hostile``, ``bench.bench_load``): what the
page itself sends, with nothing of gradio_client in between.

* :class:`RawClient`: ``/gradio_api/upload``, ``queue/join`` + the session's event stream (``queue/data``, server-sent
  events), unqueued ``run/predict`` and ``cancel``; bound to a source address of its own in 127.0.0.0/8, so a
  server's per-address rules see an attacker and a victim apart;
* :class:`ServerProcess`: ``python app.py`` (or any script) on a free loopback port, its log in a file, and its
  resident memory (its children's included), peak memory and CPU time read from ``/proc``.

Every call is bounded in time (``timeout``); nothing here loops without a bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

API = "/gradio_api"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


class RefusedError(Exception):
    """The server refused or failed a request: an HTTP status other than 200, or an event that ended in an error."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def file_data(path: str, name: str) -> dict[str, Any]:
    """A ``gradio.FileData`` payload for a file the server received by upload, as the page sends it."""
    return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": name}


class RawClient:
    """One browser tab's traffic from one source address: a session hash, events by ``fn_index``."""

    def __init__(self, url: str, source: str = "127.0.0.1", timeout: float = 120.0) -> None:
        transport = httpx.HTTPTransport(local_address=source)
        self.http = httpx.Client(base_url=url, timeout=timeout, transport=transport)
        self.timeout = timeout
        self.session = new_session()

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def upload(self, paths: list[Path]) -> list[dict[str, Any]]:
        """``POST /gradio_api/upload`` of ``paths`` (one request); their ``FileData`` payloads, in order."""
        with contextlib.ExitStack() as stack:
            files = [("files", (p.name, stack.enter_context(p.open("rb")))) for p in paths]
            response = self.http.post(f"{API}/upload", files=files)
        if response.status_code != 200:
            raise RefusedError(f"upload: HTTP {response.status_code} {response.text[:120]}", response.status_code)
        return [file_data(path, p.name) for path, p in zip(response.json(), paths, strict=True)]

    def join(self, fn_index: int, data: list[Any], event_data: Any = None, session: str | None = None) -> str:
        """``queue/join``: the event's id (``RefusedError`` on any status but 200, e.g. 503 when the queue is full)."""
        body = {"data": data, "fn_index": fn_index, "session_hash": session or self.session, "event_data": event_data}
        response = self.http.post(f"{API}/queue/join", json=body)
        if response.status_code != 200:
            raise RefusedError(f"join: HTTP {response.status_code} {response.text[:160]}", response.status_code)
        return str(response.json()["event_id"])

    def result(self, event_id: str, session: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Read the session's event stream until ``event_id`` completes: its ``output`` (``RefusedError``: error)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        params = {"session_hash": session or self.session}
        with self.http.stream("GET", f"{API}/queue/data", params=params, timeout=timeout or self.timeout) as stream:
            for line in stream.iter_lines():
                if time.monotonic() > deadline:
                    raise RefusedError("timeout")
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "unexpected_error":
                    raise RefusedError(f"unexpected_error: {str(message.get('message'))[:160]}")
                if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                    output = message.get("output") or {}
                    if not message.get("success", True) or "data" not in output:
                        raise RefusedError(f"error: {str(output.get('error'))[:160]}")
                    return dict(output)
        raise RefusedError("the event stream ended without the result")

    def queued(self, fn_index: int, data: list[Any], event_data: Any = None, timeout: float | None = None) -> list[Any]:
        """One queued event, as the page runs it (join, then its stream): the output values."""
        event_id = self.join(fn_index, data, event_data)
        return list(self.result(event_id, timeout=timeout)["data"])

    def direct(self, fn_index: int, data: list[Any], event_data: Any = None, query: str = "") -> list[Any]:
        """One unqueued event (``run/predict``), as the page sends it; ``query`` is the page's URL query."""
        body = {"data": data, "fn_index": fn_index, "session_hash": self.session, "event_data": event_data}
        response = self.http.post(f"{API}/run/predict{'?' + query if query else ''}", json=body)
        if response.status_code != 200:
            raise RefusedError(f"run/predict: HTTP {response.status_code} {response.text[:160]}", response.status_code)
        payload = response.json()
        if "data" not in payload:
            raise RefusedError(f"error: {str(payload.get('error'))[:160]}")
        return list(payload["data"])

    def cancel(self, fn_index: int, event_id: str, session: str) -> None:
        """Ask the server to drop a queued event (``/gradio_api/cancel``); errors are ignored."""
        body = {"fn_index": fn_index, "event_id": event_id, "session_hash": session}
        with contextlib.suppress(httpx.HTTPError):
            self.http.post(f"{API}/cancel", json=body)


def new_session() -> str:
    """A fresh session hash, as a new browser tab makes one."""
    return os.urandom(8).hex()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from ``/proc/*/task/*/children``."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in children.read_text().split()]
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, MB."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, IndexError):
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1])
    return total * PAGE_SIZE / 2**20


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live descendants."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / TICKS


def reset_peak(pid: int) -> bool:
    """Reset the kernel's peak-RSS mark of ``pid`` (``clear_refs`` 5); ``False`` where that is refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mb(pid: int) -> float:
    """The peak RSS of ``pid`` since the last :func:`reset_peak` (``VmHWM``), MB; 0 when unreadable."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class ServerProcess:
    """``python app.py`` (or ``python *argv``) in ``root`` on a free loopback port (``GRADIO_SERVER_PORT``), its log
    in ``log_path``."""

    def __init__(
        self,
        root: Path,
        log_path: Path,
        env: dict[str, str],
        argv: tuple[str, ...] = ("app.py",),
        port: int | None = None,
    ) -> None:
        self.root, self.log_path = root, log_path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SERVER_NAME": "127.0.0.1", **env}
        full_env["GRADIO_SERVER_PORT"] = str(self.port)
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, *argv], cwd=root, env=full_env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.pid = self.process.pid

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Wait until ``/config`` answers (at most ``timeout`` s); ``RuntimeError`` if the process ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/config", timeout=2, trust_env=False).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s")

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process.poll() is None

    def rss_mb(self) -> float:
        """Resident memory of the server and its descendants, MB."""
        return rss_mb(self.pid)

    def cpu_s(self) -> float:
        """CPU seconds used so far by the server and its live descendants."""
        return cpu_s(self.pid)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's log."""
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def log_size(self) -> int:
        """Bytes written to the log so far (a mark for :meth:`log_since`)."""
        self.log.flush()
        return self.log_path.stat().st_size

    def log_since(self, mark: int) -> str:
        """What the server logged after ``mark``."""
        with self.log_path.open("rb") as handle:
            handle.seek(mark)
            return handle.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send ``sig`` and wait up to ``timeout`` s (then kill); the exit status."""
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()
        return self.process.returncode
