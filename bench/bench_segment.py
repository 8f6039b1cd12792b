"""Segmentation cost, and mIoU on box-level mosaics built from the ImageNet dev photos.

Run: ``python -m bench.bench_segment [--repeats 30] [--miou] [--data DIR] [--quick]``. Prints, measured in this run
(``--quick``: 5 runs, and ``--miou`` on the example photos with boxes in ``assets/examples`` unless ``--data``: about
20 s):

* the slider path: :func:`cam_core.segment.segment` for 5 classes at display size (512 x 512, the app's
  ``DISPLAY_SIDE``), no CRF, per configuration (median / p95 ms; goal <= 30 ms), with its parts and
  :meth:`Segmentation.with_theta` (a theta-only move from the cached maps);
* the CRF: :meth:`Segmentation.refine` with 5 classes (6 labels) at 512 x 512, next to the binary
  :func:`cam_core.crf.refine_mask` on the same photo (median ms);
* with ``--miou``: 2 x 2 mosaics of ``imagenet_val_fullres_dev`` photos (four distinct classes, each
  tile stretched to 256 x 256) whose ground truth is **box-level**: a tile's pixels inside its
  ImageNet boxes are its class, the rest background. Not pixel ground truth: boxes include background
  around the object, so the numbers favour blobby masks. Built in a temporary folder, never committed.
  Then ``python -m cam_core.segment --masks`` with each photo's ground-truth classes
  (``--known-classes``, the WSSS seed protocol) and with the top-k over the floor; and the one-class
  photos themselves at their own size (box-level again), with the ground-truth class.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

import cam_core
from cam_core.crf import crf_available, refine_mask
from cam_core.localize import CONFIGS
from cam_core.segment import SegmentConfig, class_maps, label_map, segment, standards, write_label_png
from cam_core.segment.cli import main as segment_cli

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "imagenet_val_fullres_dev"
EXAMPLES = ROOT / "assets" / "examples"
TILE = 256


def timed(function: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, p95) wall time in ms over ``repeats`` calls after one warm-up."""
    function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]


def bench_speed(repeats: int) -> None:
    """Print the slider-path and CRF timings on the astronaut photo (512 x 512)."""
    analysis = cam_core.analyze(cam_core.load_model(), cam_core.load_image(ROOT / "assets/examples/astronaut.jpg"))
    size = (512, 512)
    classes = tuple(index for index, _, _ in analysis.top_k(5))
    print(f"segment(), 5 classes at {size[0]}x{size[1]}, no CRF, {repeats} runs (goal <= 30 ms)")
    for name, loc in CONFIGS.items():
        config = SegmentConfig(loc, classes=classes)
        median, p95 = timed(lambda config=config: segment(analysis, config, size), repeats)
        print(f"  {name:>8}: median {median:6.1f} ms   p95 {p95:6.1f} ms")
    loc = CONFIGS["nwc+pas"]
    maps = class_maps(analysis, classes, loc.nwc, size)
    standard = standards(maps, loc.rule, loc.percentile)
    parts = {
        "maps (einsum + bicubic + min-max)": lambda: class_maps(analysis, classes, loc.nwc, size),
        "standards (5 percentiles)": lambda: standards(maps, loc.rule, loc.percentile),
        "label map (candidates + argmax)": lambda: label_map(maps, standard, loc.theta),
    }
    seg = segment(analysis, SegmentConfig(loc, classes=classes), size)
    parts["with_theta (theta slider, cached maps)"] = lambda: seg.with_theta(0.5)
    for part, function in parts.items():
        print(f"    {part:>38}: median {timed(function, repeats)[0]:6.1f} ms")
    if not crf_available():
        print("pydensecrf2 is not installed: no CRF timings")
        return
    crf_repeats = max(3, repeats // 6)
    print(f"dense CRF at {size[0]}x{size[1]}, 10 iterations, {crf_repeats} runs")
    print(f"  6 labels (5 classes): median {timed(lambda: seg.refine(analysis.image), crf_repeats)[0]:7.1f} ms")
    heat = maps[0]
    binary = timed(lambda: refine_mask(analysis.image, heat, loc.theta * float(standard[0])), crf_repeats)[0]
    print(f"  2 labels (refine_mask): median {binary:7.1f} ms")


def build_mosaics(data: Path, out: Path) -> int:
    """Write ``photos/`` (2 x 2 mosaics, 512 x 512) and ``masks/`` (box-level slots + JSON); return the count."""
    boxes: dict[str, list[tuple[int, list[int]]]] = defaultdict(list)
    with (data / "boxes.csv").open() as handle:
        for row in csv.DictReader(handle):
            boxes[row["filename"]].append((int(row["class_index"]), [int(row[k]) for k in ("x0", "y0", "x1", "y1")]))
    single = sorted(f for f, rows in boxes.items() if len({c for c, _ in rows}) == 1 and (data / f).exists())
    groups: list[list[str]] = []
    pending: list[str] = []
    for name in single:  # greedy groups of four distinct classes, in file order
        if boxes[name][0][0] not in {boxes[p][0][0] for p in pending}:
            pending.append(name)
        if len(pending) == 4:
            groups.append(pending)
            pending = []
    (out / "photos").mkdir(parents=True)
    (out / "masks").mkdir()
    for number, group in enumerate(groups):
        mosaic = np.zeros((2 * TILE, 2 * TILE, 3), np.uint8)
        slots = np.zeros((2 * TILE, 2 * TILE), np.uint8)
        for tile, name in enumerate(group):
            y, x = TILE * (tile // 2), TILE * (tile % 2)
            photo = Image.open(data / name).convert("RGB")
            sx, sy = TILE / photo.width, TILE / photo.height
            mosaic[y : y + TILE, x : x + TILE] = np.asarray(photo.resize((TILE, TILE), Image.Resampling.BILINEAR))
            for _, (x0, y0, x1, y1) in boxes[name]:  # inclusive corners, scaled like the photo
                top, left = y + int(y0 * sy), x + int(x0 * sx)
                slots[top : y + int(np.ceil((y1 + 1) * sy)), left : x + int(np.ceil((x1 + 1) * sx))] = tile + 1
        stem = f"mosaic{number:02d}"
        Image.fromarray(mosaic).save(out / "photos" / f"{stem}.png")
        write_label_png(out / "masks" / f"{stem}.png", slots, 4)
        entries = [{"slot": 0, "class_index": None}] + [
            {"slot": t + 1, "class_index": boxes[n][0][0]} for t, n in enumerate(group)
        ]
        (out / "masks" / f"{stem}.json").write_text(json.dumps({"slots": entries}))
    return len(groups)


def link_singles(data: Path, out: Path) -> int:
    """Link the one-class photos into ``photos/`` and write box-level ``masks/`` at their own size; return the count."""
    boxes: dict[str, list[tuple[int, list[int]]]] = defaultdict(list)
    with (data / "boxes.csv").open() as handle:
        for row in csv.DictReader(handle):
            boxes[row["filename"]].append((int(row["class_index"]), [int(row[k]) for k in ("x0", "y0", "x1", "y1")]))
    (out / "photos").mkdir(parents=True)
    (out / "masks").mkdir()
    names = sorted(f for f, rows in boxes.items() if len({c for c, _ in rows}) == 1 and (data / f).exists())
    for name in names:
        stem = Path(name).stem
        (out / "photos" / name).symlink_to(data / name)
        with Image.open(data / name) as photo:
            slots = np.zeros((photo.height, photo.width), np.uint8)
        for _, (x0, y0, x1, y1) in boxes[name]:  # inclusive corners
            slots[y0 : y1 + 1, x0 : x1 + 1] = 1
        write_label_png(out / "masks" / f"{stem}.png", slots, 1)
        entries = [{"slot": 0, "class_index": None}, {"slot": 1, "class_index": boxes[name][0][0]}]
        (out / "masks" / f"{stem}.json").write_text(json.dumps({"slots": entries}))
    return len(names)


def bench_miou(data: Path) -> None:
    """Build the mosaics and run the CLI with and without the ground-truth classes."""
    if not (data / "boxes.csv").exists():
        print(f"{data}: not found, no mIoU")
        return
    with tempfile.TemporaryDirectory() as tmp:
        count = build_mosaics(data, Path(tmp))
        crf = ["--crf"] if crf_available() else []
        protocols = [("ground-truth classes (--known-classes)", ["--known-classes"]), ("top-5 >= 0.05", [])]
        if count == 0:  # assets/examples (--quick): three photos
            print(f"\nno mosaic: {data} has fewer than four one-class photos of distinct classes")
        for label, extra in protocols if count else []:
            print(f"\nmIoU on {count} box-level 2x2 mosaics, {label}:")
            args = ["--images", f"{tmp}/photos", "--masks", f"{tmp}/masks", "--out", f"{tmp}/out{len(extra)}"]
            segment_cli([*args, *crf, *extra])
        count = link_singles(data, Path(tmp) / "singles")
        print(f"\nmIoU on {count} box-level single photos (own size), ground-truth class (--known-classes):")
        singles = Path(tmp) / "singles"
        args = ["--images", f"{singles}/photos", "--masks", f"{singles}/masks", "--out", f"{singles}/out"]
        segment_cli([*args, *crf, "--known-classes"])


def main() -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="default 30 (5 with --quick)")
    parser.add_argument("--miou", action="store_true", help="also build the box-level mosaics and report mIoU")
    parser.add_argument("--data", type=Path, default=None, help=f"photos with boxes.csv for --miou (default {DATA})")
    parser.add_argument("--quick", action="store_true", help="5 runs; --miou on assets/examples: about 20 s")
    args = parser.parse_args()
    args.repeats = args.repeats or (5 if args.quick else 30)
    args.data = args.data or (EXAMPLES if args.quick else DATA)
    bench_speed(args.repeats)
    if args.miou:
        bench_miou(args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
