"""Load test on loopback: slider latency idle and under 16 concurrent sessions, and fresh-analysis latency.

Run: ``python -m bench.bench_load [--sessions 16] [--moves 5] [--rounds 2]`` for the app as configured, or
``python -m bench.bench_load --sweep`` to run the same test in a fresh process for each analysis-queue
concurrency x torch intra-op thread count (``CAM_ANALYSIS_CONCURRENCY``, ``CAM_TORCH_THREADS``) and print
one table, measured in that one run.

Each run starts the app in its process (UI events exposed to the client) and prints:

* **idle slider p50**: one session, 20 threshold-slider moves, nothing else running;
* **slider p50 / p95 under load**: ``sessions`` sessions at once, each ``rounds`` times uploading a photo
  of its own size (so a mixed-up response is detectable) and moving the slider ``moves`` times;
* **fresh analysis p50 / p95**: those uploads (decode + forward pass + class list), under the same load;
* the load / idle ratio (goal <= 3), errors and mixed-up responses.

Bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SLIDER_ARGS = (0.35, 90.0, False, True, True, "")  # theta_pas, p, TAP, NWC, PaS, GT box


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def session(url: str, photos: list[tuple[Path, tuple[int, int]]], moves: int) -> tuple[list[float], list[float], int]:
    """One user: for each photo, upload it, then move the slider. Returns (uploads, sliders, mix-ups) in s."""
    from gradio_client import handle_file

    client = _client(url)
    uploads, sliders, mixups = [], [], 0
    for photo, size in photos:
        start = time.perf_counter()
        picked = client.predict(handle_file(str(photo)), "tf_efficientnet_lite0", api_name="/on_image")[0]["value"]
        uploads.append(time.perf_counter() - start)
        for i in range(moves):
            start = time.perf_counter()
            result = client.predict(picked, 0.1 + 0.15 * (i % 5), *SLIDER_ARGS, api_name="/update_theta_mas")
            sliders.append(time.perf_counter() - start)
            mixups += result[5]["image_size"] != {"height": size[1], "width": size[0]}
    return uploads, sliders, mixups


def _photos(folder: Path, sessions: int, rounds: int) -> list[list[tuple[Path, tuple[int, int]]]]:
    from PIL import Image

    from bench.bench_app import CAT

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
    import torch

    from app.ui import ANALYSIS_CONCURRENCY, build_demo
    from bench.bench_app import percentiles

    demo = build_demo(expose_ui_events=True)
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    errors: list[str] = []
    uploads: list[float] = []
    sliders: list[float] = []
    mixups = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            jobs = _photos(Path(tmp), sessions, rounds)
            _, idle, _ = session(demo.local_url, jobs[0][:1], 20)
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(max_workers=sessions) as pool:
                futures = [pool.submit(session, demo.local_url, photos, moves) for photos in jobs]
                for future in concurrent.futures.as_completed(futures, timeout=900):
                    try:
                        up, sl, mix = future.result()
                        uploads, sliders, mixups = uploads + up, sliders + sl, mixups + mix
                    except Exception as exc:  # report, keep counting the others
                        errors.append(f"{type(exc).__name__}: {exc}")
            wall = time.perf_counter() - started
    finally:
        demo.close()
    idle_p50 = percentiles(idle)[0]
    (load_p50, load_p95), (fresh_p50, fresh_p95) = percentiles(sliders), percentiles(uploads)
    threads = torch.get_num_threads()
    print(f"analysis concurrency {ANALYSIS_CONCURRENCY}, torch threads {threads}, {os.cpu_count()} cores")
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
    """Each concurrency x threads setting in a fresh process (torch's thread pool is fixed per process)."""
    rows = []
    for concurrency in (1, 2, 4):
        for threads in (1, 2):
            env = {**os.environ, "CAM_ANALYSIS_CONCURRENCY": str(concurrency), "CAM_TORCH_THREADS": str(threads)}
            command = [sys.executable, "-m", "bench.bench_load", "--sessions", str(args.sessions),
                       "--moves", str(args.moves), "--rounds", str(args.rounds)]  # fmt: skip
            out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200, check=True).stdout
            figures = dict(line.rsplit(" = ", 1) for line in out.splitlines() if line.startswith("FIGURE "))
            rows.append((concurrency, threads, {k.split()[1]: float(v) for k, v in figures.items()}))
            print(out, flush=True)
    print("concurrency threads | idle p50 | slider p50 (p95) under load | load/idle | fresh analysis p50 (p95)"
          " | errors")  # fmt: skip
    for concurrency, threads, f in rows:
        print(f"{concurrency:11d} {threads:7d} | {f['idle']:6.0f} ms | {f['load_p50']:6.0f} ({f['load_p95']:5.0f}) ms"
              f"             | {f['load_p50'] / f['idle']:8.1f}x | {f['fresh_p50']:6.0f} ({f['fresh_p95']:5.0f}) ms"
              f"             | {f['errors']:.0f}")  # fmt: skip


def main() -> None:
    """Run the load test (or the sweep) and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--moves", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="every concurrency x threads setting, one table")
    args = parser.parse_args()
    if args.sweep:
        sweep(args)
        return
    for key, value in run(args.sessions, args.moves, args.rounds).items():
        print(f"FIGURE {key} = {value}")


if __name__ == "__main__":
    main()
