"""Evaluation throughput: a bare timm forward loop against the full WSOL evaluation, same images.

Run: ``python -m bench.bench_evaluate [--data DIR] [--n 128] [--batch-size 32] [--repeats 2] [--quick]``.
``--quick`` (about 10 s): the three example photos with boxes in ``assets/examples`` (unless ``--data``), batch 8,
5 repeats.

Both loops decode the same JPEG files, stretch them to the input size and run the default model
(tf_efficientnet_lite0, bundled weights) in batches:

* ``bare``: decode + resize + normalise + ``model(x)``, nothing else (timm's validate loop);
* ``full``: :func:`cam_core.evaluate.evaluate`, all four configurations with the full MaxBoxAcc
  v1 / v2 sweep (100 thresholds each) plus GT-known / Top-1 Loc.

Prints images/s of each (best of ``--repeats`` runs, alternated to share the machine's noise) and the
ratio full / bare (goal >= 0.5), by wall-clock time and by this process's CPU time.
Exits 0 with a message when the data folder is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from cam_core.cam import preprocess
from cam_core.datasets import load_stored_image
from cam_core.evaluate import Sample, evaluate, read_boxes_csv
from cam_core.models import LoadedModel, load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenette_val"
EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of one call; CPU time (all threads of this process) is less sensitive to
    other processes sharing the machine than wall time."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bare_loop(loaded: LoadedModel, samples: list[Sample], batch_size: int) -> None:
    """Decode + preprocess + forward over ``samples``."""
    for first in range(0, len(samples), batch_size):
        images = [load_stored_image(s.path) for s in samples[first : first + batch_size]]
        batch = torch.stack([preprocess(im, loaded.data_config, "bilinear") for im in images])  # (B, 3, H, W)
        with torch.inference_mode():
            loaded.model(batch)


def main() -> int:
    """Run the benchmark and print both throughputs and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help=f"folder with boxes.csv and the images ({DATA})")
    parser.add_argument("--n", type=int, default=128, help="number of images")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32 (8 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="default 2 (3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="assets/examples (3 photos): about 10 s")
    args = parser.parse_args()
    args.data = args.data or (EXAMPLES if args.quick else DATA)
    args.batch_size = args.batch_size or (8 if args.quick else 32)
    args.repeats = args.repeats or (5 if args.quick else 2)
    if not (args.data / "boxes.csv").is_file():
        print(f"skipped: no data set at {args.data} (needs boxes.csv and the images)")
        return 0
    samples = read_boxes_csv(args.data / "boxes.csv", args.data)[: args.n]
    loaded = load_model()
    bare_loop(loaded, samples[: args.batch_size], args.batch_size)  # warm-up: allocator, page cache
    bare, full = [], []
    for _ in range(args.repeats):  # alternated, so that both see the same machine load
        bare.append(timed(lambda: bare_loop(loaded, samples, args.batch_size)))
        full.append(timed(lambda: evaluate(loaded, samples, batch_size=args.batch_size)))
    n = len(samples)
    print(f"images: {n}, batch size {args.batch_size}, torch threads {torch.get_num_threads()}, best of {args.repeats}")
    for label, index in (("wall", 0), ("cpu", 1)):
        bare_rate, full_rate = n / min(t[index] for t in bare), n / min(t[index] for t in full)
        print(f"[{label:>4}] bare forward loop : {bare_rate:7.2f} images/s")
        print(f"[{label:>4}] full evaluation   : {full_rate:7.2f} images/s (4 configs, v1 + v2 sweeps)")
        print(f"[{label:>4}] ratio full / bare : {full_rate / bare_rate:.2f} (goal >= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
