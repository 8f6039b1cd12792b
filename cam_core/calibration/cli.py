"""``python -m cam_core.calibration`` (``cam-calibrate``): fit a temperature per model and resolution, merge the fits
into the stored table (:mod:`cam_core.calibration`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cam_core.calibration import CALIBRATION_FILE, fit_temperature, key, nll


def collect_logits(
    loaded: Any, paths: list[Path], input_size: int, batch: int = 16, progress: Any = None
) -> np.ndarray:
    """Logits of ``paths`` at ``input_size`` (the analysis path of :func:`cam_core.analyze_batch`): float32 (N, K).

    Args:
        loaded: a :class:`~cam_core.models.LoadedModel` at the wanted output stride.
        paths: photo files; input_size: N; batch: photos per forward; progress: a tqdm bar to advance, or None.
    """
    from cam_core.cam import analyze_batch
    from cam_core.datasets import load_stored_image

    out: list[np.ndarray] = []
    for start in range(0, len(paths), batch):
        images = [load_stored_image(p) for p in paths[start : start + batch]]
        out.extend(a.logits for a in analyze_batch(loaded, images, input_size=input_size))
        if progress is not None:
            progress.update(len(images))
    return np.stack(out).astype(np.float32)


def _git_commit() -> str:
    import subprocess

    try:
        run = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        return run.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _load(model: str, output_stride: int) -> Any:
    """A registry name, or a checkpoint ``.safetensors`` path (its card's name is the lookup name)."""
    if model.endswith(".safetensors"):
        from cam_core.train.checkpoint import load_checkpoint

        return load_checkpoint(Path(model), output_stride=output_stride)
    from cam_core.models import load_model

    return load_model(model, output_stride=output_stride)


def main(argv: list[str] | None = None) -> int:
    """``python -m cam_core.calibration``: fit ``T`` per model and resolution, merge the fits into ``--out``."""
    import argparse
    import datetime
    import sys

    from tqdm import tqdm

    from cam_core.datasets import read_boxes_csv

    parser = argparse.ArgumentParser(prog="python -m cam_core.calibration", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--fit-on", required=True, type=Path, help="a folder with photos and boxes.csv")
    parser.add_argument("--out", type=Path, default=CALIBRATION_FILE, help="JSON to merge the fits into")
    parser.add_argument("--model", action="append", help="registry name or checkpoint path (repeatable)")
    parser.add_argument("--resolutions", default="448/16,224/32,336/16,448/32,336/32,512/16", help="N/S,... in order")
    parser.add_argument("--limit", type=int, default=None, help="the first N photos only")
    parser.add_argument("--quick", action="store_true", help="16 photos, 224/32 only (a smoke run)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    args = parser.parse_args(argv)
    samples = read_boxes_csv(args.fit_on / "boxes.csv", args.fit_on)
    limit = 16 if args.quick else args.limit
    samples = samples[:limit] if limit else samples
    settings = [tuple(int(v) for v in r.split("/")) for r in ("224/32" if args.quick else args.resolutions).split(",")]
    paths, labels = [s.path for s in samples], np.array([s.class_index for s in samples])
    table = json.loads(args.out.read_text()) if args.out.exists() else {}
    fits = table.setdefault("temperatures", {})
    for model in args.model or ["tf_efficientnet_lite0"]:
        for size, stride in settings:
            loaded = _load(model, stride)
            with tqdm(total=len(paths), desc=f"{loaded.name} {size}/{stride}", unit="img",
                      disable=args.no_progress, file=sys.stderr) as bar:  # fmt: skip
                logits = collect_logits(loaded, paths, size, progress=bar)
            t = fit_temperature(logits, labels)
            fits[key(loaded.name, size, stride)] = {
                "temperature": round(t, 4),
                "fit_on": args.fit_on.name,
                "n_photos": len(paths),
                "model_source": Path(model).name,
                "nll_before": round(nll(logits, labels), 4),
                "nll_after": round(nll(logits, labels, t), 4),
                "date": datetime.date.today().isoformat(),
                "commit": _git_commit(),
            }
            print(f"{key(loaded.name, size, stride)}: T = {t:.4f} on {len(paths)} photos of {args.fit_on.name}")
            table["method"] = "temperature scaling (Guo et al. 2017): T minimises the mean NLL of softmax(logits / T)"
            args.out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")  # after each fit: merged
    return 0
