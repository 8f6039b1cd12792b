"""App latency through gradio_client on loopback: a no-op event, a slider update, a fresh analysis.

Run: ``python -m bench.bench_app [--repeats 30] [--quick]``. Starts the app in this process with the UI events
exposed to the client (``build_demo(expose_ui_events=True)``), then for the default model and for
resnet50 (random init: timing only, no download) times, p50 / p95 in ms:

* ``noop``: an event that does nothing (Gradio's own round trip through the queue),
* ``noop-direct``: the same without the queue (``queue=False``, one HTTP request), as the slider events run,
* ``slider``: a threshold-slider update (all threshold-dependent views re-rendered from the cache),
* ``analysis``: a new photo (decode + one forward pass + class list).

and prints the slider / no-op ratios per model, measured in this one run. ``--quick``: 5 repeats (about 20 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image

import cam_core
from app.inputs import DEFAULT_RESOLUTION
from app.state import register_model
from app.ui import build_demo

CAT = Path(__file__).resolve().parent.parent / "assets" / "examples" / "cat.jpg"


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds of samples in seconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e3, p95 * 1e3


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def fresh_photos(count: int, folder: Path) -> list[str]:
    """Distinct photos (the cat with one changed pixel each), so every analysis misses the cache."""
    base = np.asarray(Image.open(CAT).convert("RGB"))
    paths = []
    for i in range(count):
        image = base.copy()
        image[0, 0] = (i % 256, i // 256 % 256, 7)
        path = folder / f"photo_{i}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def check_views(answer: tuple[object, ...]) -> None:
    """Refuse to time an error: the slider's answer must draw the plain panel's box, with an empty notice (last)."""
    panel, notice = str(answer[0]), answer[-1]
    if "data-box=" not in panel or notice:
        raise RuntimeError(f"the slider event drew no box: notice {notice!r}, panel {panel[:200]!r}")


def bench_model(client: Client, model: str, repeats: int, folder: Path) -> dict[str, tuple[float, float]]:
    """Time the three events for one model; returns {event: (p50, p95)}."""
    photos = iter(fresh_photos(repeats + 1, folder))
    picked: list[str] = []  # the class picker's value after the last photo (its top-1)

    def analyse() -> None:
        photo = handle_file(next(photos))
        update = client.predict(photo, model, DEFAULT_RESOLUTION.value, api_name="/on_image")[0]  # gr.update(...)
        picked.append(update["value"])

    analysis = timed(analyse, repeats)
    thetas = iter(np.linspace(0.05, 0.95, repeats + 1))
    slider_args = (0.35, 90.0, False, True, True, "cam", "")  # theta_pas, p, TAP, NWC, PaS, method, GT box
    answers: list[tuple[object, ...]] = []

    def slide() -> None:
        answers.append(client.predict(picked[-1], float(next(thetas)), *slider_args, api_name="/update_theta_mas"))

    slider = timed(slide, repeats)
    check_views(answers[-1])
    noop = timed(lambda: client.predict(api_name="/noop"), repeats)
    noop_direct = timed(lambda: client.predict(api_name="/noop_direct"), repeats)
    return {"noop": percentiles(noop), "noop-direct": percentiles(noop_direct), "slider": percentiles(slider),
            "analysis": percentiles(analysis)}  # fmt: skip


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per event (default 30; 5 with --quick)")
    parser.add_argument("--quick", action="store_true", help="5 repeats: about 20 s")
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 30)
    for stride in (32, DEFAULT_RESOLUTION.output_stride):  # the default resolution's stride, and 224 px / 32
        register_model("resnet50", cam_core.load_model("resnet50", pretrained=False, output_stride=stride))
    demo = build_demo(expose_ui_events=True)
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    try:
        # download_files=False: time the server round trip; the browser fetches pictures itself, in parallel
        client = Client(demo.local_url, verbose=False, download_files=False)
        with tempfile.TemporaryDirectory() as tmp:
            models = ("tf_efficientnet_lite0", "resnet50")
            results = {m: bench_model(client, m, repeats, Path(tmp)) for m in models}
    finally:
        demo.close()
    print(f"{'model':<24}{'event':<13}{'p50 ms':>9}{'p95 ms':>9}")
    for model, events in results.items():
        for event, (p50, p95) in events.items():
            print(f"{model:<24}{event:<13}{p50:9.1f}{p95:9.1f}")
        direct = events["slider"][0] / events["noop-direct"][0]
        queued = events["slider"][0] / events["noop"][0]
        print(f"{model:<24}slider / no-op p50 ratio: {direct:.2f} against an unqueued no-op (same transport), "
              f"{queued:.2f} against a queued one (goal <= 1.5)")  # fmt: skip


if __name__ == "__main__":
    main()
