"""Measure WSOL accuracy over a grid of analysis resolutions: input size x output stride x configuration.

    python -m bench.grid_resolution --images DIR --boxes DIR/boxes.csv --out docs/resolution_grid

Every setting ``(input_size, output_stride)`` is one :func:`cam_core.evaluate.evaluate` run (one forward
per photo, the four configurations cam / pas / nwc / nwc+pas as array work) with per-image hits kept, so
differences get paired bootstrap intervals over the same photos (:mod:`cam_core.evaluate.bootstrap`): "nwc+pas
minus cam" per setting, and each setting minus the 224 px / stride 32 baseline. Settings run in the
given order; a ``--budget-s`` budget (the evaluations' summed wall-clock seconds, cached ones included)
stops the run between settings and the rest are listed as skipped. Results are cached per setting under
``--cache`` (``--resume`` reuses them), and the summary is written as ``<out>.json`` and ``<out>.md``.
Forward times come from ``bench.bench_resolution``'s JSON (``--forward-json``), measured on their own,
interleaved, so that their ratios are comparable.

``--quick`` (about 15 s) fills what is not given: the example photos with boxes in ``assets/examples``, the settings
224/32 and 448/16, ``--out`` and ``--cache`` in a temporary folder (never ``docs/``), 1000 resamples.
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
from cam_core.resolution import resolution_label

CONFIG_NAMES = ("cam", "pas", "nwc", "nwc+pas")
STATISTICS = ("maxboxacc_v2", "maxboxacc_v1", "gt_known_loc", "top1_loc")
BASELINE = (224, 32)
QUICK = ("224/32", "448/16")
"""``--quick``'s settings: the baseline and the app's default."""
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def parse_setting(text: str) -> tuple[int, int]:
    """``"448/16"`` -> ``(448, 16)``."""
    size, _, stride = text.partition("/")
    return int(size), int(stride)


def run_setting(images: Path, boxes: Path, size: int, stride: int, batch_size: int, limit: int | None) -> dict:
    """Evaluate one setting; return its summary and per-image hits (bool arrays per config and statistic)."""
    loaded = with_input_size(load_model(output_stride=stride), size)
    samples = read_boxes_csv(boxes, images)[:limit]
    start = time.perf_counter()
    result = evaluate(loaded, samples, default_configs(loaded.pooling), batch_size=batch_size, per_image=True)
    seconds = time.perf_counter() - start
    summary = {
        "input_size": size, "output_stride": stride, "feature_size": list(result.feature_size or ()),
        "label": resolution_label(size, stride, result.feature_size), "n_images": result.n_images,
        "top1": round(result.top1, 2), "eval_seconds": round(seconds, 1),
        "files": [Path(f).name for f in result.evaluated],
        "configs": {n: {k: v for k, v in m.to_dict(2).items() if k not in ("curves", "best_theta")}
                    for n, m in result.configs.items()},
    }  # fmt: skip
    hits = {f"{c}|{s}": hits_array(result.per_image[c], s) for c in CONFIG_NAMES for s in STATISTICS}  # type: ignore[arg-type]
    return {"summary": summary, "hits": hits}


def load_or_run(args: argparse.Namespace, size: int, stride: int) -> dict | None:
    """A cached setting (with ``--resume``), else a fresh run written to the cache."""
    stem = args.cache / f"{size}_{stride}"
    if args.resume and stem.with_suffix(".json").exists():
        summary = json.loads(stem.with_suffix(".json").read_text())
        with np.load(stem.with_suffix(".npz")) as data:
            return {"summary": summary, "hits": {k.replace("__", "|"): data[k] for k in data.files}}
    record = run_setting(args.images, args.boxes, size, stride, args.batch_size, args.limit)
    args.cache.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(record["summary"]) + "\n")
    np.savez_compressed(stem.with_suffix(".npz"), **{k.replace("|", "__"): v for k, v in record["hits"].items()})
    return record


def intervals(records: dict[tuple[int, int], dict], resamples: int, seed: int) -> dict[str, dict[str, Any]]:
    """Per setting: ``nwc+pas - cam`` for every statistic, and ``setting - baseline`` for cam and nwc+pas."""
    first = next(iter(records.values()))
    counts = resample_counts(len(first["summary"]["files"]), resamples, seed)  # the same resamples everywhere
    base = records.get(BASELINE)
    out: dict[str, dict[str, Any]] = {}
    for (size, stride), rec in records.items():
        hits = rec["hits"]
        entry: dict[str, Any] = {"nwc+pas - cam": {}, "vs 224/32": {}}
        for stat in STATISTICS:
            diff = paired_difference(hits[f"cam|{stat}"], hits[f"nwc+pas|{stat}"], counts=counts, seed=seed)
            entry["nwc+pas - cam"][stat] = diff.__dict__
        if base is not None and base["summary"]["files"] == rec["summary"]["files"]:
            for config in ("cam", "nwc+pas"):
                key = f"{config}|maxboxacc_v2"
                entry["vs 224/32"][config] = paired_difference(
                    base["hits"][key], hits[key], counts=counts, seed=seed
                ).__dict__
        out[f"{size}/{stride}"] = entry
    return out


def _fmt(interval: dict[str, float]) -> str:
    return f"{interval['estimate']:+.1f} [{interval['low']:+.1f}, {interval['high']:+.1f}]"


def markdown(report: dict[str, Any]) -> str:
    """The grid as a Markdown table (one row per setting) with the intervals and forward times."""
    head = ("| setting | top-1 | V2 cam | V2 pas | V2 nwc | V2 nwc+pas | nwc+pas - cam, V2 [95 % CI] | "
            "GT-known cam / nwc+pas | Top-1 Loc cam / nwc+pas | V2 vs 224/32: cam | V2 vs 224/32: nwc+pas | "
            "forward ms (x 224/32) |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for key, row in report["settings"].items():
        c, iv = row["configs"], report["intervals"][key]
        v2 = [f"{c[n]['maxboxacc_v2']:.1f}" for n in CONFIG_NAMES]
        vs = [(_fmt(iv["vs 224/32"][n]) if n in iv["vs 224/32"] else "") for n in ("cam", "nwc+pas")]
        fwd = report.get("forward_ms", {}).get(key)
        fwd_text = "" if fwd is None else f"{fwd['median_ms']:.0f} (x{fwd['ratio']:.1f})"
        lines.append(
            f"| {row['label']} | {row['top1']:.1f} | " + " | ".join(v2) + " | "
            f"{_fmt(iv['nwc+pas - cam']['maxboxacc_v2'])} | "
            f"{c['cam']['gt_known_loc']:.1f} / {c['nwc+pas']['gt_known_loc']:.1f} | "
            f"{c['cam']['top1_loc']:.1f} / {c['nwc+pas']['top1_loc']:.1f} | {vs[0]} | {vs[1]} | {fwd_text} |"
        )  # fmt: skip
    skipped = [f"- {s['setting']}: {s['reason']}" for s in report["skipped"]]
    return "\n".join(lines + (["", "Skipped:", *skipped] if skipped else [])) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.grid_resolution", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, help="required (or --quick)")
    parser.add_argument("--boxes", type=Path, help="required (or --quick)")
    parser.add_argument("--settings", nargs="+", help="input_size/output_stride, run in this order (default: all 12)")
    parser.add_argument("--out", type=Path, help="writes <out>.json and <out>.md (default docs/resolution_grid)")
    parser.add_argument("--cache", type=Path, help="default .cache/grid_resolution")
    parser.add_argument("--resume", action="store_true", help="reuse cached settings")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--budget-s", type=float, default=float("inf"), help="start no new setting after this")
    parser.add_argument("--resamples", type=int, help="default 10000 (1000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="assets/examples at 224/32 and 448/16, out in /tmp: ~15 s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--forward-json", type=Path, help="bench.bench_resolution output (forward ms per setting)")
    return parser


def defaults(quick: bool, tmp: Path) -> dict[str, Any]:
    """The arguments left out: the full grid into ``docs/``, or ``--quick``'s small one into ``tmp``."""
    if quick:
        return {"images": EXAMPLES, "boxes": EXAMPLES / "boxes.csv", "settings": list(QUICK), "out": tmp / "grid",
                "cache": tmp / "cache", "resamples": 1000}  # fmt: skip
    every = [f"{s}/{o}" for o in (32, 16, 8) for s in (224, 336, 448, 512)]
    return {"settings": every, "out": Path("docs/resolution_grid"), "cache": Path(".cache/grid_resolution"),
            "resamples": 10_000}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments (:func:`defaults` where not given), then :func:`run_grid`."""
    parser = _parser()
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grid-resolution-") as tmp:
        for name, value in defaults(args.quick, Path(tmp)).items():
            if getattr(args, name) is None:
                setattr(args, name, value)
        missing = [f"--{name}" for name in ("images", "boxes") if getattr(args, name) is None]
        if missing:
            parser.error(f"the following arguments are required (unless --quick): {', '.join(missing)}")
        return run_grid(args)


def run_grid(args: argparse.Namespace) -> int:
    """Run the grid (or what fits the budget), then write the JSON and Markdown summaries."""
    records: dict[tuple[int, int], dict] = {}
    skipped: list[dict[str, str]] = []
    for text in args.settings:
        size, stride = parse_setting(text)
        spent = sum(r["summary"]["eval_seconds"] for r in records.values())  # cached settings count as run
        if records and spent > args.budget_s:  # the first setting always runs
            skipped.append({"setting": text, "reason": f"compute budget of {args.budget_s:.0f} s spent"})
            continue
        records[(size, stride)] = load_or_run(args, size, stride)
        summary = records[(size, stride)]["summary"]
        v2 = {name: summary["configs"][name]["maxboxacc_v2"] for name in CONFIG_NAMES}
        print(f"{summary['label']}: {summary['eval_seconds']} s, top-1 {summary['top1']}, V2 {v2}", flush=True)
    report: dict[str, Any] = {
        "data": str(args.images), "resamples": args.resamples, "seed": args.seed, "skipped": skipped,
        "settings": {f"{s}/{o}": r["summary"] for (s, o), r in records.items()},
        "intervals": intervals(records, args.resamples, args.seed),
    }  # fmt: skip
    if args.forward_json is not None:
        report["forward_ms"] = json.loads(args.forward_json.read_text())["settings"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
