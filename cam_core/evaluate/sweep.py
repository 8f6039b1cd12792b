"""The exact, vectorised threshold sweep of MaxBoxAcc (wsolevaluation's ``compute_bboxes_from_scoremaps``).

The sweep is vectorised but exact: every pixel gets the number of thresholds strictly below its value
(one ``searchsorted``; on 8 bits, below its quantised value), so ``mask_k = level > k``. Thresholds
whose mask equals the previous one (no pixel value falls between them) reuse its boxes, empty masks need
no contour pass, each contour pass runs on the crop around the mask only (the crop keeps a zero margin,
so contours, their order and areas are those of the full image), and all IoUs of an image are one
:func:`box_iou` call.
"""

from __future__ import annotations

import cv2
import numpy as np

from cam_core.boxes import box_iou
from cam_core.errors import ParameterError
from cam_core.threshold import Thresholding, quantize


def sweep_thresholds(step: float = 0.01) -> np.ndarray:
    """The theta grid ``np.arange(0, 1, step)`` of wsolevaluation (its CLI: 0.01; its training code: 0.001).

    Returns:
        float64 (T,) ascending, in ``[0, 1)``.

    Raises:
        ParameterError: ``step`` is not in ``(0, 1]``.
    """
    if not (isinstance(step, (int, float)) and 0.0 < float(step) <= 1.0):
        raise ParameterError(f"`step` must be a number in (0, 1], got {step!r}")
    return np.arange(0, 1, float(step))


def check_boxes(boxes: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if array.shape[0] == 0:
        raise ParameterError(f"`{name}` must hold at least one (x0, y0, x1, y1) box")
    return array


def _contour_boxes(
    mask: np.ndarray, offset: tuple[int, int], size: tuple[int, int], out: list[tuple[int, int, int, int]]
) -> int:
    """Append the boxes of every contour of a cropped mask (image coordinates) to ``out``.

    Returns:
        The position in ``out`` of the largest contour's box (first one on ties, as ``max``).
    """
    height, width = size
    contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE, offset=offset)[-2]
    start = len(out)
    if not contours:
        out.append((0, 0, 0, 0))
        return start
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        out.append((x, y, min(x + w, width - 1), min(y + h, height - 1)))  # wsolevaluation's rule
    if len(contours) == 1:
        return start
    return start + int(np.argmax([cv2.contourArea(c) for c in contours]))


def _extent(line_max: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last index where ``line_max > k``, for every k < count (masks are nested in k)."""
    first = np.searchsorted(np.maximum.accumulate(line_max), np.arange(count), side="right")  # (count,)
    last = line_max.size - 1 - np.searchsorted(np.maximum.accumulate(line_max[::-1]), np.arange(count), "right")
    return first, last


def _levels(scoremap: np.ndarray, thresholds: np.ndarray, thresholding: Thresholding = "8bit") -> np.ndarray:
    """Per pixel, the number of thresholds strictly below its value, so that ``mask_k = levels > k``.

    On 8 bits the value is ``q = uint8(255 · scoremap)`` and threshold k is ``int(theta_k · max(q))``
    (non-decreasing in k; equal neighbours give equal masks).
    """
    cam = np.asarray(scoremap)
    thr = np.asarray(thresholds, dtype=np.float64)
    if cam.ndim != 2:
        raise ParameterError(f"`scoremap` must be 2-D (H, W), got shape {cam.shape}")
    if thr.ndim != 1 or thr.size == 0 or (np.diff(thr) <= 0).any():
        raise ParameterError("`thresholds` must be a non-empty strictly ascending 1-D array")
    if thresholding == "8bit":
        quantized = quantize(cam)  # (H, W) uint8, in the map's own dtype as wsolevaluation
        integer = (thr * float(quantized.max())).astype(np.int64)  # (T,) int(theta · max q), as cv2's thresh
        levels = np.searchsorted(integer, quantized, side="left")  # (H, W): #{k: integer_k < q}
    elif thresholding == "float":
        levels = np.searchsorted(thr.astype(np.float32), cam.astype(np.float32), side="left")  # float32 `cam > theta`
    else:
        raise ParameterError(f"`thresholding` must be '8bit' or 'float', got {thresholding!r}")
    return levels.astype(np.uint8 if thr.size < 256 else np.int32)


def sweep_boxes(
    scoremap: np.ndarray, thresholds: np.ndarray, thresholding: Thresholding = "8bit"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Boxes of the foreground at every theta, each distinct mask boxed once.

    Args:
        scoremap: float (H, W) in ``[0, 1]`` (quantised in its own dtype on 8 bits; compared in float32 otherwise).
        thresholds: float (T,) strictly ascending.
        thresholding: ``"8bit"`` (wsolevaluation) or ``"float"`` (``scoremap > theta``).

    Returns:
        ``(boxes, starts, largest, group_of)`` flattened over the G distinct masks: ``boxes`` int64
        (N, 4) all contour boxes (mask g owns rows ``starts[g]:starts[g + 1]``), ``starts`` int64 (G,),
        ``largest`` int64 (G,) the row of each mask's largest contour, ``group_of`` int64 (T,) the mask
        of each threshold. An empty mask has the single box ``(0, 0, 0, 0)``.
    """
    return boxes_from_levels(_levels(scoremap, thresholds, thresholding), len(thresholds))


def boxes_from_levels(levels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`sweep_boxes` from per-pixel levels: ``mask_k = levels > k`` for ``k < count``.

    Args:
        levels: integer (H, W) in ``[0, count]``, e.g. ``searchsorted(thresholds_k, value, "left")`` for any
            non-decreasing thresholds (equal neighbours give equal masks).
        count: T, the number of thresholds.
    """
    height, width = levels.shape
    row_max, col_max = levels.max(axis=1), levels.max(axis=0)  # (H,), (W,)
    changes = np.bincount(levels.ravel(), minlength=count + 1).tolist()  # pixels leaving the mask at each k
    top = int(row_max.max())  # mask_k is empty for k >= top
    (row0, row1), (col0, col1) = _extent(row_max, top), _extent(col_max, top)  # bounding rows/cols of mask_k
    r0s, r1s = np.maximum(row0 - 1, 0).tolist(), np.minimum(row1 + 2, height).tolist()  # 1-pixel zero margin
    c0s, c1s = np.maximum(col0 - 1, 0).tolist(), np.minimum(col1 + 2, width).tolist()
    boxes: list[tuple[int, int, int, int]] = []
    starts: list[int] = []
    largest: list[int] = []
    group_of = np.empty(count, dtype=np.int64)
    for k in range(count):
        if k == top:  # the first empty mask; later ones share it
            starts.append(len(boxes))
            largest.append(len(boxes))
            boxes.append((0, 0, 0, 0))
        elif k < top and (k == 0 or changes[k] > 0):  # otherwise mask_k == mask_{k-1}
            r0, r1, c0, c1 = r0s[k], r1s[k], c0s[k], c1s[k]
            crop = (levels[r0:r1, c0:c1] > k).view(np.uint8)  # (r1 - r0, c1 - c0)
            starts.append(len(boxes))
            largest.append(_contour_boxes(crop, (c0, r0), (height, width), boxes))
        group_of[k] = len(starts) - 1
    return np.array(boxes, dtype=np.int64), np.array(starts), np.array(largest), group_of


def sweep_ious(
    scoremap: np.ndarray, gt_boxes: np.ndarray, thresholds: np.ndarray, thresholding: Thresholding = "8bit"
) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU with the ground truth at every threshold, largest contour and all contours.

    Args:
        scoremap: float (H, W) in ``[0, 1]``.
        gt_boxes: (M, 4) inclusive ``(x0, y0, x1, y1)`` in scoremap pixels, M >= 1.
        thresholds: float (T,) strictly ascending.
        thresholding: ``"8bit"`` (wsolevaluation) or ``"float"``.

    Returns:
        ``(largest, best)``: float64 (T,) each, in ``[0, 1]``; ``largest[k]`` is the best IoU of the
        largest-contour box over GT boxes, ``best[k]`` the best over all contour boxes x GT boxes.
    """
    return ious_from_levels(_levels(scoremap, thresholds, thresholding), len(thresholds), gt_boxes)


def ious_from_levels(levels: np.ndarray, count: int, gt_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sweep_ious` from per-pixel levels (see :func:`boxes_from_levels`): float64 (T,) twice."""
    gt = check_boxes(gt_boxes, "gt_boxes")
    boxes, starts, largest, group_of = boxes_from_levels(levels, count)
    per_box = box_iou(boxes, gt).max(axis=1)  # (N,)
    return per_box[largest][group_of], np.maximum.reduceat(per_box, starts)[group_of]
