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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from cam_core.errors import DatasetError, InvalidImageError
from cam_core.image import to_rgb_array

CSV_HEADER = ("filename", "class_index", "x0", "y0", "x1", "y1")


@dataclass(frozen=True)
class Sample:
    """One labelled image.

    Attributes:
        path: the photo.
        class_index: GT class in ``[0, K)``.
        boxes: float64 (M, 4) inclusive ``(x0, y0, x1, y1)`` in the file's pixels; M >= 1, or M = 0 for
            a mask-only sample (wsolevaluation's OpenImages layout), whose boxes come from its masks.
        lines: the source line of each box (for messages), or empty.
        masks: instance-mask paths relative to the mask root (OpenImages layout), or empty.
        ignore: the ignore-mask path relative to the mask root, or ``None``.
    """

    path: Path
    class_index: int
    boxes: np.ndarray
    lines: tuple[int, ...] = ()
    masks: tuple[str, ...] = ()
    ignore: str | None = None


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
    if min(box) < 0:
        raise DatasetError(f"{where}: negative box coordinate (pixels start at 0): {box}")
    return name, label, box


def _rows(path: Path, shown: str = "") -> list[tuple[int, list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a UTF-8 BOM (Excel) is dropped
            return [(n, row) for n, row in enumerate(csv.reader(handle), start=1) if any(f.strip() for f in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"Cannot read {shown or path}: {exc}") from exc


def _csv_records(path: Path, shown: str) -> list[tuple[int, str, int, list[float]]]:
    """``(line, filename, class_index, box)`` per row of a boxes CSV; errors name ``shown`` and the line."""
    rows = _rows(path, shown)
    if not rows or tuple(f.strip() for f in rows[0][1]) != CSV_HEADER:
        raise DatasetError(f"{shown}, line {rows[0][0] if rows else 1}: header must be {','.join(CSV_HEADER)}")
    labels: dict[str, tuple[int, int]] = {}
    records = []
    for number, row in rows[1:]:
        where = f"{shown}, line {number}"
        name, label, box = _parse_row(row, where, CSV_HEADER)
        assert label is not None
        first = labels.setdefault(name, (label, number))
        if first[0] != label:
            raise DatasetError(f"{where}: class {label} of {name!r} conflicts with class {first[0]} on line {first[1]}")
        records.append((number, name, label, box))
    return records


def _group(records: Sequence[tuple[int, str, int, list[float]]], paths: Mapping[str, Path]) -> list[Sample]:
    """One :class:`Sample` per distinct filename (in ``paths``), in order of first appearance."""
    grouped: dict[str, list[tuple[int, int, list[float]]]] = {}
    for number, name, label, box in records:
        if name in paths:
            grouped.setdefault(name, []).append((number, label, box))
    return [
        Sample(paths[n], rows[0][1], np.array([b for _, _, b in rows], np.float64), tuple(r[0] for r in rows))
        for n, rows in grouped.items()
    ]


def _name_problem(name: str, bare: bool) -> str:
    """Why a CSV filename cannot be used ("" when it can): NUL bytes, absolute paths, ``..``, or (``bare``)
    any path component at all."""
    if "\x00" in name:
        return "the filename contains a NUL byte"
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if bare and (len(parts) != 1 or name in (".", "..")):
        return "the filename has a path component; uploads are matched by base name only"
    if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
        return "the filename must be relative to the image folder, without '..'"
    return ""


def read_boxes_csv(path: str | Path, images: str | Path) -> list[Sample]:
    """Read ``filename,class_index,x0,y0,x1,y1`` (header required, one row per box, inclusive corners).

    A UTF-8 byte-order mark (as Excel writes) is accepted. Returns one :class:`Sample` per distinct
    filename (relative to ``images``), in order of first appearance, with each box's line in ``lines``.
    Raises :class:`DatasetError` naming the line: unreadable file, wrong header, malformed row, flipped box,
    a negative coordinate, a filename with a NUL byte, absolute or with ``..``, or one file given two classes.
    """
    path = Path(path)
    records = _csv_records(path, str(path))
    for number, name, _, _ in records:
        problem = _name_problem(name, bare=False)
        if problem:
            raise DatasetError(f"{path}, line {number}: {problem}: {name!r}")
    return _group(records, {name: Path(images) / name for _, name, _, _ in records})


def read_boxes_csv_for_uploads(
    path: str | Path, uploads: Mapping[str, str | Path]
) -> tuple[list[Sample], list[dict[str, str]]]:
    """Read a boxes CSV whose filenames are matched, by base name only, to uploaded files.

    Args:
        path: the CSV (format of :func:`read_boxes_csv`); messages name only its base name.
        uploads: base name -> path of each uploaded photo.

    Returns:
        ``(samples, skipped)``: one :class:`Sample` per CSV filename found in ``uploads`` (order of first
        appearance), and ``{"file", "line", "reason"}`` per row that cannot be used: a filename with a NUL
        byte or a path component, or one that matches no upload.

    Raises:
        DatasetError: the CSV itself is unreadable or malformed (named by base name and line).
    """
    path = Path(path)
    records = _csv_records(path, path.name)
    usable, skipped = [], []
    for record in records:
        number, name = record[0], record[1]
        problem = _name_problem(name, bare=True) or ("" if name in uploads else "no uploaded photo has this name")
        if problem:
            skipped.append({"file": repr(name)[1:-1], "line": str(number), "reason": problem})
        else:
            usable.append(record)
    return _group(usable, {name: Path(uploads[name]) for _, name, _, _ in usable}), skipped


def fit_boxes(boxes: np.ndarray, lines: Sequence[int], size: tuple[int, int]) -> tuple[np.ndarray, list[str]]:
    """Check boxes against their photo: clip those that stick out, refuse those wholly outside.

    A coordinate in ``[W - 1, W)`` is inside (pixel ``W - 1``; sub-pixel corners as in rescaled boxes).

    Args:
        boxes: float (M, 4) inclusive ``(x0, y0, x1, y1)`` in stored pixels, non-negative.
        lines: source line of each box (may be empty), for messages.
        size: the photo's ``(H, W)``.

    Returns:
        ``(fitted, warnings)``: float64 (M, 4) boxes clipped to ``[0, W - 1] x [0, H - 1]`` where a
        coordinate reached ``W`` / ``H`` or below 0, and one message per clipped box naming its line.

    Raises:
        InvalidImageError: a box lies wholly outside the photo (its line named).
    """
    height, width = size
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    where = [f"line {n}: " if n else "" for n in (list(lines) if len(lines) == len(b) else [0] * len(b))]
    outside = (b[:, 0] > width - 1) | (b[:, 1] > height - 1) | (b[:, 2] < 0) | (b[:, 3] < 0)
    for i in np.flatnonzero(outside)[:1]:
        raise InvalidImageError(f"{where[i]}box {b[i].tolist()} lies outside the {width}x{height} photo")
    beyond = (b[:, 2] >= width) | (b[:, 3] >= height) | (b[:, :2] < 0).any(axis=1)
    warnings = [
        f"{where[i]}box {b[i].tolist()} extends beyond the {width}x{height} photo: clipped"
        for i in np.flatnonzero(beyond)
    ]
    fitted = np.clip(b, 0, [width - 1, height - 1, width - 1, height - 1])
    return fitted, warnings


def _wsol_masks(rows: list[tuple[int, list[str]]], where: str) -> dict[str, tuple[list[str], str | None]]:
    """OpenImages ``localization.txt``: ``path,mask,ignore`` lines -> {path: (mask paths, ignore path)}.

    As wsolevaluation's ``get_mask_paths``: one line per instance mask; the image's first line names its
    ignore mask, later lines leave that field empty.
    """
    masks: dict[str, tuple[list[str], str | None]] = {}
    for number, row in rows:
        if len(row) != 3 or not row[0].strip() or not row[1].strip():
            raise DatasetError(f"{where}, line {number}: expected `path,mask,ignore`, got {','.join(row)!r}")
        name, mask, ignore = (f.strip() for f in row)
        entry = masks.setdefault(name, ([], ignore or None))
        entry[0].append(mask)
    return masks


def read_wsol_metadata(metadata: str | Path, images: str | Path) -> list[Sample]:
    """Read clovaai/wsolevaluation metadata: ``image_ids.txt`` (one relative path a line),
    ``class_labels.txt`` (``path,label``) and ``localization.txt``: ``path,x0,y0,x1,y1`` (one line per
    box; CUB, ImageNet) or ``path,mask,ignore`` (one line per instance mask; OpenImages, giving mask-only
    samples whose ``masks``/``ignore`` are relative to the mask root, see :func:`load_wsol_masks`).

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
    rows, where = _rows(root / "localization.txt"), f"{root / 'localization.txt'}"
    masks = _wsol_masks(rows, where) if rows and len(rows[0][1]) == 3 else {}
    boxes: dict[str, list[list[float]]] = {}
    for number, row in [] if masks else rows:
        name, _, box = _parse_row(row, f"{where}, line {number}", ("path", "x0", "y0", "x1", "y1"))
        boxes.setdefault(name, []).append(box)
    samples = []
    for number, image_id in ids:
        if image_id not in labels or image_id not in (masks or boxes):
            missing = "class_labels.txt" if image_id not in labels else "localization.txt"
            raise DatasetError(f"{root / 'image_ids.txt'}, line {number}: {image_id!r} has no entry in {missing}")
        path, label = Path(images) / image_id, labels[image_id]
        if masks:
            instance, ignore = masks[image_id]
            samples.append(Sample(path, label, np.zeros((0, 4)), masks=tuple(instance), ignore=ignore))
        else:
            samples.append(Sample(path, label, np.array(boxes[image_id], np.float64)))
    return samples


def load_wsol_masks(root: str | Path, sample: Sample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ground truth of a mask sample, as wsolevaluation's ``get_mask`` before its resize.

    Each instance PNG counts where nonzero; the instances are united; the ignore mask keeps only pixels
    outside every instance (``ignore_box & ~instances``), and those pixels count neither as positive nor as
    negative in PxAP. (Nearest-neighbour resizing commutes with these pixel-wise operations, so doing them
    at the file's resolution equals wsolevaluation's order.)

    Returns:
        ``(foreground, ignore, boxes)``: bool (H, W) each, in the masks' stored pixels, disjoint; and float64
        (N, 4) the inclusive bounding box of each non-empty instance (box metrics of mask-only samples: this
        project's extension, wsolevaluation scores OpenImages by PxAP only).

    Raises:
        InvalidImageError: a missing or unreadable mask, or masks of different sizes.
    """
    base = Path(root)
    instances = [load_stored_image(base / name)[:, :, 0] > 0 for name in sample.masks]
    if not instances:
        raise InvalidImageError(f"{sample.path.name}: no instance mask listed")
    ignore = load_stored_image(base / sample.ignore)[:, :, 0] > 0 if sample.ignore else np.zeros_like(instances[0])
    if any(m.shape != ignore.shape for m in instances):
        raise InvalidImageError(f"{sample.path.name}: its instance and ignore masks differ in size")
    foreground = np.logical_or.reduce(instances)  # (H, W)
    return foreground, ignore & ~foreground, boxes_of_masks(instances)


def boxes_of_masks(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Inclusive bounding box of each non-empty bool (H, W) mask: float64 (N, 4) ``(x0, y0, x1, y1)``."""
    boxes = []
    for mask in masks:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size:
            boxes.append([cols[0], rows[0], cols[-1], rows[-1]])
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)
