"""Slider latency in a real browser: from typing a threshold to the moved box on screen.

Run: ``python -m bench.bench_browser [--repeats 30] [--baseline REV] [--quick]`` (needs Debian's ``chromium``;
``--quick``: 5 updates, about 25 s). Serves
the app of this tree in a subprocess, opens it in headless Chromium through Playwright, uploads the cat
example, then sets the MaS threshold ``repeats`` times (fill + Enter) and waits until the blue box (SVG) has
moved over a loaded picture. Prints p50 / p95 in ms (goal: p50 <= 150 ms) of two clocks:

* Playwright's: from the ``fill`` call to the test seeing the moved box (includes its own round trips
  to the browser: the upper bound),
* the page's own: from the ``input`` event to the first animation frame after the box moved in the DOM
  (what a user waits for), split at the update request's start and answer (resource timing),

and the bytes the server sends back per update (decoded response bodies of the update's requests and of the
pictures they make the page fetch, counted by the page's resource timing).

``--baseline REV`` checks ``REV`` out into a temporary git worktree, serves it too (same Python, same
browser), and measures both apps **interleaved** (one update on each, the first of the pair alternating),
so both see the same machine load; it prints both apps' figures and the ratio of their p50s (this tree's
over the baseline's). Issue #14 asks for a p50 within 1.2x of ``beb3d9f`` (the code when it was filed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from playwright.sync_api import Browser, Page, sync_playwright

from bench.bench_app import percentiles

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "assets" / "examples" / "cat.jpg"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
THETA_LABEL = "number input for θ for MaS: threshold = θ · max"  # the same label since beb3d9f
UPDATED = """([old]) => { const box = document.querySelector('#plain-panel rect.box');
  const img = document.querySelector('#plain-panel img');
  return box && box.getAttribute('data-box') !== old && img.complete && img.naturalWidth > 0; }"""
CAPTION = "([old]) => document.querySelector('#caption').innerText !== old"
# in the page: time of the last `input` event, and of the first frame after the blue box's data-box changed
# and the bytes of every response body since that event (resource timing: counted in the page, so no
# message per network chunk reaches the measuring process during an update)
PAGE_CLOCK = """window.__bench = {bytes: 0};
performance.setResourceTimingBufferSize(1000000);
new PerformanceObserver((list) => { for (const entry of list.getEntries()) { const b = window.__bench;
  b.bytes += entry.decodedBodySize || 0;
  if (b.sent === undefined && b.input !== undefined && entry.name.includes('/run/predict')) {
    b.sent = entry.startTime; b.answered = entry.responseEnd; } } }).observe({type: 'resource'});
document.addEventListener('input', () => { window.__bench = {input: performance.now(), bytes: 0}; }, true);
new MutationObserver(() => { const box = document.querySelector('#plain-panel rect.box');
  const value = box && box.getAttribute('data-box');
  if (value !== window.__lastBox) { window.__lastBox = value; const b = window.__bench;
    requestAnimationFrame(() => { if (b.input !== undefined && b.painted === undefined) {
      b.painted = performance.now(); } }); }
}).observe(document, {subtree: true, childList: true, attributes: true});"""
# a child Python that serves one tree's app on a given port and prints its URL
SERVE = """import sys, threading
from app.ui import build_demo
demo = build_demo()
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), prevent_thread_lock=True, quiet=True)
print("URL", demo.local_url, flush=True)
try:
    threading.Event().wait()
except KeyboardInterrupt:  # the app turns SIGTERM into KeyboardInterrupt (app/hosting.py): the end we asked for
    pass
"""


@dataclass
class App:
    """One served app, its page, and its samples (seconds; bytes)."""

    name: str
    page: Page
    captions: list[float] = field(default_factory=list)
    boxes: list[float] = field(default_factory=list)
    in_page: list[float] = field(default_factory=list)
    phases: list[tuple[float, float, float]] = field(default_factory=list)  # input->request->answer->drawn
    sent: list[int] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve the app of the tree at ``root`` in a child process; yields its URL and stops it after."""
    env = {**os.environ, "PYTHONPATH": str(root), "GRADIO_ANALYTICS_ENABLED": "False"}
    child = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(_free_port())], cwd=root, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        url = next((line.split()[1] for line in child.stdout if line.startswith("URL ")), None)
        if url is None:
            raise RuntimeError(f"the app in {root} did not start (exit code {child.wait()})")
        yield url
    finally:
        child.terminate()
        child.wait(timeout=30)


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """``rev`` checked out (detached) into a temporary git worktree, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
    tree = folder / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True, capture_output=True
    )
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def open_app(browser: Browser, name: str, url: str) -> App:
    """A page of the app at ``url`` with the cat uploaded and every view drawn."""
    context = browser.new_context(viewport={"width": 1500, "height": 1150})
    page = context.new_page()
    app = App(name, page)
    page.add_init_script(PAGE_CLOCK)
    page.goto(url)
    page.locator("input[type=file]").first.set_input_files(str(CAT))
    page.wait_for_function("document.querySelector('#histogram line') !== null", timeout=60_000)
    page.wait_for_timeout(1500)  # let the chained views (weights, P1) finish
    return app


def measure(app: App, theta: float) -> None:
    """Set θ for MaS to ``theta`` and record how long until the caption and the box moved, and the bytes."""
    page = app.page
    page.bring_to_front()
    number = page.get_by_label(THETA_LABEL)
    old = page.locator("#plain-panel rect.box").first.get_attribute("data-box")
    old_caption = page.locator("#caption").first.inner_text()
    start = time.perf_counter()
    number.fill(f"{theta:.2f}")
    number.press("Enter")
    page.wait_for_function(CAPTION, arg=[old_caption], polling="raf")
    app.captions.append(time.perf_counter() - start)
    page.wait_for_function(UPDATED, arg=[old], polling="raf")
    app.boxes.append(time.perf_counter() - start)
    page.wait_for_function("window.__bench.painted !== undefined", polling="raf")
    clock = page.evaluate("window.__bench")
    app.in_page.append((clock["painted"] - clock["input"]) / 1e3)
    page.wait_for_timeout(300)  # the chained views (other tabs) answer too: count their bytes, then go on
    clock = page.evaluate("window.__bench")
    app.sent.append(int(clock["bytes"]))
    if "sent" in clock:  # the update's request (unqueued: /run/predict), as the page's resource timing saw it
        sent, answered = clock["sent"], clock["answered"]
        app.phases.append((sent - clock["input"], answered - sent, clock["painted"] - answered))


def thetas(count: int) -> list[float]:
    """``count`` thresholds for the updates: low and high alternate, so the box surely moves, and no value comes
    twice, so no update is answered from a cache of an earlier one (as a real drag would not be): at most 31."""
    if count > 31:
        raise ValueError(f"at most 31 distinct low/high thresholds (30 repeats), not {count}")
    return [round(0.15 + 0.01 * (i // 2), 2) if i % 2 == 0 else round(0.6 - 0.01 * (i // 2), 2) for i in range(count)]


def report(app: App) -> float:
    """Print one app's figures (the first update of each, warming the browser's decoder, left out); its box p50."""
    c50, c95 = percentiles(app.captions[1:])
    p50, p95 = percentiles(app.boxes[1:])
    i50, i95 = percentiles(app.in_page[1:])
    print(f"[{app.name}]")
    print(f"  Playwright clock: slider -> updated caption: p50 {c50:.1f} ms, p95 {c95:.1f} ms")
    print(f"  Playwright clock: slider -> moved box:       p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print(f"  page clock:       input -> moved box drawn:  p50 {i50:.1f} ms, p95 {i95:.1f} ms")
    print(f"  bytes received per update (median): {int(np.median(app.sent[1:]))}")
    if len(app.phases) > 1:
        wait, answer, draw = np.median(np.array(app.phases[1:]), axis=0)
        print(f"  page clock, medians: input -> request sent {wait:.1f} ms, request -> answer {answer:.1f} ms, "
              f"answer -> box drawn {draw:.1f} ms")  # fmt: skip
    return p50


def main() -> None:
    """Run the benchmark (on this tree, and on ``--baseline`` interleaved) and print p50 / p95."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="at most 30 (each threshold is set once); default 30")
    parser.add_argument("--baseline", metavar="REV", help="also measure this git revision, interleaved")
    parser.add_argument("--quick", action="store_true", help="5 updates (unless --repeats): about 25 s")
    args = parser.parse_args()
    args.repeats = args.repeats or (5 if args.quick else 30)
    load = os.getloadavg()
    with ExitStack() as stack, sync_playwright() as p:
        trees = {"this tree": ROOT}
        if args.baseline:
            trees[f"baseline {args.baseline}"] = stack.enter_context(checkout(args.baseline))
        urls = {name: stack.enter_context(serve(tree)) for name, tree in trees.items()}
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        apps = [open_app(browser, name, url) for name, url in urls.items()]
        for i, theta in enumerate(thetas(args.repeats + 1)):
            for app in apps if i % 2 == 0 else apps[::-1]:  # who goes first alternates too
                measure(app, theta)
        browser.close()
    print(f"over {args.repeats} updates each (goal: p50 <= 150 ms); load average before {load[0]:.2f} "
          f"(1 min), after {os.getloadavg()[0]:.2f}, on {os.cpu_count()} CPUs")  # fmt: skip
    p50s = [report(app) for app in apps]
    if args.baseline:
        ratio = p50s[0] / p50s[1]
        verdict = "within" if ratio <= 1.2 else "OVER"
        print(f"box p50 ratio, this tree / baseline: {ratio:.2f} ({verdict} the 1.2x of issue #14)")


if __name__ == "__main__":
    main()
