"""``python -m cam_core.train``: fine-tune a timm CNN with a GAP or TAP head and save it as a cam-explainer checkpoint;
``python -m cam_core.checkpoint PATH``: print (and update) a checkpoint's card (:func:`checkpoint_main`).

Data (one of):
    * ``--images DIR`` with class subfolders named by WordNet id (``n01440764``) or ImageNet index (``0``);
      a folder of photos without subfolders is read as unlabelled (train with ``--ce 0``).
    * ``--images DIR --boxes FILE.csv``: ``filename,class_index,x0,y0,x1,y1`` (class from ``class_index``).
    * ``--images ROOT --metadata DIR``: wsolevaluation layout, ``image_ids.txt`` + ``class_labels.txt``.

``--exclude FILE`` drops photos by file name: a text list (one a line) or a CSV whose first column holds
file names (e.g. the evaluation set's ``boxes.csv``, to drop the photos that also appear there).

Usage (the default model's TAP head, see docs/tap_training.md)::

    python -m cam_core.train --images imagenet_val_1k --boxes imagenet_val_1k/boxes.csv \\
        --exclude imagenette_val/boxes.csv --pooling tap --tau 0.1 --out assets/checkpoints/x.safetensors

``--input-size N --output-stride S`` trains at another analysis resolution (e.g. 448 / 16, a 28x28 map):
the base is built with dilated last stages, the views are stretched to N x N, the view cache records N and S
(and is refused at another resolution) and the card stores ``"resolution": {"input_size": N, "output_stride": S}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cam_core.errors import CamError, CheckpointError, DatasetError, ParameterError
from cam_core.models import DEFAULT_MODEL, resolve_spec, with_input_size
from cam_core.resolution import OUTPUT_STRIDES
from cam_core.train.checkpoint import (
    attach_evaluation,
    build_base,
    read_card,
    save_checkpoint,
    summarize_evaluation,
    write_card_json,
)
from cam_core.train.data import Samples, read_boxes_labels, read_exclude, read_image_folder, read_wsol_labels
from cam_core.train.finetune import Recipe, finetune


def load_samples(args: argparse.Namespace) -> tuple[Samples, dict[str, Any]]:
    """The training photos selected by the CLI arguments, and the card's ``data`` entry."""
    if args.boxes is not None:
        samples, kind = read_boxes_labels(args.boxes, args.images), f"boxes CSV {Path(args.boxes).name}"
    elif args.metadata is not None:
        samples, kind = read_wsol_labels(args.metadata, args.images), "wsolevaluation metadata"
    else:
        samples, kind = read_image_folder(args.images), "image folder"
    excluded: list[str] = []
    if args.exclude is not None:
        drop = read_exclude(args.exclude)
        excluded = sorted(p.name for p, _ in samples if p.name in drop)
        samples = [(p, c) for p, c in samples if p.name not in drop]
    if not samples:
        raise DatasetError("no training photos left after `--exclude`")
    listing = "\n".join(f"{p.name},{c}" for p, c in samples).encode()
    data = {
        "images": Path(args.images).name, "labels": kind, "photos": len(samples),
        "labelled": sum(c >= 0 for _, c in samples), "classes": len({c for _, c in samples if c >= 0}),
        "excluded": excluded, "exclude_list": Path(args.exclude).name if args.exclude else None,
        "list_sha256": hashlib.sha256(listing).hexdigest(),
    }  # fmt: skip
    return samples, data


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cam_core.train", description=__doc__.split("\n\n")[0])
    data = parser.add_argument_group("data")
    data.add_argument("--images", required=True, type=Path, help="photo folder (class subfolders) or metadata root")
    source = data.add_mutually_exclusive_group()
    source.add_argument("--boxes", type=Path, help="CSV filename,class_index,x0,y0,x1,y1 (class from class_index)")
    source.add_argument("--metadata", type=Path, help="wsolevaluation folder with image_ids.txt + class_labels.txt")
    data.add_argument("--exclude", type=Path, help="file names to drop (text list, or CSV with filenames first)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", default=DEFAULT_MODEL, help=f"registry or timm name (default {DEFAULT_MODEL})")
    model.add_argument("--no-pretrained", action="store_true", help="random seeded init (tests, smoke runs)")
    model.add_argument("--init-seed", type=int, default=0, help="seed of the random init with --no-pretrained")
    model.add_argument("--pooling", choices=("gap", "tap"), default="tap")
    model.add_argument("--tau", type=float, default=0.1, help="TAP threshold fraction (official code 0.1)")
    model.add_argument("--num-classes", type=int, help="new classifier with K classes (e.g. 200 for CUB; --distill 0)")
    model.add_argument("--unfreeze", default="head", help="head | tail | all | a module path such as blocks.6")
    model.add_argument("--input-size", type=int, help="train on N x N views (default: the model's own, 224)")
    model.add_argument(
        "--output-stride", type=int, default=32, choices=OUTPUT_STRIDES,
        help="32 as pretrained, or 16 / 8: dilated last stages (same weights, finer feature map)",
    )  # fmt: skip
    d = Recipe()
    fit = parser.add_argument_group("training")
    fit.add_argument("--distill", type=float, default=d.distill, help="weight a of a·T²·KL(T) (0: no teacher)")
    fit.add_argument("--ce", type=float, default=d.ce, help="weight b of the cross-entropy (0 for unlabelled)")
    fit.add_argument("--temperature", type=float, default=d.temperature, help="distillation temperature T")
    fit.add_argument("--epochs", type=int, default=d.epochs)
    fit.add_argument("--batch-size", type=int, default=d.batch_size)
    fit.add_argument("--lr-tail", type=float, default=d.lr_tail, help="Adam lr of trained layers but the classifier")
    fit.add_argument("--lr-head", type=float, default=d.lr_head, help="Adam lr of the classifier")
    fit.add_argument("--weight-decay", type=float, default=d.weight_decay)
    fit.add_argument("--views", type=int, default=d.views, help="cached augmented views per photo (head only)")
    fit.add_argument("--crop-scale", type=float, default=d.crop_scale, help="min area of the random resized crop")
    fit.add_argument("--hflip", type=float, default=d.hflip, help="horizontal flip probability")
    fit.add_argument("--jitter", type=float, default=d.jitter, help="max relative brightness/contrast change")
    fit.add_argument("--seed", type=int, default=d.seed)
    run = parser.add_argument_group("run")
    run.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    run.add_argument("--threads", type=int, help="torch CPU threads")
    run.add_argument("--cache", type=Path, help="reuse/store the head-only view cache here (.safetensors)")
    run.add_argument("--name", help="display name (default e.g. 'tap-lite0 (head fine-tune)')")
    run.add_argument("--out", required=True, type=Path, help="checkpoint PATH.safetensors (+ PATH.json card)")
    return parser


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The :class:`Recipe` named by the CLI arguments."""
    names = {f.name for f in dataclasses.fields(Recipe)}
    return Recipe(**{k: v for k, v in vars(args).items() if k in names})


def _short(arch: str) -> str:
    return arch.removeprefix("tf_").removeprefix("efficientnet_")


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    """Train and save as the parsed CLI arguments say; return the model card."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("`--device cuda` was asked but CUDA is not available")
    if args.out.suffix != ".safetensors":
        raise CheckpointError(f"`--out` {str(args.out)!r} must end in .safetensors")
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = recipe_from_args(args)
    samples, data = load_samples(args)
    loaded, base = build_base(args.model, not args.no_pretrained, args.init_seed, args.output_stride)
    if args.input_size is not None:
        loaded = with_input_size(loaded, args.input_size)
    resolution = {"input_size": loaded.data_config.input_size[0], "output_stride": loaded.output_stride}
    classes = args.num_classes or loaded.num_classes
    if classes != loaded.num_classes:
        if recipe.distill > 0:
            msg = f"`--num-classes` {classes} differs from the base's {loaded.num_classes}: use --distill 0"
            raise ParameterError(msg)
        loaded.model.reset_classifier(classes)  # type: ignore[operator]
    if max(c for _, c in samples) >= classes:
        raise DatasetError(f"a class index is >= the model's {classes} classes: pass --num-classes")
    fingerprint = json.dumps([base, data["list_sha256"], recipe.views, recipe.seed, recipe.crop_scale,
                              recipe.hflip, recipe.jitter, [str(p) for p, _ in samples[:3]]])  # fmt: skip
    paths, labels = [p for p, _ in samples], [c for _, c in samples]
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    prefixes, log = finetune(loaded, paths, labels, recipe, args.device, args.cache, fingerprint)
    arch = resolve_spec(args.model).arch
    card = {
        "architecture": arch, "base_weights": base, "pooling": recipe.pooling,
        "tau": recipe.tau if recipe.pooling == "tap" else None,
        "name": args.name or f"{recipe.pooling}-{_short(arch)} ({recipe.unfreeze} fine-tune)",
        "input_size": list(loaded.data_config.input_size), "resolution": resolution, "num_classes": classes,
        "data": data,
        "recipe": {**dataclasses.asdict(recipe), "optimizer": "Adam, cosine to 0",
                   "loss": f"{recipe.distill}*T^2*KL(T={recipe.temperature}) + {recipe.ce}*CE",
                   "bn": "running statistics frozen (eval mode), affine trained", "device": args.device,
                   "command": "python -m cam_core.train " + " ".join(argv), "started": started, "log": log},
        "evaluation": {},
    }  # fmt: skip
    card = save_checkpoint(args.out, loaded.model, prefixes, card)
    write_card_json(args.out, card)
    return card


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns 0 on success, 2 on bad data / options / model."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        card = run(args, argv)
    except (CamError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = args.out.stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.1f} MiB, trained {', '.join(card['trained'])}) and its .json card")
    return 0


def checkpoint_main(argv: Sequence[str] | None = None) -> int:
    """``python -m cam_core.checkpoint PATH [--evaluation results.json]``: print (and update) a card."""
    parser = argparse.ArgumentParser(prog="python -m cam_core.checkpoint", description=checkpoint_main.__doc__)
    parser.add_argument("path", type=Path, help="checkpoint .safetensors")
    parser.add_argument("--evaluation", type=Path, help="results JSON of cam_core.evaluate to store in the card")
    parser.add_argument("--dataset", default="", help="name of the evaluation set, stored with --evaluation")
    args = parser.parse_args(argv)
    try:
        if args.evaluation is not None:
            results = json.loads(args.evaluation.read_text(encoding="utf-8"))
            card = attach_evaluation(args.path, summarize_evaluation(results, args.dataset))
        else:
            card = read_card(args.path)
    except (CheckpointError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(card, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
