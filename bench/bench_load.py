"""Load test on loopback: N concurrent gradio_client sessions, each uploading its own photo and moving sliders.

Run: ``python -m bench.bench_load [--sessions 16] [--moves 5]``. Starts the app in this process (UI events
exposed to the client), then every session uploads a photo of its own size (so a mixed-up response is
detectable), and moves the MaS slider ``moves`` times. Bounded in count and time; loopback only. Prints
errors, mix-ups, and p50 / p95 latency of uploads and slider updates.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client, handle_file
from PIL import Image

from app.ui import build_demo
from bench.bench_app import CAT, percentiles

SLIDER_ARGS = (0.35, 90.0, False, True, True, "")  # theta_pas, p, TAP, NWC, PaS, GT box


def session(url: str, photo: Path, size: tuple[int, int], moves: int) -> tuple[list[float], list[float], int]:
    """One user: upload, then slider moves. Returns (upload times, slider times, mixed-up responses)."""
    client = Client(url, verbose=False, download_files=False)
    start = time.perf_counter()
    picked = client.predict(handle_file(str(photo)), "tf_efficientnet_lite0", api_name="/on_image")[0]["value"]
    uploads, sliders, mixups = [time.perf_counter() - start], [], 0
    for i in range(moves):
        start = time.perf_counter()
        result = client.predict(picked, 0.1 + 0.15 * i, *SLIDER_ARGS, api_name="/update_theta_mas")
        sliders.append(time.perf_counter() - start)
        mixups += result[5]["image_size"] != {"height": size[1], "width": size[0]}
    return uploads, sliders, mixups


def main() -> None:
    """Run the load test and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--moves", type=int, default=5)
    args = parser.parse_args()
    demo = build_demo(expose_ui_events=True)
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    uploads: list[float] = []
    sliders: list[float] = []
    errors, mixups = [], 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            jobs = []
            for i in range(args.sessions):
                size = (300 + 7 * i, 200 + 3 * i)
                path = Path(tmp) / f"user{i}.png"
                Image.open(CAT).convert("RGB").resize(size).save(path)
                jobs.append((path, size))
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(max_workers=args.sessions) as pool:
                futures = [pool.submit(session, demo.local_url, p, s, args.moves) for p, s in jobs]
                for future in concurrent.futures.as_completed(futures, timeout=600):
                    try:
                        up, sl, mix = future.result()
                        uploads += up
                        sliders += sl
                        mixups += mix
                    except Exception as exc:  # report, keep counting the others
                        errors.append(f"{type(exc).__name__}: {exc}")
            wall = time.perf_counter() - started
    finally:
        demo.close()
    print(f"{args.sessions} concurrent sessions x ({args.moves} slider moves + 1 upload) in {wall:.1f} s")
    print(f"errors: {len(errors)}  mixed-up responses: {mixups}")
    for name, samples in (("upload + analysis", uploads), ("slider update", sliders)):
        p50, p95 = percentiles(samples)
        print(f"{name:<18} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (n = {len(samples)})")
    for line in errors[:5]:
        print("  ", line)


if __name__ == "__main__":
    main()
