"""First-analysis time per analysis resolution (input size x output stride), default model, batch 1.

Run: ``python -m bench.bench_resolution [--settings 224/32 448/16 ...] [--rounds 5] [--threads 2] [--out r.json]``
(``--quick``: 224/32, 448/16 and 512/8, 3 rounds, about 15 s)

For each setting, on one photo (scikit-image's CC0 ``coffee``, 600 x 400, or ``--photo``):

* ``forward``: the bare network, ``forward_features`` + ``forward_head`` on the preprocessed tensor;
* ``first``: what a new photo costs the library: :func:`cam_core.analyze` (resize, normalise, forward,
  copies) plus :func:`cam_core.localize` of plain CAM and of NWC + PaS at the photo's size (the two panels);
* ``slider``: a slider move on the cached analysis: re-threshold the cached, upsampled NWC + PaS heatmap
  and box it (independent of the resolution: the heatmap is at the photo's size).

Goal: ``first - forward <= 100 ms`` at every setting, slider unchanged. Settings are interleaved round by
round (after one dropped warm-up round) so that the noise of a shared machine spreads over all of them;
medians over ``--rounds``, wall and
CPU time (this process, all threads), and each forward's ratio to 224/32 measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import cam_core
from cam_core.boxes import mask_to_boxes
from cam_core.localize import CONFIGS, heatmap
from cam_core.threshold import threshold_mask

QUICK = ["224/32", "448/16", "512/8"]
"""``--quick``'s settings: the baseline, the app's default, the finest."""


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """``(wall, cpu)`` milliseconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu)


def photo(path: Path | None) -> np.ndarray:
    """uint8 (H, W, 3): ``path``, or scikit-image's CC0 ``coffee`` photo."""
    if path is not None:
        return cam_core.load_image(path)
    from skimage import data

    return cam_core.to_rgb_array(data.coffee())


def steps(loaded: cam_core.LoadedModel, image: np.ndarray) -> dict[str, Callable[[], object]]:
    """The three timed operations of one setting (``loaded`` already at its input size)."""
    tensor = cam_core.preprocess(image, loaded.data_config)[None]  # (1, 3, H_in, W_in)
    net: Any = loaded.model
    cached = cam_core.analyze(loaded, image)
    cls = cached.top_k(1)[0][0]
    cam = heatmap(cached, cls, nwc=True)  # (H, W) at the photo's size, as the app caches it
    ours = CONFIGS["nwc+pas"]

    def forward() -> object:
        with torch.inference_mode():
            return net.forward_head(net.forward_features(tensor))

    def first() -> object:
        analysis = cam_core.analyze(loaded, image)
        top = analysis.top_k(1)[0][0]
        return cam_core.localize(analysis, top, CONFIGS["cam"]), cam_core.localize(analysis, top, ours)

    def slider() -> object:
        _, mask = threshold_mask(cam, "pas", 0.3, ours.percentile)
        return mask_to_boxes(mask, largest_only=True)

    return {"forward": forward, "first": first, "slider": slider}


def measure(settings: list[tuple[int, int]], image: np.ndarray, rounds: int) -> dict[str, dict[str, float]]:
    """Median wall / CPU ms of each step per setting, settings interleaved in every round."""
    models = {stride: cam_core.load_model(output_stride=stride) for stride in {s for _, s in settings}}
    runs = {(size, stride): steps(cam_core.with_input_size(models[stride], size), image) for size, stride in settings}
    samples: dict[tuple[int, int], dict[str, list[tuple[float, float]]]] = {k: {} for k in runs}
    for round_index in range(rounds + 1):  # round 0 warms up (allocator, oneDNN primitives) and is dropped
        for key, ops in runs.items():
            for name, op in ops.items():
                sample = timed(op)
                if round_index:
                    samples[key].setdefault(name, []).append(sample)
    result: dict[str, dict[str, float]] = {}
    for (size, stride), by_step in samples.items():
        row = {f"{n}_ms": statistics.median(w for w, _ in t) for n, t in by_step.items()}
        row |= {f"{n}_min_ms": min(w for w, _ in t) for n, t in by_step.items()}  # noise only adds: min ~ cost
        row |= {f"{n}_cpu_ms": statistics.median(c for _, c in t) for n, t in by_step.items()}
        row["overhead_ms"] = row["first_ms"] - row["forward_ms"]
        row["median_ms"] = row["forward_ms"]
        result[f"{size}/{stride}"] = row
    base = result.get("224/32")
    for row in result.values():
        row["ratio"] = row["forward_ms"] / base["forward_ms"] if base else float("nan")
        row["cpu_ratio"] = row["forward_cpu_ms"] / base["forward_cpu_ms"] if base else float("nan")
        row["min_ratio"] = row["forward_min_ms"] / base["forward_min_ms"] if base else float("nan")
    return result


def main(argv: list[str] | None = None) -> int:
    """Measure, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = [f"{s}/{o}" for o in (32, 16, 8) for s in (224, 336, 448, 512)]
    parser.add_argument("--settings", nargs="+", default=None, help="input_size/output_stride (default: all 12)")
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (3 with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the app's CAM_TORCH_THREADS)")
    parser.add_argument("--photo", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true", help="224/32, 448/16 and 512/8, 3 rounds: about 15 s")
    args = parser.parse_args(argv)
    args.settings = args.settings or (QUICK if args.quick else default)
    args.rounds = args.rounds or (3 if args.quick else 5)
    torch.set_num_threads(args.threads)
    settings = [(int(a), int(b)) for a, _, b in (s.partition("/") for s in args.settings)]
    image = photo(args.photo)
    result = measure(settings, image, args.rounds)
    print(f"photo {image.shape[1]}x{image.shape[0]}, {args.threads} torch threads, median of {args.rounds} rounds")
    print("setting   forward ms (x 224/32)   min (x 224/32)   first ms   first - forward   slider ms   CPU ms (x)")
    for key, r in result.items():
        print(f"{key:8s}  {r['forward_ms']:8.0f} (x{r['ratio']:4.1f})   "
              f"{r['forward_min_ms']:6.0f} (x{r['min_ratio']:4.1f})   {r['first_ms']:8.0f}   "
              f"{r['overhead_ms']:10.0f}   {r['slider_ms']:9.1f}"
              f"   {r['forward_cpu_ms']:6.0f} (x{r['cpu_ratio']:4.1f})")  # fmt: skip
    if args.out is not None:
        meta = {"photo": list(image.shape[:2]), "threads": args.threads, "rounds": args.rounds}
        args.out.write_text(json.dumps(meta | {"settings": result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
