"""Load test on loopback: slider latency idle and under 16 concurrent sessions, and fresh-analysis latency.

Run: ``python -m bench.bench_load [--sessions 16] [--moves 5] [--rounds 2] [--quick]`` for the app as configured
(``--quick``: 4 sessions x 1 round x 3 moves, about 20 s), or
``python -m bench.bench_load --sweep`` for each analysis-queue concurrency x torch intra-op thread count
(``CAM_ANALYSIS_CONCURRENCY``, ``CAM_TORCH_THREADS``), one table, measured in that one run.

The app runs in its own process, as on a server; the sessions speak the page's own protocol over raw HTTP
(upload, ``queue/join`` + the event stream for a new photo, one ``run/predict`` request per slider move),
so the clients cost the server nothing. Prints:

* **idle slider p50**: one session, 20 threshold-slider moves, nothing else running;
* **slider p50 / p95 under load**: ``sessions`` sessions at once, each ``rounds`` times uploading a photo
  of its own size (so a mixed-up response is detectable) and moving the slider ``moves`` times;
* **fresh analysis p50 / p95**: those uploads (upload + decode + forward pass + class list), under load;
* the load / idle ratio (goal <= 3), errors and mixed-up responses.

Bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from app.inputs import DEFAULT_RESOLUTION
from bench.bench_app import CAT, percentiles
from bench.gradio_raw import RawClient, ServerProcess

ROOT = Path(__file__).resolve().parent.parent
VIEW_BOX = re.compile(r'viewBox="0 0 (\d+) (\d+)"')
SERVER = """
import os
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
from app.ui import build_demo
demo = build_demo(expose_ui_events=True)
demo.launch(server_name="127.0.0.1", quiet=True)  # on GRADIO_SERVER_PORT
"""


class Page:
    """One browser tab's traffic: its own session hash, events by ``fn_index`` as the page sends them."""

    def __init__(self, url: str, indices: dict[str, int]) -> None:
        self.client = RawClient(url, timeout=300)
        self.indices = indices

    def new_photo(self, path: Path) -> str:
        """Upload, then the queued ``on_image`` event; returns the picked class value."""
        (payload,) = self.client.upload([path])
        data = [payload, "tf_efficientnet_lite0", DEFAULT_RESOLUTION.value]
        return str(self.client.queued(self.indices["on_image"], data)[1]["value"])

    def slide(self, picked: str, theta: float) -> tuple[int, int]:
        """One unqueued slider event (``run/predict``), as the page sends it; returns the (width, height) the plain
        panel is drawn for (its overlay's viewBox: the photo's own pixels)."""
        data = [None, picked, theta, 0.35, 90.0, False, True, True, "cam", "", None]  # session state is server-side
        panel = str(self.client.direct(self.indices["update_theta_mas"], data)[0])
        found = VIEW_BOX.search(panel)
        return (int(found[1]), int(found[2])) if found else (0, 0)


def session(url: str, indices: dict[str, int], photos: list[tuple[Path, tuple[int, int]]], moves: int):
    """One user: for each photo, upload it, then move the slider. Returns (uploads, sliders, mix-ups) in s."""
    page = Page(url, indices)
    uploads, sliders, mixups = [], [], 0
    for photo, size in photos:
        start = time.perf_counter()
        picked = page.new_photo(photo)
        uploads.append(time.perf_counter() - start)
        for i in range(moves):
            start = time.perf_counter()
            drawn = page.slide(picked, 0.1 + 0.15 * (i % 5))
            sliders.append(time.perf_counter() - start)
            mixups += drawn != size
    return uploads, sliders, mixups


def _photos(folder: Path, sessions: int, rounds: int) -> list[list[tuple[Path, tuple[int, int]]]]:
    cat = Image.open(CAT).convert("RGB")
    jobs = []
    for i in range(sessions):
        own = []
        for r in range(rounds):
            size = (300 + 7 * i + 3 * r, 200 + 3 * i + r)
            path = folder / f"user{i}_{r}.png"
            cat.resize(size).save(path)
            own.append((path, size))
        jobs.append(own)
    return jobs


def run(sessions: int, moves: int, rounds: int) -> dict[str, float]:
    """One load test of the app as configured by the environment; prints and returns the figures (ms)."""
    log = tempfile.NamedTemporaryFile(prefix="bench-load-", suffix=".log", delete=False)  # noqa: SIM115
    server = ServerProcess(ROOT, Path(log.name), {}, argv=("-c", SERVER))
    server.wait_ready(120)
    url = server.url
    config = httpx.get(f"{url}/config").json()
    indices = {dep["api_name"]: i for i, dep in enumerate(config["dependencies"]) if dep.get("api_name")}
    errors: list[str] = []
    uploads: list[float] = []
    sliders: list[float] = []
    mixups = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            jobs = _photos(Path(tmp), sessions + 1, rounds)
            session(url, indices, jobs.pop()[:1], 3)  # warm-up
            _, idle, _ = session(url, indices, jobs[0][:1], 20)
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(max_workers=sessions) as pool:
                futures = [pool.submit(session, url, indices, photos, moves) for photos in jobs]
                for future in concurrent.futures.as_completed(futures, timeout=900):
                    try:
                        up, sl, mix = future.result()
                        uploads, sliders, mixups = uploads + up, sliders + sl, mixups + mix
                    except Exception as exc:  # report, keep counting the others
                        errors.append(f"{type(exc).__name__}: {exc}")
            wall = time.perf_counter() - started
    finally:
        server.stop()
        os.unlink(log.name)
    idle_p50 = percentiles(idle)[0]
    (load_p50, load_p95), (fresh_p50, fresh_p95) = percentiles(sliders), percentiles(uploads)
    concurrency, threads = (
        os.environ.get("CAM_ANALYSIS_CONCURRENCY", "app default"),
        os.environ.get("CAM_TORCH_THREADS", "app default"),
    )
    print(f"analysis concurrency {concurrency}, torch threads {threads}, {os.cpu_count()} cores")
    print(f"{sessions} sessions x {rounds} x (upload + {moves} slider moves) in {wall:.1f} s")
    print(f"errors: {len(errors)}  mixed-up responses: {mixups}")
    print(f"idle slider p50          {idle_p50:7.1f} ms   (n = {len(idle)})")
    print(f"slider under load        p50 {load_p50:7.1f} ms   p95 {load_p95:7.1f} ms   (n = {len(sliders)})")
    print(f"fresh analysis (load)    p50 {fresh_p50:7.1f} ms   p95 {fresh_p95:7.1f} ms   (n = {len(uploads)})")
    print(f"slider load / idle       {load_p50 / idle_p50:.1f}x   (goal <= 3x)")
    for line in errors[:5]:
        print("  ", line)
    return {"idle": idle_p50, "load_p50": load_p50, "load_p95": load_p95, "fresh_p50": fresh_p50,
            "fresh_p95": fresh_p95, "errors": len(errors), "mixups": mixups}  # fmt: skip


def sweep(args: argparse.Namespace) -> None:
    """Each concurrency x threads setting (torch's thread pool is fixed per server process)."""
    rows = []
    for concurrency in (1, 2, 4):
        for threads in (1, 2):
            os.environ.update(CAM_ANALYSIS_CONCURRENCY=str(concurrency), CAM_TORCH_THREADS=str(threads))
            rows.append((concurrency, threads, run(args.sessions, args.moves, args.rounds)))
            print(flush=True)
    print("concurrency threads | idle p50 | slider p50 (p95) under load | load/idle | fresh analysis p50 (p95)")
    for concurrency, threads, f in rows:
        slider = f"{f['load_p50']:6.0f} ({f['load_p95']:5.0f}) ms"
        fresh = f"{f['fresh_p50']:6.0f} ({f['fresh_p95']:5.0f}) ms"
        print(f"{concurrency:11d} {threads:7d} | {f['idle']:5.0f} ms | {slider:>27} | "
              f"{f['load_p50'] / f['idle']:8.1f}x | {fresh:>24}")  # fmt: skip


def main() -> None:
    """Run the load test (or the sweep) and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=None, help="default 16 (4 with --quick)")
    parser.add_argument("--moves", type=int, default=None, help="default 5 (3 with --quick)")
    parser.add_argument("--rounds", type=int, default=None, help="default 2 (1 with --quick)")
    parser.add_argument("--sweep", action="store_true", help="every concurrency x threads setting, one table")
    parser.add_argument("--quick", action="store_true", help="4 sessions, 1 round, 3 moves: about 20 s")
    args = parser.parse_args()
    for name, full, quick in (("sessions", 16, 4), ("moves", 5, 3), ("rounds", 2, 1)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.sweep:
        sweep(args)
    else:
        run(args.sessions, args.moves, args.rounds)


if __name__ == "__main__":
    main()
