"""The CAM family under the paper's rules (issue #25): MaxBoxAccV2 per method and rule, paired intervals, speed.

    python -m bench.bench_methods --images DIR --boxes DIR/boxes.csv --input-size 448 --output-stride 16 \\
        --out docs/results/methods_448_16.json

One :func:`cam_core.evaluate.evaluate` per method (``cam``, then each of :data:`cam_core.family.METHODS`) on the same
photos, timed apart (images/s of that method's configs: each pass runs the forward pass again; a family method adds
one pass through the model's head, forward and backward, on the cached features). Per-photo hits give paired bootstrap
95 % intervals (:mod:`cam_core.evaluate.bootstrap`, the same resamples for every comparison) of MaxBoxAccV2 for each
rule minus the method's own MaS (``m+pas - m``, ``m+nwc - m``, ``m+nwc+pas - m``) and for each method minus plain CAM
under the same rule. Pairs whose hits agree on every photo, threshold and IoU are marked ``identical``: on a GAP +
linear head with non-negative features, Grad-CAM and XGrad-CAM are ReLU(CAM) / (h w) and LayerCAM is NWC CAM / (h w)
(docs/methods.md), so several rows must coincide exactly. Prints a markdown table; ``--out`` keeps the JSON.

The last column times what a method adds to a photo in the app: one family map from an analysis's cached features
(:func:`cam_core.family.family_maps`, the head alone) against the ``analyze`` that made them, medians over the
first 10 photos, in the same run.

``--quick`` (about 20 s): the example photos with boxes in ``assets/examples`` at 224/32, 1000 resamples.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cam_core.cam import analyze
from cam_core.datasets import Sample, read_boxes_csv
from cam_core.evaluate import default_configs, evaluate
from cam_core.evaluate.bootstrap import hits_array, paired_difference, resample_counts
from cam_core.family import METHODS, NWC_DEFINED, family_maps
from cam_core.image import load_image
from cam_core.models import DEFAULT_MODEL, LoadedModel, load_model

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
RULES = ("pas", "nwc", "nwc+pas")


def config_name(method: str, rule: str = "") -> str:
    """``("cam", "pas")`` -> ``"pas"``, ``("gradcam", "pas")`` -> ``"gradcam+pas"``, ``("cam", "")`` -> ``"cam"``."""
    if method == "cam":
        return rule or "cam"
    return f"{method}+{rule}" if rule else method


def run_methods(args: argparse.Namespace, loaded: LoadedModel, samples: list[Sample]) -> dict[str, Any]:
    """Evaluate every method on the same photos; return accuracies, hits (bool (N, D, T)) and images/s."""
    accuracy: dict[str, float] = {}
    hits: dict[str, np.ndarray] = {}
    speed: dict[str, dict[str, float]] = {}
    files: list[str] | None = None
    for method in ("cam", *METHODS):
        specs = default_configs(loaded.pooling, methods=(method,))
        if method != "cam":
            specs = {name: spec for name, spec in specs.items() if spec.method == method}
        start = time.perf_counter()
        result = evaluate(loaded, samples, specs, per_image=True, progress=None)
        seconds = time.perf_counter() - start
        if files is None:
            files = list(result.evaluated)
        elif list(result.evaluated) != files:
            raise SystemExit(f"{method}: evaluated other photos than plain CAM")
        speed[method] = {"seconds": round(seconds, 2), "images_per_s": round(len(files) / seconds, 3)}
        for name, metrics in result.configs.items():
            accuracy[name] = float(metrics.maxboxacc_v2)
            hits[name] = hits_array(result.per_image[name], "maxboxacc_v2")
        print(f"{method}: {len(specs)} configs, {speed[method]['images_per_s']:.2f} images/s", flush=True)
    return {"n_images": len(files or []), "accuracy": accuracy, "hits": hits, "speed": speed}


def head_cost(loaded: LoadedModel, samples: list[Sample], repeats: int = 5) -> dict[str, float]:
    """Median milliseconds of one plain-CAM ``analyze`` (the backbone's forward) and of one family map from its
    cached features (:func:`cam_core.family.family_maps`: the head alone, forward and backward), over ``samples``,
    each timed ``repeats`` times in this one run; the ratio is what a method adds to a photo."""
    times: dict[str, list[float]] = {"analyze": [], **{m: [] for m in METHODS}}
    for sample in samples:
        image = load_image(sample.path)
        for _ in range(repeats):
            start = time.perf_counter()
            analysis = analyze(loaded, image)
            times["analyze"].append(time.perf_counter() - start)
        for method in METHODS:
            for _ in range(repeats):
                start = time.perf_counter()
                family_maps(loaded, analysis.feature_maps, sample.class_index, method)
                times[method].append(time.perf_counter() - start)
    return {name: round(1000 * float(np.median(values)), 2) for name, values in times.items()}


def comparisons(hits: dict[str, np.ndarray], resamples: int, seed: int) -> list[dict[str, Any]]:
    """Paired intervals (percentage points) of rule - MaS per method and method - CAM per rule."""
    pairs = [(config_name(m), config_name(m, r)) for m in ("cam", *METHODS) for r in RULES]
    pairs += [(config_name("cam", r), config_name(m, r)) for m in METHODS for r in ("", *RULES)]
    if {"gradcam", "xgradcam"} <= set(METHODS):  # equal weights on a GAP + linear head
        pairs += [("gradcam" + r, "xgradcam" + r) for r in ("", "+pas", "+nwc", "+nwc+pas")]
    # a method whose weights already pass through ReLU against NWC CAM, rule for rule (LayerCAM = NWC CAM / (h w))
    pairs += [(config_name("cam", "nwc" + r), config_name(m, r.strip("+"))) for m in METHODS if m not in NWC_DEFINED
              for r in ("", "+pas")]  # fmt: skip
    counts = resample_counts(next(iter(hits.values())).shape[0], resamples, seed)
    out = []
    for a, b in pairs:
        if a not in hits or b not in hits:  # NWC is not defined for this method
            continue
        interval = paired_difference(hits[a], hits[b], counts=counts, seed=seed)
        out.append({
            "a": a, "b": b, "estimate": interval.estimate, "low": interval.low, "high": interval.high,
            "identical": bool(np.array_equal(hits[a], hits[b])),
        })  # fmt: skip
    return out


def table(summary: dict[str, Any]) -> str:
    """The markdown tables: accuracy per method and rule, images/s, then every comparison."""
    setting = f"{summary['input_size']}/{summary['output_stride']}, {summary['n_images']} photos"
    head = summary["head_ms"]
    lines = [f"| method ({setting}) | MaS | PaS | NWC | NWC+PaS | images/s | ms per map on cached features |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for m in ("cam", *METHODS):
        cells = [summary["accuracy"].get(config_name(m, r)) for r in ("", *RULES)]
        text = " | ".join("n/a" if v is None else f"{v:.1f}" for v in cells)
        cost = f"analyze {head['analyze']:.1f}" if m == "cam" else f"{head[m]:.2f} ({head[m] / head['analyze']:.3f}x)"
        lines.append(f"| {m} | {text} | {summary['speed'][m]['images_per_s']:.2f} | {cost} |")
    lines += ["", "| B - A (MaxBoxAccV2, points) | estimate [95 % CI] | |", "|---|---|---|"]
    for p in summary["comparisons"]:
        note = "identical on every photo" if p["identical"] else ""
        lines.append(f"| {p['b']} - {p['a']} | {p['estimate']:+.1f} [{p['low']:+.1f}, {p['high']:+.1f}] | {note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments (``--quick``: the example photos at 224/32), evaluate, print the tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_methods", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, help="photo folder (default with --quick: assets/examples)")
    parser.add_argument("--boxes", type=Path, help="boxes CSV (default with --quick: assets/examples/boxes.csv)")
    parser.add_argument("--model", default=None, help="registry or timm name (default: the app's model)")
    parser.add_argument("--input-size", type=int, default=448)
    parser.add_argument("--output-stride", type=int, default=16)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, help="write the summary JSON here")
    parser.add_argument("--quick", action="store_true", help="assets/examples at 224/32, 1000 resamples: ~20 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.boxes = args.images or EXAMPLES, args.boxes or EXAMPLES / "boxes.csv"
        args.input_size, args.output_stride, args.resamples = 224, 32, 1000
    if args.images is None or args.boxes is None:
        parser.error("--images and --boxes are required (unless --quick)")
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model or DEFAULT_MODEL, output_stride=args.output_stride, input_size=args.input_size)
    samples = read_boxes_csv(args.boxes, args.images)[: args.limit]
    run = run_methods(args, loaded, samples)
    summary = {
        "model": args.model or DEFAULT_MODEL, "input_size": args.input_size,
        "output_stride": args.output_stride, "n_images": run["n_images"], "accuracy": run["accuracy"],
        "speed": run["speed"], "torch_threads": torch.get_num_threads(), "nwc_defined": sorted(NWC_DEFINED),
        "comparisons": comparisons(run["hits"], args.resamples, args.seed), "resamples": args.resamples,
        "head_ms": head_cost(loaded, samples[: 2 if args.quick else 10], repeats=3 if args.quick else 5),
    }  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(table(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
