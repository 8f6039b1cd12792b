"""Labelled image sets for evaluation: a boxes CSV or the clovaai/wsolevaluation metadata layout.

Boxes are ``(x0, y0, x1, y1)`` in pixels of the stored file, inclusive corners, one row per box.
Malformed input raises :class:`~cam_core.errors.DatasetError` naming the file and line.

Photos are read in *stored* pixel order (:func:`load_stored_image`): an EXIF orientation tag is ignored,
because data-set boxes and masks refer to the stored pixels (as in wsolevaluation, whose loaders call
``PIL.Image.open(...).convert("RGB")``). The app keeps rotating user uploads upright.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cam_core.errors import DatasetError, InvalidImageError
from cam_core.image import to_rgb_array

CSV_HEADER = ("filename", "class_index", "x0", "y0", "x1", "y1")


@dataclass(frozen=True)
class Sample:
    """One labelled image: ``path``, GT class ``class_index`` in ``[0, K)``, ``boxes`` float64 (M, 4)
    inclusive ``(x0, y0, x1, y1)`` in the file's pixels, M >= 1."""

    path: Path
    class_index: int
    boxes: np.ndarray


def load_stored_image(path: str | Path, max_pixels: int = 10**12) -> np.ndarray:
    """Decode an image file in stored pixel order, ignoring any EXIF orientation.

    Args:
        path: image file.
        max_pixels: downscale above this many pixels (default: never, so boxes keep their meaning).

    Returns:
        uint8 (H, W, 3) RGB, (H, W) as stored in the file (an orientation-6 JPEG stays sideways).

    Raises:
        InvalidImageError: missing, unreadable, not an image, damaged, or a decompression bomb.
    """
    try:
        with Image.open(path) as image:
            image.load()
            stored = image.copy()  # drops the EXIF cache; ``info`` is replaced below
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(f"Cannot decode image {Path(path).name!r}: {exc}") from exc
    # Keep only transparency: without "exif" / "xmp" metadata, to_rgb_array's exif_transpose is a no-op.
    stored.info = {k: v for k, v in stored.info.items() if k == "transparency"}
    return to_rgb_array(stored, max_pixels=max_pixels)


def _parse_row(fields: Sequence[str], where: str, columns: Sequence[str]) -> tuple[str, int | None, list[float]]:
    """``filename[, class_index], x0, y0, x1, y1`` -> checked values (class ``None`` when not a column)."""
    if len(fields) != len(columns):
        raise DatasetError(f"{where}: expected {len(columns)} fields ({', '.join(columns)}), got {len(fields)}")
    name, values = fields[0].strip(), list(fields[1:])
    if not name:
        raise DatasetError(f"{where}: empty filename")
    label = None
    if "class_index" in columns:
        text = values.pop(0).strip()
        if not text.isdigit():
            raise DatasetError(f"{where}: `class_index` must be a non-negative integer, got {text!r}")
        label = int(text)
    try:
        box = [float(v) for v in values]
    except ValueError:
        raise DatasetError(f"{where}: x0, y0, x1, y1 must be numbers, got {values}") from None
    if not all(math.isfinite(v) for v in box):
        raise DatasetError(f"{where}: x0, y0, x1, y1 must be finite, got {values}")
    if box[2] < box[0] or box[3] < box[1]:
        raise DatasetError(f"{where}: flipped box (x1 < x0 or y1 < y0): {box}")
    return name, label, box


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [(n, row) for n, row in enumerate(csv.reader(handle), start=1) if any(f.strip() for f in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"Cannot read {path}: {exc}") from exc


def read_boxes_csv(path: str | Path, images: str | Path) -> list[Sample]:
    """Read ``filename,class_index,x0,y0,x1,y1`` (header required, one row per box, inclusive corners).

    Returns one :class:`Sample` per distinct filename (relative to ``images``), in order of first
    appearance. Raises :class:`DatasetError` naming the line: unreadable file, wrong header, malformed
    row, flipped box, or one file given two classes.
    """
    path = Path(path)
    rows = _rows(path)
    if not rows or tuple(f.strip() for f in rows[0][1]) != CSV_HEADER:
        raise DatasetError(f"{path}, line {rows[0][0] if rows else 1}: header must be {','.join(CSV_HEADER)}")
    labels: dict[str, tuple[int, int]] = {}
    boxes: dict[str, list[list[float]]] = {}
    for number, row in rows[1:]:
        where = f"{path}, line {number}"
        name, label, box = _parse_row(row, where, CSV_HEADER)
        assert label is not None
        first = labels.setdefault(name, (label, number))
        if first[0] != label:
            raise DatasetError(f"{where}: class {label} of {name!r} conflicts with class {first[0]} on line {first[1]}")
        boxes.setdefault(name, []).append(box)
    return [Sample(Path(images) / n, labels[n][0], np.array(b, dtype=np.float64)) for n, b in boxes.items()]


def read_wsol_metadata(metadata: str | Path, images: str | Path) -> list[Sample]:
    """Read clovaai/wsolevaluation metadata: ``image_ids.txt`` (one relative path a line),
    ``class_labels.txt`` (``path,label``) and ``localization.txt`` (``path,x0,y0,x1,y1``, one line per box).

    Raises:
        DatasetError: a missing file, malformed line (named), or an image id without label or box.
    """
    root = Path(metadata)
    ids = [(n, row[0].strip()) for n, row in _rows(root / "image_ids.txt")]
    labels: dict[str, int] = {}
    for number, row in _rows(root / "class_labels.txt"):
        where = f"{root / 'class_labels.txt'}, line {number}"
        if len(row) != 2 or not row[1].strip().isdigit():
            raise DatasetError(f"{where}: expected `path,label` with an integer label, got {','.join(row)!r}")
        labels[row[0].strip()] = int(row[1])
    boxes: dict[str, list[list[float]]] = {}
    for number, row in _rows(root / "localization.txt"):
        name, _, box = _parse_row(row, f"{root / 'localization.txt'}, line {number}", ("path", "x0", "y0", "x1", "y1"))
        boxes.setdefault(name, []).append(box)
    samples = []
    for number, image_id in ids:
        if image_id not in labels or image_id not in boxes:
            missing = "class_labels.txt" if image_id not in labels else "localization.txt"
            raise DatasetError(f"{root / 'image_ids.txt'}, line {number}: {image_id!r} has no entry in {missing}")
        samples.append(Sample(Path(images) / image_id, labels[image_id], np.array(boxes[image_id], np.float64)))
    return samples
