"""Label maps as files: palette PNGs of per-image slots with JSON sidecars, and the mIoU of label maps.

The encoding (``python -m cam_core.segment`` writes it, the app's download too): ``<stem>.png`` is a palette PNG
(mode ``P``, Pascal VOC colours, :func:`palette`) of per-image *slots* at the photo's own size, 0 = background and
slot i > 0 = the class of entry i of ``slots`` in the sidecar ``<stem>.json`` (``{"slot": i, "class_index": c,
"name": ..., ...}``, ``class_index`` null for slot 0). :func:`read_label_png` turns a pair back into
``class index + 1`` labels; :class:`MeanIoU` scores predicted against ground-truth label maps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from cam_core.errors import DatasetError, InvalidImageError


def palette(n: int) -> np.ndarray:
    """Colours of slots 0..n: the Pascal VOC colour map (slot 0 black), uint8 (n + 1, 3) RGB."""
    slots = np.arange(n + 1)
    colours = np.zeros((n + 1, 3), np.uint8)
    for bit in range(8):  # VOC: bit b of the slot's three low bits goes to bit 7 - b of R, G, B
        for channel in range(3):
            colours[:, channel] |= (((slots >> (3 * bit + channel)) & 1) << (7 - bit)).astype(np.uint8)
    return colours


def colorize(labels: np.ndarray, n: int | None = None) -> np.ndarray:
    """Palette colours of a slot map: uint8 (H, W) slots -> uint8 (H, W, 3) RGB."""
    return palette(int(labels.max()) if n is None else n)[labels]


def write_label_png(path: Path, slots: np.ndarray, n: int) -> None:
    """Save a uint8 (H, W) slot map (values in ``[0, n]``) as a palette PNG with VOC colours."""
    image = Image.fromarray(np.ascontiguousarray(slots, dtype=np.uint8), mode="P")
    colours = np.zeros((256, 3), np.uint8)
    colours[: n + 1] = palette(n)
    image.putpalette(colours.ravel().tolist())
    image.save(path)


def read_label_png(path: Path) -> np.ndarray:
    """Read ``<stem>.png`` + ``<stem>.json`` into int32 (H, W): 0 = background, ``class index + 1`` otherwise.

    Raises:
        DatasetError: the sidecar JSON is missing or malformed, or a pixel uses an undeclared slot.
    """
    sidecar = path.with_suffix(".json")
    try:
        entries = json.loads(sidecar.read_text())["slots"]
        lookup = {int(e["slot"]): 0 if e["class_index"] is None else int(e["class_index"]) + 1 for e in entries}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"{sidecar}: needs a JSON sidecar with 'slots' [{{slot, class_index}}] ({error})") from error
    with Image.open(path) as image:
        slots = np.asarray(image if image.mode in ("P", "L") else image.convert("L"))
    table = np.full(256, -1, np.int32)
    for slot, label in lookup.items():
        table[slot] = label
    labels = table[slots]
    if (labels < 0).any():
        raise DatasetError(f"{path}: slot {int(slots[labels < 0][0])} is not declared in {sidecar.name}")
    return labels


class MeanIoU:
    """Dataset-wide confusion matrix of ``class index + 1`` labels; :meth:`compute` gives per-label IoU and mIoU."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, int], int] = {}

    def accumulate(self, truth: np.ndarray, prediction: np.ndarray) -> None:
        """Add one image: int (H, W) label maps of equal shape (0 = background, class + 1)."""
        if truth.shape != prediction.shape:
            raise InvalidImageError(f"ground truth {truth.shape} and prediction {prediction.shape} differ in size")
        pairs, counts = np.unique(np.stack([truth.ravel(), prediction.ravel()]), axis=1, return_counts=True)
        for (t, p), count in zip(pairs.T.tolist(), counts.tolist(), strict=True):
            self.counts[(t, p)] = self.counts.get((t, p), 0) + count

    def compute(self) -> tuple[float, dict[int, float]]:
        """``(mIoU, {label: IoU})`` in percent over the labels present in the ground truth."""
        present = sorted({t for t, _ in self.counts})
        ious: dict[int, float] = {}
        for label in present:
            tp = self.counts.get((label, label), 0)
            fn = sum(c for (t, p), c in self.counts.items() if t == label and p != label)
            fp = sum(c for (t, p), c in self.counts.items() if p == label and t != label)
            ious[label] = 100.0 * tp / (tp + fp + fn)
        return (float(np.mean(list(ious.values()))) if ious else float("nan")), ious
