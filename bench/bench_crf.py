"""Dense-CRF latency: :func:`cam_core.crf.refine_mask` on synthetic photo-like images.

Run: ``python -m bench.bench_crf [--repeats 7] [--iterations 10] [--quick]`` (``--quick``: 2 runs each, about
10 s). Prints the median and min
wall time in milliseconds (after one warm-up call) for:

* ``512x512``: the CRF grid at the default cap, no resizing;
* ``1024x768 (cap 512)``: a larger photo through the default size cap (downscale to 512x384,
  CRF, nearest upscale of the mask): what the app pays for a typical upload;
* ``1024x768 (no cap)``: the same photo with the cap lifted, to show what the cap saves.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

from cam_core.crf import CrfParams, crf_available, refine_mask


def scene(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy orange ellipse on a striped blue background and a blurry CAM of it.

    Returns:
        image uint8 (H, W, 3); cam float32 (H, W) in [0, 1].
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    truth = ((yy - 0.5 * height) / (0.3 * height)) ** 2 + ((xx - 0.5 * width) / (0.3 * width)) ** 2 <= 1.0
    background = np.array([90.0, 130.0, 170.0]) + 20 * np.sin(xx / 6.0 + yy / 9.0)[..., None]
    image = np.where(truth[..., None], np.array([170.0, 110.0, 80.0]), background)
    image = np.clip(image + rng.normal(0, 15, image.shape), 0, 255).astype(np.uint8)
    cam = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), max(height, width) / 16)
    return image, (cam / cam.max()).astype(np.float32)


def time_ms(image: np.ndarray, cam: np.ndarray, params: CrfParams, repeats: int) -> tuple[float, float]:
    """(median, min) wall time in ms of ``refine_mask`` over ``repeats`` calls after one warm-up."""
    refine_mask(image, cam, 0.35, params)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        refine_mask(image, cam, 0.35, params)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples), min(samples)


def main() -> int:
    """Parse arguments, run the three cases, print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case (default 7; 2 with --quick)")
    parser.add_argument("--iterations", type=int, default=CrfParams().iterations)
    parser.add_argument("--quick", action="store_true", help="2 runs per case: about 10 s")
    args = parser.parse_args()
    args.repeats = args.repeats or (2 if args.quick else 7)
    if not crf_available():
        print("pydensecrf2 is not installed (pip install pydensecrf2; needs a C++ compiler)")
        return 1
    capped = CrfParams(iterations=args.iterations)
    uncapped = CrfParams(iterations=args.iterations, max_side=100_000)
    cases = [
        ("512x512", (512, 512), capped),
        (f"1024x768 (cap {capped.max_side})", (768, 1024), capped),
        ("1024x768 (no cap)", (768, 1024), uncapped),
    ]
    print(f"refine_mask, {args.iterations} mean-field iterations, {args.repeats} runs each")
    medians = []
    for name, (height, width), params in cases:
        image, cam = scene(height, width)
        median, best = time_ms(image, cam, params, args.repeats)
        medians.append(median)
        print(f"{name:>24}: median {median:7.1f} ms   min {best:7.1f} ms")
    print(f"1024x768, no cap / cap {capped.max_side}: {medians[2] / medians[1]:.1f}x (median ms, this run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
