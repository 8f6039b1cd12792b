"""``python -m cam_core.segment``: label maps for a folder of photos, and their mIoU against ground truth.

File encoding (outputs and ``--masks`` ground truth alike). ``<stem>.png`` is a palette PNG (mode
``P``, Pascal VOC colours) of per-image *slots*, at the photo's own size: 0 = background, slot i > 0
= the class of entry i of ``slots`` in the sidecar ``<stem>.json``, whose entries read
``{"slot": i, "class_index": c, "name": ..., ...}`` (``class_index`` null for slot 0). Slots keep the
PNG 8-bit whatever the class index (ImageNet has 1000 classes). With ``--crf`` the refined map is
``<stem>.crf.png`` (same slots). A photo over 4 megapixels is analysed and segmented at 4 megapixels, as in the
app, and its labels are resized to the photo by nearest neighbour (:func:`cam_core.segment.label_size`): the app's
download and this command write the same maps for the same photo.

mIoU (``--masks DIR``): a dataset-wide confusion matrix over ``class index + 1`` labels
(0 = background); IoU = TP / (TP + FP + FN) for every label present in some ground-truth map,
background included; mIoU is their mean. A predicted class absent from the ground truth gets no IoU of
its own but costs the true labels of its pixels. Reported for plain CAM and NWC+PaS (the paper code's
thresholds, :data:`cam_core.localize.CONFIGS`), with and without CRF when ``--crf`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cam_core.cam import Analysis, analyze
from cam_core.errors import CamError, DatasetError
from cam_core.image import load_image_with_size
from cam_core.localize import CONFIGS, LocalizationConfig
from cam_core.models import DEFAULT_MODEL, load_model
from cam_core.segment.files import MeanIoU, read_label_png, write_label_png
from cam_core.segment.labels import label_size
from cam_core.segment.segmentation import Segmentation, SegmentConfig, segment
from cam_core.threshold import PRESETS

_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _photos(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"`--images` {folder} is not a folder")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES and not p.stem.endswith(".crf"))
    if not photos:
        raise DatasetError(f"`--images` {folder}: no photos ({', '.join(sorted(_SUFFIXES))})")
    return photos


def _save(seg: Segmentation, out: Path, photo: Path, temperature: float | None = None) -> dict[str, Any]:
    """Write ``<stem>.png`` (+ ``.crf.png``) and ``<stem>.json``; return the JSON record (``"temperature"``: the
    calibration's T the slots' probabilities were divided by, ``None`` when uncalibrated)."""
    write_label_png(out / f"{photo.stem}.png", seg.labels, len(seg.classes))
    if seg.refined is not None:
        write_label_png(out / f"{photo.stem}.crf.png", seg.refined, len(seg.classes))
    record = {
        "image": photo.name,
        "size": list(seg.size),
        "config": {**asdict(seg.config.localization), "classes": list(seg.classes)},
        "crf": seg.refined is not None,
        "slots": seg.legend(),
        "temperature": temperature,
    }
    (out / f"{photo.stem}.json").write_text(json.dumps(record, indent=1))
    return record


def _predict(
    analysis: Analysis, config: SegmentConfig, crf: bool, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None, Segmentation | None]:
    """Class maps (int32 (H, W), ``size`` = the photo's) before / after CRF; all background when no class can be
    selected. Segmented at :func:`~cam_core.segment.segmentation.label_size` and resized, as the app's download does."""
    try:
        seg = segment(analysis, config, label_size(size), keep_maps=crf)
    except CamError as error:
        print(f"  {config.localization.name}: {error} -> all background", file=sys.stderr)
        empty = np.zeros(size, np.int32)
        return empty, (empty if crf else None), None
    seg = (seg.refine(analysis.image) if crf else seg).resized(size)
    return seg.class_map(), (seg.class_map(refined=True) if crf else None), seg


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cam_core.segment", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="folder of photos")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--classes", type=int, nargs="+", help="class indices (default: top-k over the floor)")
    parser.add_argument("--top-k", type=int, default=SegmentConfig.top_k)
    parser.add_argument("--min-probability", type=float, default=SegmentConfig.min_probability)
    parser.add_argument("--nwc", action="store_true", help="clamp negative weights (M2)")
    parser.add_argument("--rule", choices=["mas", "pas"], default="mas")
    parser.add_argument("--theta", type=float, help="default: the 'paper code' preset of the rule")
    parser.add_argument("--percentile", type=float, default=PRESETS["paper code"].percentile)
    parser.add_argument("--crf", action="store_true", help="also refine with the dense CRF (pydensecrf2)")
    parser.add_argument("--masks", type=Path, help="ground-truth <stem>.png + <stem>.json: prints and writes mIoU")
    parser.add_argument("--known-classes", action="store_true", help="with --masks: segment each photo's GT classes")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (on stderr)")
    return parser


def _config(args: argparse.Namespace) -> SegmentConfig:
    preset = PRESETS["paper code"]
    theta = args.theta if args.theta is not None else (preset.theta_pas if args.rule == "pas" else preset.theta_mas)
    localization = LocalizationConfig(args.nwc, args.rule, theta, args.percentile)
    classes = tuple(args.classes) if args.classes else None
    return SegmentConfig(localization, classes, args.top_k, args.min_probability)


def _evaluated(chosen: LocalizationConfig) -> dict[str, LocalizationConfig]:
    configs = {"cam": CONFIGS["cam"], "nwc+pas": CONFIGS["nwc+pas"]}
    return configs if chosen in configs.values() else {**configs, "yours": chosen}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 on bad input)."""
    args = _parser().parse_args(argv)
    try:
        config = _config(args)
        photos = _photos(args.images)
        if args.known_classes and args.masks is None:
            raise DatasetError("`--known-classes` needs `--masks`")
    except CamError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    loaded = load_model(args.model)
    meters = {f"{n}{s}": MeanIoU() for n in _evaluated(config.localization) for s in ["", "+crf"][: 1 + args.crf]}
    for photo in tqdm(photos, desc="segmenting", unit="photo", disable=args.no_progress, file=sys.stderr):
        print(photo.name)
        image, size = load_image_with_size(photo)  # as the app: analysed at <= 4 megapixels, labels at `size`
        analysis = analyze(loaded, image)
        truth = None if args.masks is None else read_label_png(args.masks / f"{photo.stem}.png")
        classes = config.classes
        if truth is not None and args.known_classes:
            classes = tuple(int(c) - 1 for c in np.unique(truth) if c > 0) or None
        runs = _evaluated(config.localization) if truth is not None else {"yours": config.localization}
        for name, localization in runs.items():  # the requested config's result is saved, the others only scored
            before, after, seg = _predict(
                analysis, replace(config, localization=localization, classes=classes), args.crf, size
            )
            if localization == config.localization and seg is not None:
                record = _save(seg, args.out, photo, analysis.temperature)
                print("  " + ", ".join(f"{r['name'].split(',')[0]} {r['area']:.1%}" for r in record["slots"]))
            if truth is not None:
                meters[name].accumulate(truth, before)
                if after is not None:
                    meters[f"{name}+crf"].accumulate(truth, after)
    if meters and args.masks is not None:
        _report(meters, args.out / "miou.json", loaded.class_names)
    return 0


def _report(meters: dict[str, MeanIoU], path: Path, names: tuple[str, ...]) -> None:
    """Print the mIoU table and write it as JSON."""
    table: dict[str, Any] = {}
    for name, meter in meters.items():
        miou, ious = meter.compute()
        table[name] = {"miou": miou, "iou": {("background" if k == 0 else names[k - 1]): v for k, v in ious.items()}}
        objects = [v for k, v in ious.items() if k > 0]
        print(
            f"{name:>14}: mIoU {miou:5.1f} over {len(ious)} labels (background {ious.get(0, float('nan')):.1f}, "
            f"mean of {len(objects)} classes {np.mean(objects) if objects else float('nan'):.1f})"
        )
    path.write_text(json.dumps(table, indent=1))
    print(f"wrote {path}")
