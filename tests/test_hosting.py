"""Issue #22 items 5 and 7 over raw HTTP: a shared link shows its values as text, every response carries the
security headers, ``/monitoring`` is off, a refused request is one log line, the render folder goes with the server.

The browser side of item 5 (no request to a foreign host, the page working under its Content-Security-Policy) is in
``tests/test_browser_hosting.py``; the server process's own log and render folder in ``tests/test_hosting_server.py``.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from typing import Any

import gradio as gr
import httpx
import pytest

import cam_core
from app import errors, hosting
from app.explanation import start_session
from app.inputs import NOT_A_FILE
from app.link import deeplink
from bench.gradio_raw import RawClient
from bench.hostile_probes import FORBIDDEN_TAGS, LINK_PAYLOADS, unsafe_markdown
from tests.helpers import ROOT

CAT = ROOT / "assets" / "examples" / "cat.jpg"
PAYLOADS = [*LINK_PAYLOADS.values(), "x@evil.example", "![a](http://127.0.0.9:9/i)", "``<b>`` `<i>`", "&lt;img&gt;"]


# ------------------------------------------------------------------ item 5: text, never markup


@pytest.mark.parametrize("payload", PAYLOADS)
def test_inert_markdown_shows_any_text_as_itself(payload: str) -> None:
    from markdown_it import MarkdownIt

    line = errors.inert_markdown(f"`class` ignored: Unknown class {payload!r}")
    assert unsafe_markdown(line) is None, line
    rendered = MarkdownIt("commonmark", {"html": True}).render(line)
    assert not any(tag in rendered for tag in FORBIDDEN_TAGS)
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip()
    shown = f"class ignored: Unknown class {payload!r}"  # every character shown; backtick pairs may form code spans
    assert text.replace("`", "") == shown.replace("`", "") and "<code>class</code>" in rendered


def test_the_link_notice_of_a_hostile_class_is_text() -> None:
    """The class of a link is checked after its example is analysed: that notice repeats the value too."""
    session = start_session({"path": str(CAT)}, cam_core.DEFAULT_MODEL)
    for payload in LINK_PAYLOADS.values():
        notice = deeplink.after_photo(deeplink.Pending({"class": payload}), session)[-1]
        assert notice["visible"] is True and "Unknown class" in notice["value"]
        assert unsafe_markdown(notice["value"]) is None, notice["value"]


@pytest.mark.parametrize("key", ["tab", "theta_mas", "model", "tap", "zzz", "as key"])  # class: after the photo, above
def test_a_shared_link_never_injects_markup_over_raw_http(demo: Any, key: str) -> None:
    config = demo.get_config_file()
    load = next(i for i, d in enumerate(config["dependencies"]) if [t[1] for t in d["targets"]] == ["load"])
    field = deeplink.Restored._fields.index("link_notice")
    with RawClient(demo.local_url) as client:
        for payload in LINK_PAYLOADS.values():
            query = {payload: "1"} if key == "as key" else {"example": "cat.jpg", key: payload}
            notice = client.direct(load, [], query=urllib.parse.urlencode(query))[field]["value"]
            assert notice.startswith("⚠️ **Link:**") and unsafe_markdown(notice) is None, notice


def test_an_instant_events_notice_is_text_too() -> None:
    from app.errors import with_notice

    def refuse() -> tuple[Any]:
        raise gr.Error("Unknown class '<img src=//127.0.0.9:9/x>'")

    (_, notice) = with_notice(refuse, 1)()
    assert notice.startswith("⚠️ ") and unsafe_markdown(notice) is None


def test_every_response_carries_the_security_headers(demo: Any) -> None:
    with httpx.Client(base_url=demo.local_url, timeout=60) as http:
        uploaded = http.post("/gradio_api/upload", files={"files": ("cat.jpg", CAT.read_bytes())})
        responses = {
            "page": http.get("/?example=cat.jpg"),
            "config": http.get("/config"),
            "upload": uploaded,
            "file": http.get(f"/gradio_api/file={uploaded.json()[0]}"),
            "404": http.get("/no/such/route"),
            "413": http.post("/gradio_api/queue/join", content=b"x" * (hosting.MAX_BODY_BYTES + 1)),
        }
    for name, response in responses.items():
        for header, value in hosting.SECURITY_HEADERS.items():
            assert response.headers.get(header) == value, (name, header)
    assert responses["413"].status_code == 413 and responses["file"].status_code == 200
    policy = dict(d.strip().split(" ", 1) for d in hosting.CONTENT_SECURITY_POLICY.split(";"))
    assert policy["img-src"] == "'self' data: blob:" and policy["form-action"] == "'self'"
    assert policy["base-uri"] == "'self'" and policy["object-src"] == "'none'"
    assert "https://huggingface.co" in policy["frame-ancestors"].split()  # the Space's page may embed it
    assert responses["page"].headers["x-content-type-options"] == "nosniff"


# ------------------------------------------------------------------ item 7: monitoring, one log line, render folder


def test_monitoring_is_off(demo: Any) -> None:
    with httpx.Client(base_url=demo.local_url, timeout=30) as http:
        for path in ("/monitoring", "/monitoring/summary", "/monitoring/some-key", "/gradio_api/monitoring/summary"):
            response = http.get(path)
            assert response.status_code in (403, 404), path
            assert "functions" not in response.text and "Monitoring URL" not in response.text


def test_quiet_refusal_logs_one_line_and_keeps_bugs_loud(caplog: pytest.LogCaptureFixture) -> None:
    from gradio.exceptions import InvalidPathError

    error = gr.Error("`model` must be one of [...]")
    assert errors.quiet_refusal(error, "on_image") is error and error.print_exception is False
    replaced = errors.quiet_refusal(InvalidPathError("Cannot move /etc/passwd\nto the cache"), "explain")
    assert isinstance(replaced, gr.Error) and replaced.message == NOT_A_FILE and not replaced.print_exception
    bug = KeyError("x")
    assert errors.quiet_refusal(bug, "explain") is bug  # not a refusal: Gradio prints its traceback
    assert [r.getMessage().count("\n") for r in caplog.records] == [0, 0]
    assert "refused explain: InvalidPathError: Cannot move /etc/passwd to the cache" in caplog.text
