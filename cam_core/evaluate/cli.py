"""``python -m cam_core.evaluate``: the command line of :func:`cam_core.evaluate.run.evaluate` (``--help``).

Reads a boxes CSV or wsolevaluation metadata, evaluates the four configurations (optionally CRF,
calibration, other input sizes and output strides), prints the table and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cam_core.datasets import Sample, read_boxes_csv, read_wsol_metadata
from cam_core.errors import CamError, CheckpointError, DatasetError, ParameterError
from cam_core.evaluate.calibrate import (
    DEFAULT_PERCENTILES,
    _identities,
    calibrate,
    calibrated_specs,
    read_calibration_set,
)
from cam_core.evaluate.protocol import ConfigSpec
from cam_core.evaluate.run import default_configs, evaluate, format_table
from cam_core.models import DEFAULT_MODEL, LoadedModel, load_model, with_input_size
from cam_core.resolution import OUTPUT_STRIDES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cam_core.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, type=Path, help="image folder (root of the metadata paths)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--boxes", type=Path, help="CSV filename,class_index,x0,y0,x1,y1 (inclusive, one row a box)")
    source.add_argument("--metadata", type=Path, help="wsolevaluation metadata folder (image_ids.txt, ...)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"registry or timm name (default {DEFAULT_MODEL})")
    parser.add_argument("--checkpoint", type=Path, help="fine-tuned checkpoint; overrides --model")
    parser.add_argument("--limit", type=int, help="evaluate only the first N images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--threshold-step",
        "--step",
        dest="step",
        type=float,
        default=0.01,
        help="theta step of the sweeps (wsolevaluation: 0.01 in its CLI, 0.001 in training)",
    )
    parser.add_argument(
        "--thresholding",
        choices=("8bit", "float"),
        default="8bit",
        help="8bit: uint8(255 s) > int(255 theta), as wsolevaluation (default); float: s > theta",
    )
    parser.add_argument("--protocol", choices=("stretch", "official"), default="stretch")
    parser.add_argument("--input-size", type=int, help="analysis square in px (default: the model's own, 224)")
    parser.add_argument("--output-stride", type=int, choices=OUTPUT_STRIDES, default=32,
                        help="32 as trained; 16 / 8 dilate the last stages (finer map, slower)")  # fmt: skip
    parser.add_argument("--methods", default="cam", help="comma list of cam,gradcam,gradcampp,xgradcam,layercam: "
                        "each adds m, m+pas, m+nwc, m+nwc+pas (+nwc only where NWC is defined; one backward pass per "
                        "image, method and NWC setting)")  # fmt: skip
    parser.add_argument("--crf", action="store_true", help="add the dense-CRF configs (needs pydensecrf2)")
    parser.add_argument("--masks", type=Path, help="GT masks <image stem>.png, or the mask root of wsolevaluation's "
                        "OpenImages metadata (path,mask,ignore): adds PxAP and mask IoU")  # fmt: skip
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    add_calibration_arguments(parser)
    return parser


def run_calibration(
    args: argparse.Namespace, loaded: LoadedModel, specs: Mapping[str, ConfigSpec], test: Sequence[Sample]
) -> tuple[dict[str, ConfigSpec], dict[str, dict[str, Any]]]:
    """The CLI's ``--calibrate-on``: calibrate ``specs`` and return them plus their ``@cal`` versions, and
    the JSON ``calibration`` entry (chosen values, calibration score, set name, and the number of photos in
    both sets, by base name)."""
    samples = read_calibration_set(args.calibrate_on, args.calibrate_images)
    overlap = len(_identities(samples) & _identities(test))
    if overlap:
        print(f"warning: {overlap} calibration photos are also test photos", file=sys.stderr)
    percentiles = [float(p) for p in str(args.calibrate_percentiles).split(",") if p.strip()]
    from tqdm import tqdm

    with tqdm(total=len(samples), desc="calibrating", unit="img", disable=args.no_progress, file=sys.stderr) as bar:
        chosen = calibrate(loaded, samples, specs, metric=args.calibrate_metric, percentiles=percentiles,
                           step=args.step, protocol=args.protocol, batch_size=args.batch_size,
                           progress=lambda done, _total: bar.update(done - bar.n))  # fmt: skip
    info = {n: c.to_dict() | {"set": Path(args.calibrate_on).name, "overlap_with_test": overlap}
            for n, c in chosen.items()}  # fmt: skip
    return dict(specs) | calibrated_specs(specs, chosen), info


def add_calibration_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--calibrate-*`` options of ``python -m cam_core.evaluate``."""
    parser.add_argument("--calibrate-on", type=Path, help="held-out boxes CSV or wsolevaluation metadata folder: "
                        "choose theta (and p) there, report the test numbers as <config>@cal")  # fmt: skip
    parser.add_argument("--calibrate-images", type=Path, help="photo root of the calibration set")
    parser.add_argument("--calibrate-metric", choices=("gt_known", "v2"), default="gt_known")
    parser.add_argument("--calibrate-percentiles", default=",".join(f"{p:g}" for p in DEFAULT_PERCENTILES),
                        help="candidate p for PaS, comma-separated")  # fmt: skip


def _load_model(args: argparse.Namespace) -> LoadedModel:
    stride, size = getattr(args, "output_stride", 32), getattr(args, "input_size", None)
    if args.checkpoint is None:
        return load_model(args.model, output_stride=stride, input_size=size)
    try:
        from cam_core.train.checkpoint import load_checkpoint
    except ImportError as exc:
        raise CheckpointError(
            "--checkpoint needs cam_core/train/checkpoint.py (load_checkpoint), which is missing."
        ) from exc
    loaded = load_checkpoint(args.checkpoint, output_stride=stride)
    return loaded if size is None else with_input_size(loaded, size)


def check_out(path: Path | None) -> None:
    """Refuse an output path before any work: a folder, a missing or read-only parent, a read-only file.

    Raises:
        ParameterError: naming ``--out`` and the reason.
    """
    if path is None:
        return
    parent = path.parent
    if path.is_dir():
        raise ParameterError(f"`--out` {str(path)!r} is a folder; name a .json file")
    if not parent.is_dir():
        raise ParameterError(f"`--out`: the folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ParameterError(f"`--out` {str(path)!r} is not writable")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 2 bad data / model / options)."""
    args = _parser().parse_args(argv)
    try:
        check_out(args.out)
        if args.limit is not None and args.limit < 1:
            raise DatasetError(f"`--limit` must be >= 1, got {args.limit}")
        read = read_boxes_csv if args.boxes is not None else read_wsol_metadata
        samples = read(args.boxes or args.metadata, args.images)[: args.limit]
        loaded = _load_model(args)
        specs = default_configs(
            loaded.pooling, crf=args.crf, thresholding=args.thresholding, methods=tuple(args.methods.split(","))
        )
        calibration: dict[str, dict[str, Any]] = {}
        if args.calibrate_on is not None:
            specs, calibration = run_calibration(args, loaded, specs, samples)
        from tqdm import tqdm

        with tqdm(total=len(samples), unit="img", disable=args.no_progress, file=sys.stderr) as bar:
            result = evaluate(
                loaded, samples, specs, protocol=args.protocol, batch_size=args.batch_size, step=args.step,
                progress=lambda done, _total: bar.update(done - bar.n), masks=args.masks,
            )  # fmt: skip
    except (CamError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result.calibration = calibration
    for item in result.skipped:
        print(f"skipped {item['file']}: {item['reason']}", file=sys.stderr)
    for item in result.warnings:
        print(f"warning {item['file']}: {item['reason']}", file=sys.stderr)
    print(format_table(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
