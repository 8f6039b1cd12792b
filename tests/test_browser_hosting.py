"""Issue #22 item 5 in Debian's Chromium: a shared link's values stay text (no picture, link or form from the query,
no request to another host), and the page works under its Content-Security-Policy with no violation."""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.helpers import DESKTOP, EXAMPLES, csp_violations, shots, watch_csp

pytestmark = pytest.mark.browser
FOREIGN_IP = "127.0.0.9"  # another host, as far as the browser knows (a loopback address of its own)
FROM_QUERY = "#link-notice img, #link-notice a, #link-notice form, #link-notice input, #link-notice button"


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()

    def do_POST(self) -> None:
        self.do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def foreign() -> Iterator[tuple[str, list[str]]]:
    """A server on another loopback address that counts every request it gets: the 'attacker's host'."""
    handler = type("Handler", (_Counting,), {"hits": []})
    server = http.server.ThreadingHTTPServer((FOREIGN_IP, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{FOREIGN_IP}:{server.server_address[1]}", handler.hits
    finally:
        server.shutdown()
        server.server_close()


def _page(browser, url: str, host: str):
    page = browser.new_page(viewport=DESKTOP)
    page.set_default_timeout(60_000)
    seen = watch_csp(page)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url) if host in request.url else None)
    page.goto(url)
    return page, seen, requests


def test_a_shared_link_shows_its_values_as_text(browser, app_url: str, foreign: tuple[str, list[str]]) -> None:
    host, hits = foreign
    payloads = {
        "img": f"<img src=//{host}/img>",
        "link": f"Session expired: [log in again](http://{host}/p)",
        "form": f'<form action="http://{host}/f"><input type=password name=pw><button>Log in</button></form>',
    }
    # every payload in keys read at load (tab, theta_mas; and as a key), and in the class, read after the photo
    # (whose notice replaces the load's: so a link of its own)
    at_load = [("tab", "theta_mas"), ("theta_mas", "tab"), ("tab", "theta_mas")]
    names = list(payloads)
    links = [({"example": "cat.jpg", a: payloads[names[i]], b: payloads[names[i - 1]]}, (a, b), "tab=")
             for i, (a, b) in enumerate(at_load)]  # fmt: skip
    links[0][0][payloads["img"].replace("/img", "/key")] = "1"
    links += [({"example": "cat.jpg", "class": payload}, ("class",), "class ignored") for payload in payloads.values()]
    for query, keys, said in links:
        page, seen, requests = _page(browser, f"{app_url}?{urllib.parse.urlencode(query)}", host)
        page.wait_for_function(f"(document.querySelector('#link-notice')?.innerText || '').includes({said!r})")
        page.wait_for_timeout(1000)  # the photo's own steps, and anything the notice could load, have happened
        notice = page.locator("#link-notice").inner_text()
        assert page.locator(FROM_QUERY).count() == 0, page.locator("#link-notice").inner_html()
        for key in keys:
            shown = query[key] if key == "class" else query[key][:20]  # a notice shortens the value it quotes
            assert shown in notice, (key, notice)  # shown as the characters sent
        assert requests == [] and hits == [] and csp_violations(page, seen) == []
        page.close()


def test_the_page_works_under_its_content_security_policy(browser, app_url: str, foreign, tmp_path: Path) -> None:
    host, hits = foreign
    page, seen, _ = _page(browser, f"{app_url}?example=cat.jpg&class=281&tab=swipe&theta_mas=0.5", host)
    response = page.request.get(app_url)
    assert "img-src 'self' data: blob:" in response.headers["content-security-policy"]
    page.wait_for_function("document.querySelectorAll('#swipe img').length === 2")  # deep link: the swipe tab
    for tab in ("M+ / M−", "Why TAP (P1)", "CRF masks", "Evaluate", "JSON & export", "Segmentation"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(400)
    page.get_by_role("tab", name="Plain vs improved").click()
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "coins.jpg"))
    page.wait_for_function("document.querySelector('#status').innerText.includes('Petri dish')")  # the upload
    number = page.get_by_label("number input for θ for MaS: threshold = θ · max")
    number.fill("0.6")
    number.press("Enter")
    page.wait_for_function("document.querySelector('#caption').innerText.includes('0.60')")
    stack = page.locator("#plain-panel .cam-stack").first.bounding_box()
    assert stack is not None
    page.mouse.move(stack["x"] + 0.1 * stack["width"], stack["y"] + 0.1 * stack["height"])
    page.mouse.down()
    page.mouse.move(stack["x"] + 0.5 * stack["width"], stack["y"] + 0.5 * stack["height"], steps=4)
    page.mouse.up()
    page.wait_for_function("document.querySelectorAll('#plain-panel rect.box').length === 2")  # a drawn box
    colours = page.evaluate("""() => [...document.querySelectorAll('#plain-panel .cam-stack img, #plain-panel canvas')]
        .map(e => e.tagName === 'IMG' ? e.naturalWidth : e.width)""")
    assert colours and all(width > 0 for width in colours)  # the coloured map and the photo are drawn
    shot = shots(tmp_path) / "app_under_csp.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    assert csp_violations(page, seen) == []
    # the policy bites: a picture from another host is refused (and reported), never fetched
    page.evaluate(f"() => {{ const i = new Image(); i.src = 'http://{host}/probe'; document.body.append(i); }}")
    page.wait_for_function("window.__csp.length > 0")
    assert [v for v in csp_violations(page, seen) if "img-src" in v] and hits == []
