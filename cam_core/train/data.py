"""The training photos and their labels: class folders, boxes CSVs, wsolevaluation metadata, exclusion lists.

Each reader returns ``(path, class index)`` pairs (``-1``: unlabelled) for :func:`cam_core.train.finetune.finetune`;
``python -m cam_core.train`` picks one by its arguments (:mod:`cam_core.train.cli`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from timm.data import ImageNetInfo

from cam_core.datasets import read_boxes_csv
from cam_core.errors import DatasetError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
Samples = list[tuple[Path, int]]


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_of_folder(name: str, wnids: Sequence[str]) -> int:
    if name.isdigit():
        return int(name)
    if name in wnids:
        return wnids.index(name)
    raise DatasetError(f"`--images`: subfolder {name!r} is neither a WordNet id (n01440764) nor a class index")


def read_image_folder(root: str | Path) -> Samples:
    """``(path, class)`` for an ImageFolder tree, or ``(path, -1)`` for a flat folder of unlabelled photos.

    Raises:
        DatasetError: missing folder, no photos, or a subfolder name that maps to no ImageNet class.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"`--images` {str(root)!r} is not a folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        samples = [(p, -1) for p in _images_in(root)]
    else:
        wnids = list(ImageNetInfo().label_names())
        samples = [(p, _class_of_folder(f.name, wnids)) for f in folders for p in _images_in(f)]
    if not samples:
        raise DatasetError(f"`--images` {str(root)!r} holds no photos ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return samples


def read_boxes_labels(boxes: str | Path, images: str | Path) -> Samples:
    """``(path, class_index)`` per distinct photo of a boxes CSV (see :func:`cam_core.datasets.read_boxes_csv`)."""
    return [(s.path, s.class_index) for s in read_boxes_csv(boxes, images)]


def read_wsol_labels(metadata: str | Path, images: str | Path) -> Samples:
    """``(path, label)`` from wsolevaluation ``image_ids.txt`` + ``class_labels.txt`` (``path,label``).

    Raises:
        DatasetError: a missing file, a malformed line, or an image id without a label (line named).
    """
    root = Path(metadata)
    try:
        ids = [x.strip() for x in (root / "image_ids.txt").read_text(encoding="utf-8").splitlines()]
        lines = (root / "class_labels.txt").read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"`--metadata` {str(root)!r}: {exc}") from exc
    labels: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        name, _, label = line.rpartition(",")
        if not name or not label.strip().isdigit():
            raise DatasetError(f"{root / 'class_labels.txt'}, line {number}: expected `path,label`, got {line!r}")
        labels[name.strip()] = int(label)
    missing = [i for i in ids if i and i not in labels]
    if missing:
        raise DatasetError(f"{root / 'class_labels.txt'}: no label for image id {missing[0]!r}")
    return [(Path(images) / i, labels[i]) for i in ids if i]


def read_exclude(path: str | Path) -> set[str]:
    """File names to drop: one per line, or the first column of a CSV (a ``filename`` header is skipped)."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row and row[0].strip()]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"`--exclude` {str(path)!r}: {exc}") from exc
    names = {Path(row[0].strip()).name for row in rows}
    return names - {"filename"}
