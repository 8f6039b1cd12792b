"""Temperature scaling, measured on photos the fit never saw: NLL, ECE, mean top-1 probability vs top-1 accuracy.

For each resolution of the app's Resolution menu, the default model's logits on the test photos, scored with
``T = 1`` (the raw softmax) and with the stored ``T`` (``cam_core.calibration``). Differences (after - before)
come with paired bootstrap 95 % intervals over the photos (:func:`cam_core.evaluate.bootstrap.resample_counts`:
the same resamples for both). Top-1 is checked unchanged (dividing by ``T > 0`` keeps the ranking). Photos of
the fit set are dropped from the test sets (``imagenet_val_1k`` and ``imagenette_val`` share 7)::

    python -m bench.bench_calibration                 # the table of docs/calibration.md (about 15 min on 2 cores)
    python -m bench.bench_calibration --quick         # the 3 example photos with boxes at 224/32
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from cam_core.calibration import calibration_entry, ece_terms, nll_per_photo, softmax
from cam_core.calibration.cli import collect_logits
from cam_core.cam import Analysis, analyze
from cam_core.datasets import load_stored_image, read_boxes_csv
from cam_core.evaluate.bootstrap import resample_counts
from cam_core.models import DEFAULT_MODEL, load_model

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESOLUTIONS = ((448, 16), (224, 32), (336, 16), (448, 32), (336, 32), (512, 16))
"""The Resolution menu (``app/resolutions.py``; the bench does not import the app), the default first."""
IMAGENETTE_EVERY = 5
"""Every 5th photo of ``imagenette_val`` (its 10 classes in turn; the forwards at six resolutions take minutes)."""


def _interval(per_photo: np.ndarray, counts: np.ndarray) -> tuple[float, float, float]:
    """Mean of ``per_photo`` (N,) and the 2.5 / 97.5 percentiles of its resampled means."""
    means = counts @ per_photo / per_photo.shape[0]
    return float(per_photo.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _ece_interval(before: tuple, after: tuple, counts: np.ndarray, bins: int = 15) -> tuple[float, float, float]:
    """ECE(after) - ECE(before) on the full sample and its paired bootstrap 95 % interval."""

    def ece(terms: tuple) -> np.ndarray:
        which, gap = terms
        onehot = np.zeros((gap.shape[0], bins))
        onehot[np.arange(gap.shape[0]), which] = gap
        return np.abs(np.vstack([np.ones(gap.shape[0]), counts]) @ onehot).sum(axis=1) / gap.shape[0]

    diff = ece(after) - ece(before)
    return float(diff[0]), float(np.percentile(diff[1:], 2.5)), float(np.percentile(diff[1:], 97.5))


def score(logits: np.ndarray, labels: np.ndarray, t: float, n_resamples: int) -> dict[str, object]:
    """The before / after numbers of one test set at one resolution (see the module docstring)."""
    counts = resample_counts(len(labels), n_resamples, seed=0)
    raw, cal = softmax(logits), softmax(logits, t)
    assert (raw.argmax(1) == cal.argmax(1)).all(), "temperature scaling changed a top-1 class"
    d_nll = nll_per_photo(logits, labels, t) - nll_per_photo(logits, labels)
    terms = ece_terms(raw, labels), ece_terms(cal, labels)
    return {
        "n": len(labels),
        "top1": float((raw.argmax(1) == labels).mean()),
        "p_before": float(raw.max(1).mean()),
        "p_after": float(cal.max(1).mean()),
        "nll_before": float(nll_per_photo(logits, labels).mean()),
        "nll_after": float(nll_per_photo(logits, labels, t).mean()),
        "d_nll": _interval(d_nll, counts),
        "ece_before": float(np.abs(np.bincount(terms[0][0], terms[0][1], 15)).sum() / len(labels)),
        "ece_after": float(np.abs(np.bincount(terms[1][0], terms[1][1], 15)).sum() / len(labels)),
        "d_ece": _ece_interval(*terms, counts),
    }


def _row(res: str, t: float, s: dict) -> str:
    dn, de = s["d_nll"], s["d_ece"]
    return (
        f"| {res} | {t:.3f} | {s['n']} | {s['nll_before']:.3f} -> {s['nll_after']:.3f} "
        f"| {dn[0]:+.3f} [{dn[1]:+.3f}, {dn[2]:+.3f}] | {s['ece_before']:.3f} -> {s['ece_after']:.3f} "
        f"| {de[0]:+.3f} [{de[1]:+.3f}, {de[2]:+.3f}] | {s['top1']:.3f} | {s['p_before']:.3f} -> {s['p_after']:.3f} |"
    )


def _sets(quick: bool, limit: int | None) -> dict[str, list]:
    """Test sets: ``{name: samples}``, the fit set's photos dropped (by file name)."""
    if quick or not DATA.exists():
        return {"examples": read_boxes_csv(ROOT / "assets/examples/boxes.csv", ROOT / "assets/examples")}
    seen = {s.path.name for s in read_boxes_csv(DATA / "imagenet_val_1k/boxes.csv", DATA / "imagenet_val_1k")}
    sets = {}
    for name, every in (("imagenet_val_fullres_dev", 1), ("imagenette_val", IMAGENETTE_EVERY)):
        samples = [s for s in read_boxes_csv(DATA / name / "boxes.csv", DATA / name) if s.path.name not in seen]
        sets[name] = samples[::every][:limit] if limit else samples[::every]
    return sets


def _logits(name: str, samples: list, size: int, stride: int, cache: Path | None) -> np.ndarray:
    """The default model's logits (N, K) of ``samples`` at ``size / stride``, kept in ``cache`` when given."""
    path = None if cache is None else cache / f"{name}_{len(samples)}_{size}_{stride}.npy"
    if path is not None and path.exists():
        return np.load(path)
    logits = collect_logits(load_model(DEFAULT_MODEL, output_stride=stride), [s.path for s in samples], size)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, logits)
    return logits


def segmentation(samples: list, size: int = 448, stride: int = 16) -> None:
    """The Segmentation tab at the defaults: how many photos get a label map (a class over the 5 % floor), with the
    raw and the calibrated softmax, and how many legend rows :func:`cam_core.segment.overclaims` flags."""
    from cam_core.errors import ParameterError
    from cam_core.localize import CONFIGS
    from cam_core.segment import SegmentConfig, segment, select_classes

    loaded = load_model(DEFAULT_MODEL, output_stride=stride)
    shown = {"raw softmax": 0, "calibrated": 0}
    rows = flagged = flagged_photos = 0
    for sample in samples:
        a = collect_analysis(loaded, sample.path, size)
        raw = replace(a, probabilities=softmax(a.logits).astype(np.float32), temperature=None)
        chosen: dict[str, tuple[int, ...]] = {}
        for name, analysis in (("raw softmax", raw), ("calibrated", a)):
            try:
                chosen[name] = select_classes(analysis, SegmentConfig())
                shown[name] += 1
            except ParameterError:
                continue
        classes = chosen.get("calibrated")
        if classes is None:
            continue
        legends = [segment(a, SegmentConfig(CONFIGS[c], classes)).legend() for c in ("cam", "nwc+pas")]
        marks = [p["overclaims"] or o["overclaims"] for p, o in zip(*legends, strict=True)][1:]
        rows, flagged, flagged_photos = rows + len(marks), flagged + sum(marks), flagged_photos + any(marks)
    n = len(samples)
    for name, count in shown.items():
        print(f"label map shown at {size}/{stride}, {name}: {count}/{n} = {100 * count / n:.1f} %")
    print(f"legend rows flagged (area far above probability): {flagged}/{rows}, on {flagged_photos}/{n} photos")


def collect_analysis(loaded: object, path: Path, size: int) -> Analysis:
    """One photo analysed as the app does (stored file, stretched to ``size``)."""
    return analyze(loaded, load_stored_image(path), input_size=size)  # type: ignore[arg-type]


def main() -> None:
    """Print the calibration table (one row per test set and resolution)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the 3 example photos with boxes at 224/32, 200 resamples")
    parser.add_argument("--limit", type=int, default=None, help="the first N photos of each test set")
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--segmentation", action="store_true", help="only the Segmentation tab's coverage at 448/16")
    parser.add_argument("--cache", type=Path, default=None, help="a folder to keep (and reuse) the logits in")
    args = parser.parse_args()
    resolutions = RESOLUTIONS[1:2] if args.quick else RESOLUTIONS
    n_resamples = 200 if args.quick else args.resamples
    sets = _sets(args.quick, args.limit)
    if args.segmentation or args.quick:
        segmentation(next(iter(sets.values())))
        if args.segmentation:
            return
    print("| resolution | T | photos | NLL before -> after | ΔNLL [95 %] | ECE before -> after | ΔECE [95 %] "
          "| top-1 acc | mean top-1 p before -> after |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, samples in sets.items():
        print(f"| **{name}** | | | | | | | | |")
        labels = np.array([s.class_index for s in samples])
        for size, stride in resolutions:
            logits = _logits(name, samples, size, stride, args.cache)
            entry = calibration_entry(DEFAULT_MODEL, size, stride)
            if entry is None:
                print(f"| {size}/{stride} | uncalibrated | | | | | | | |")
                continue
            print(
                _row(f"{size}/{stride}", entry["temperature"], score(logits, labels, entry["temperature"], n_resamples))
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
