"""Evaluate checkpoints (and the original model) at given resolutions on one set; TAP - GAP with intervals.

    python -m bench.compare_checkpoints --images DIR --boxes DIR/boxes.csv --out /tmp/cmp \\
        --runs original@224/32 gap=assets/checkpoints/lite0_gap_head.safetensors@224/32 ...

Each run ``NAME=CHECKPOINT@SIZE/STRIDE`` (``original@SIZE/STRIDE`` for the model without fine-tune) is one
:func:`cam_core.evaluate.evaluate` with per-image hits, cached under ``--out``: ``NAME_SIZE_STRIDE.json``
is the same results dict ``python -m cam_core.evaluate --out`` writes (``python -m cam_core.checkpoint
PATH --evaluation FILE`` stores it in a card) and ``.npz`` holds the hits and per-image top-1. Then every
pair of a TAP run and a GAP run at the same setting (names ``tap*`` / ``gap*`` with the same suffix, e.g.
``tap448`` / ``gap448``) gets paired bootstrap intervals of ``TAP - GAP`` (:mod:`cam_core.evaluate.bootstrap`) for
top-1, GT-known and MaxBoxAccV2 of plain CAM and of NWC+PaS. Writes ``summary.json`` and ``summary.md``.

``--quick`` (about 15 s) fills what is not given: the example photos with boxes in ``assets/examples``, the bundled
GAP and TAP heads (``assets/checkpoints``) at 224/32, a temporary ``--out``, 1000 resamples.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from cam_core.datasets import read_boxes_csv
from cam_core.evaluate import default_configs, evaluate
from cam_core.evaluate.bootstrap import hits_array, paired_difference, resample_counts
from cam_core.models import load_model, with_input_size

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES, CHECKPOINTS = ROOT / "assets" / "examples", ROOT / "assets" / "checkpoints"
STATISTICS = ("gt_known_loc", "maxboxacc_v2")
CONFIGS = ("cam", "nwc+pas")


def parse_run(text: str) -> tuple[str, str, int, int]:
    """``"tap=x.safetensors@448/16"`` -> ``("tap", "x.safetensors", 448, 16)``; ``"original@224/32"`` too."""
    spec, _, setting = text.rpartition("@")
    name, _, path = spec.partition("=")
    size, _, stride = setting.partition("/")
    return name, path or "original", int(size), int(stride)


def plain_name(config: str) -> str:
    """A TAP model's config name as the GAP one: ``tap`` -> ``cam``, ``tap+nwc+pas`` -> ``nwc+pas``."""
    return "cam" if config == "tap" else config.removeprefix("tap+")


def run_one(args: argparse.Namespace, name: str, path: str, size: int, stride: int) -> dict[str, Any]:
    """Evaluate one run (or read it from ``--out`` with ``--resume``); return its summary and hits."""
    stem = args.out / f"{name}_{size}_{stride}"
    if args.resume and stem.with_suffix(".npz").exists():
        results = json.loads(stem.with_suffix(".json").read_text())
        with np.load(stem.with_suffix(".npz")) as data:
            return {"results": results, "hits": {k.replace("__", "|"): data[k] for k in data.files}}
    if path == "original":
        loaded = with_input_size(load_model(output_stride=stride), size)
    else:
        from cam_core.train.checkpoint import load_checkpoint

        loaded = load_checkpoint(path, output_stride=stride, input_size=size)
    samples = read_boxes_csv(args.boxes, args.images)[: args.limit]
    top1: list[bool] = []
    start = time.perf_counter()
    result = evaluate(
        loaded, samples, default_configs(loaded.pooling), batch_size=args.batch_size, per_image=True,
        on_image=lambda sample, analysis, _: top1.append(int(np.argmax(analysis.logits)) == sample.class_index),
    )  # fmt: skip
    results = result.to_dict() | {"eval_seconds": round(time.perf_counter() - start, 1)}
    hits = {
        f"{plain_name(c)}|{s}": hits_array(result.per_image[c], s)  # type: ignore[arg-type]
        for c in result.per_image
        for s in STATISTICS
    }
    hits["top1"] = np.array(top1, bool).reshape(-1, 1, 1)
    hits["files"] = np.array([Path(f).name for f in result.evaluated])
    args.out.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    np.savez_compressed(stem.with_suffix(".npz"), **{k.replace("|", "__"): v for k, v in hits.items()})
    return {"results": results, "hits": hits}


def row(results: dict[str, Any]) -> dict[str, float]:
    """Top-1, GT-known and MaxBoxAccV2 of cam and nwc+pas from a results dict (TAP names mapped)."""
    configs = {plain_name(k): v for k, v in results["configs"].items()}
    out = {"top1": results["top1"]}
    for c in CONFIGS:
        out |= {f"{c}|{s}": configs[c][s] for s in STATISTICS}
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments (``--quick``: :func:`quick_defaults` where not given), then :func:`compare`."""
    parser = argparse.ArgumentParser(prog="python -m bench.compare_checkpoints", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, help="required (or --quick)")
    parser.add_argument("--boxes", type=Path, help="required (or --quick)")
    parser.add_argument("--runs", nargs="+", help="NAME=CHECKPOINT@SIZE/STRIDE or original@SIZE/STRIDE (or --quick)")
    parser.add_argument("--out", type=Path, help="folder for the per-run files and the summary (or --quick)")
    parser.add_argument("--resume", action="store_true", help="reuse runs already in --out")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--resamples", type=int, default=None, help="default 10000 (1000 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="assets/examples, the bundled heads at 224/32: ~15 s")
    args = parser.parse_args(argv)
    if args.quick:
        with tempfile.TemporaryDirectory(prefix="compare-checkpoints-") as tmp:
            for name, value in quick_defaults(Path(tmp)).items():
                if getattr(args, name) is None:
                    setattr(args, name, value)
            return compare(args)
    missing = [f"--{name}" for name in ("images", "boxes", "runs", "out") if getattr(args, name) is None]
    if missing:
        parser.error(f"the following arguments are required (unless --quick): {', '.join(missing)}")
    args.resamples = args.resamples or 10_000
    return compare(args)


def quick_defaults(out: Path) -> dict[str, Any]:
    """``--quick``'s arguments: the example photos, the bundled GAP and TAP heads at 224/32, ``out``, 1000 resamples."""
    return {
        "images": EXAMPLES, "boxes": EXAMPLES / "boxes.csv", "out": out, "resamples": 1000,
        "runs": [f"{name}={CHECKPOINTS / f'lite0_{name}_head.safetensors'}@224/32" for name in ("gap", "tap")],
    }  # fmt: skip


def compare(args: argparse.Namespace) -> int:
    """Evaluate every run, pair TAP with GAP, write and print the summary."""
    runs: dict[str, dict[str, Any]] = {}
    for text in args.runs:
        name, path, size, stride = parse_run(text)
        runs[f"{name}@{size}/{stride}"] = run_one(args, name, path, size, stride) | {"path": path}
        print(f"{name}@{size}/{stride}: {row(runs[f'{name}@{size}/{stride}']['results'])}", flush=True)
    n = len(next(iter(runs.values()))["hits"]["top1"])
    counts = resample_counts(n, args.resamples, args.seed)
    pairs: dict[str, dict[str, Any]] = {}
    for key, tap in runs.items():
        name, _, setting = key.partition("@")
        gap = runs.get(f"gap{name.removeprefix('tap')}@{setting}")
        if not name.startswith("tap") or gap is None:
            continue
        if list(gap["hits"]["files"]) != list(tap["hits"]["files"]):
            raise SystemExit(f"{key}: the GAP and TAP runs evaluated different photos")
        stats = ["top1", *(f"{c}|{s}" for c in CONFIGS for s in STATISTICS)]
        pairs[key] = {
            s: paired_difference(gap["hits"][s], tap["hits"][s], counts=counts, seed=args.seed).__dict__ for s in stats
        }
    summary = {"n_images": n, "runs": {k: row(v["results"]) for k, v in runs.items()}, "tap_minus_gap": pairs}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    cols = ["top1", *(f"{c}|{s}" for s in STATISTICS for c in CONFIGS)]
    lines = ["| run | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
    lines += [f"| {k} | " + " | ".join(f"{r[c]:.1f}" for c in cols) + " |" for k, r in summary["runs"].items()]
    for key, diffs in pairs.items():
        text = [f"{d['estimate']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]" for d in (diffs[c] for c in cols)]
        lines.append(f"| TAP - GAP ({key}) | " + " | ".join(text) + " |")
    (args.out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
