"""Binary masks to boxes, and IoU, with the conventions of clovaai/wsolevaluation.

Box convention everywhere in this project: ``(x0, y0, x1, y1)`` in pixels of the image the mask or
box refers to, **inclusive** corners: a box's width is ``x1 - x0 + 1``. From a mask:
``cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)`` -> ``cv2.boundingRect`` per contour ->
``(x, y, min(x + w, W - 1), min(y + h, H - 1))`` (wsolevaluation's rule, kept exactly so that
metrics match the literature). An empty mask gives the single box ``(0, 0, 0, 0)``.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from cam_core.errors import ParameterError

EMPTY_BOX = np.zeros((1, 4), dtype=np.int64)


def _contours(mask: np.ndarray) -> list[np.ndarray]:
    if mask.ndim != 2:
        raise ParameterError(f"`mask` must be 2-D (H, W), got shape {mask.shape}")
    found = cv2.findContours(mask.astype(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    return list(found[-2])


def _rect_to_box(contour: np.ndarray, height: int, width: int) -> list[int]:
    x, y, w, h = cv2.boundingRect(contour)
    return [x, y, min(x + w, width - 1), min(y + h, height - 1)]


def mask_to_boxes(mask: np.ndarray, largest_only: bool = False) -> np.ndarray:
    """Boxes around the contours of a binary mask.

    Args:
        mask: bool or uint8 (H, W); nonzero is foreground.
        largest_only: keep only the contour with the largest ``cv2.contourArea`` (GT-known Loc,
            MaxBoxAcc v1); otherwise one box per contour (MaxBoxAccV2).

    Returns:
        int64 (N, 4) boxes ``(x0, y0, x1, y1)``, inclusive; ``[[0, 0, 0, 0]]`` for an empty mask.
    """
    height, width = mask.shape[:2]
    contours = _contours(mask)
    if not contours:
        return EMPTY_BOX.copy()
    if largest_only:
        contours = [max(contours, key=cv2.contourArea)]
    return np.asarray([_rect_to_box(c, height, width) for c in contours], dtype=np.int64)


def largest_box(mask: np.ndarray) -> np.ndarray:
    """The box of the largest contour: int64 (4,) ``(x0, y0, x1, y1)``, inclusive."""
    return mask_to_boxes(mask, largest_only=True)[0]


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU with inclusive corners.

    Args:
        boxes_a: (N, 4) or (4,) ``(x0, y0, x1, y1)``, x1 >= x0 and y1 >= y0.
        boxes_b: (M, 4) or (4,).

    Returns:
        float64 (N, M) in ``[0, 1]``.

    Raises:
        ParameterError: a box has ``x1 < x0`` or ``y1 < y0``.
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    for name, boxes in (("boxes_a", a), ("boxes_b", b)):
        if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
            raise ParameterError(f"`{name}` has a flipped box (x1 < x0 or y1 < y0): {boxes.tolist()}")
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])  # (N, M)
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0 + 1, 0, None) * np.clip(iy1 - iy0 + 1, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)  # (N,)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)  # (M,)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def scale_boxes(
    boxes: np.ndarray,
    from_size: tuple[int, int],
    to_size: tuple[int, int],
    rounding: Literal["round", "truncate"] = "round",
) -> np.ndarray:
    """Rescale boxes between two image sizes ``(H, W)`` (stretch geometry), clipped to the target.

    Args:
        boxes: float (N, 4) or (4,) inclusive ``(x0, y0, x1, y1)`` in ``from_size`` pixels.
        from_size, to_size: ``(H, W)``.
        rounding: ``"round"`` to the nearest pixel (display), or ``"truncate"`` toward zero as
            wsolevaluation's ``resize_bbox`` (``int(x0 * W1 / W0)``, same operation order): evaluation.

    Returns:
        int64 (N, 4) inclusive boxes in ``to_size`` pixels.

    Raises:
        ParameterError: unknown ``rounding``.
    """
    (h0, w0), (h1, w1) = from_size, to_size
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)  # (N, 4)
    if rounding == "round":
        b = np.round(b * np.array([w1 / w0, h1 / h0, w1 / w0, h1 / h0])).astype(np.int64)
    elif rounding == "truncate":  # x * W1 / W0 in wsolevaluation's operation order, then int()
        b = np.trunc(b * np.array([w1, h1, w1, h1], np.float64) / np.array([w0, h0, w0, h0], np.float64))
        b = b.astype(np.int64)
    else:
        raise ParameterError(f"`rounding` must be 'round' or 'truncate', got {rounding!r}")
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w1 - 1)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h1 - 1)
    return b
