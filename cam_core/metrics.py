"""WSOL metrics with the conventions of clovaai/wsolevaluation, as accumulate-then-compute evaluators.

Per image, :meth:`Evaluator.accumulate` takes the normalised score map (the map the threshold sweep runs
on: min-max CAM for MaS, ``min(1, cam / P_p)`` for PaS), the ground-truth boxes, the box of the
configuration's fixed threshold and whether the top-1 class was right. :meth:`Evaluator.compute` returns
percentages in ``[0, 100]``:

* GT-known Loc: largest-contour box at the fixed threshold has IoU >= 0.5 with some GT box.
* Top-1 Loc: GT-known hit *and* top-1 classification correct.
* MaxBoxAcc (v1): max over theta of the share of images whose largest-contour box has IoU >= 0.5.
* MaxBoxAccV2: mean over delta in {0.3, 0.5, 0.7} of the max over theta (chosen per delta) of the share
  of images whose best IoU over *all* contour boxes x GT boxes is >= delta.
* PxAP: pixel average precision of the score map against GT masks, when masks are given.

Masks are wsolevaluation's 8-bit rule by default, ``uint8(255 · scoremap) > int(theta · max(uint8 map))``
over ``theta in np.arange(0, 1, step)`` (float64, as its ``cam_threshold_list``), or ``scoremap > theta``
with ``thresholding="float"``; boxes come from :func:`cam_core.boxes.mask_to_boxes`'s rule; IoU is
:func:`cam_core.boxes.box_iou` (inclusive corners). PxAP histograms the float map (as wsolevaluation).

The sweep is vectorised but exact: every pixel gets the number of thresholds strictly below its value
(one ``searchsorted``; on 8 bits, below its quantised value), so ``mask_k = level > k``. Thresholds
whose mask equals the previous one (no pixel value falls between them) reuse its boxes, empty masks need
no contour pass, each contour pass runs on the crop around the mask only (the crop keeps a zero margin,
so contours, their order and areas are those of the full image), and all IoUs of an image are one
:func:`box_iou` call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from cam_core.boxes import box_iou
from cam_core.errors import ParameterError
from cam_core.threshold import Thresholding, quantize

DEFAULT_IOU_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
"""MaxBoxAccV2's IoU thresholds delta."""


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


def _check_boxes(boxes: np.ndarray, name: str) -> np.ndarray:
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
    levels = _levels(scoremap, thresholds, thresholding)
    height, width = levels.shape
    count = len(thresholds)
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
    gt = _check_boxes(gt_boxes, "gt_boxes")
    boxes, starts, largest, group_of = sweep_boxes(scoremap, thresholds, thresholding)
    per_box = box_iou(boxes, gt).max(axis=1)  # (N,)
    return per_box[largest][group_of], np.maximum.reduceat(per_box, starts)[group_of]


@dataclass(frozen=True)
class LocalizationMetrics:
    """What :meth:`Evaluator.compute` returns; every accuracy is a percentage in ``[0, 100]``.

    Attributes:
        n_images: images accumulated.
        gt_known_loc: GT-known Loc at the fixed threshold.
        top1_loc: Top-1 Loc, or ``None`` when no top-1 result was given.
        maxboxacc_v1: MaxBoxAcc (delta 0.5, largest contour); at the fixed threshold when ``sweep`` is off.
        maxboxacc_v2: mean of ``maxboxacc_v2_by_iou``.
        maxboxacc_v2_by_iou: ``{"30": ..., "50": ..., "70": ...}`` (keys: delta in percent).
        best_theta: theta achieving each maximum, keys ``"v1"`` and the delta keys (empty without sweep).
        thresholds: the theta grid (empty without sweep).
        curves: per-theta accuracy lists, keys ``"v1"`` and the delta keys (empty without sweep).
        pxap: pixel average precision, or ``None`` when no GT mask was given.
        mask_iou: mean IoU of the configuration's own mask with the GT mask, or ``None`` without GT masks.
        sweep: whether the accuracies are maxima over the theta sweep.
    """

    n_images: int
    gt_known_loc: float
    top1_loc: float | None
    maxboxacc_v1: float
    maxboxacc_v2: float
    maxboxacc_v2_by_iou: dict[str, float]
    best_theta: dict[str, float] = field(default_factory=dict)
    thresholds: list[float] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)
    pxap: float | None = None
    sweep: bool = True
    mask_iou: float | None = None

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        """JSON-ready dict; ``curves`` gains the ``"thresholds"`` list; numbers rounded to ``digits``."""

        def r(value: float | None) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "gt_known_loc": r(self.gt_known_loc),
            "top1_loc": r(self.top1_loc),
            "maxboxacc_v1": r(self.maxboxacc_v1),
            "maxboxacc_v2": r(self.maxboxacc_v2),
            "maxboxacc_v2_by_iou": {k: r(v) for k, v in self.maxboxacc_v2_by_iou.items()},
            "best_theta": self.best_theta,
            "curves": {"thresholds": self.thresholds} | {k: [r(v) for v in c] for k, c in self.curves.items()},
            "pxap": r(self.pxap),
            "mask_iou": r(self.mask_iou),
            "sweep": self.sweep,
            "n_images": self.n_images,
        }


class Evaluator:
    """Accumulates one configuration's localisation results image by image.

    Args:
        step: theta grid step of the sweep (wsolevaluation's CLI: 0.01; its training code: 0.001).
        iou_thresholds: MaxBoxAccV2's deltas.
        v1_iou: MaxBoxAcc v1's and GT-known's delta.
        sweep: ``False`` for maps that can only be evaluated at their fixed threshold (e.g. after CRF):
            pass ``fixed_boxes`` instead of a scoremap; v1/v2 are then the accuracies at that threshold.
        thresholding: the sweep's comparison, ``"8bit"`` (wsolevaluation, default) or ``"float"``.

    Example:
        >>> ev = Evaluator()
        >>> ev.accumulate(scoremap, gt_boxes, fixed_box=box, top1_correct=True)  # doctest: +SKIP
        >>> ev.compute().maxboxacc_v2  # doctest: +SKIP
    """

    def __init__(
        self,
        step: float = 0.01,
        iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
        v1_iou: float = 0.5,
        sweep: bool = True,
        thresholding: Thresholding = "8bit",
    ) -> None:
        if thresholding not in ("8bit", "float"):
            raise ParameterError(f"`thresholding` must be '8bit' or 'float', got {thresholding!r}")
        self.thresholding = thresholding
        self.thresholds = sweep_thresholds(step) if sweep else np.zeros(1)
        self.iou_thresholds = np.asarray(iou_thresholds, dtype=np.float64)
        if self.iou_thresholds.ndim != 1 or self.iou_thresholds.size == 0:
            raise ParameterError("`iou_thresholds` must be a non-empty sequence of numbers in (0, 1]")
        if not ((self.iou_thresholds > 0) & (self.iou_thresholds <= 1)).all() or not 0 < v1_iou <= 1:
            raise ParameterError("`iou_thresholds` and `v1_iou` must lie in (0, 1]")
        self.v1_iou = float(v1_iou)
        self.sweep = sweep
        self.reset()

    def reset(self) -> None:
        """Forget every accumulated image."""
        size = self.thresholds.size
        self._n = 0
        self._gt_known = 0
        self._top1 = 0
        self._top1_given = 0
        self._v1_hits = np.zeros(size, dtype=np.int64)  # (T,)
        self._v2_hits = np.zeros((self.iou_thresholds.size, size), dtype=np.int64)  # (D, T)
        edges = np.append(self.thresholds.astype(np.float64), [1.0, 2.0, 3.0]) if self.sweep else np.zeros(0)
        self._edges = edges  # PxAP histogram edges, as wsolevaluation's MaskEvaluator
        self._pos_hist = np.zeros(max(edges.size - 1, 0), dtype=np.float64)
        self._neg_hist = np.zeros(max(edges.size - 1, 0), dtype=np.float64)
        self._mask_ious: list[float] = []

    def accumulate(
        self,
        scoremap: np.ndarray | None,
        gt_boxes: np.ndarray,
        fixed_box: np.ndarray,
        top1_correct: bool | None = None,
        gt_mask: np.ndarray | None = None,
        fixed_boxes: np.ndarray | None = None,
        pred_mask: np.ndarray | None = None,
    ) -> None:
        """Add one image.

        Args:
            scoremap: float (H, W) in ``[0, 1]``, the map the sweep thresholds; ``None`` when ``sweep`` is off.
            gt_boxes: (M, 4) inclusive GT boxes in scoremap pixels, M >= 1.
            fixed_box: (4,) largest-contour box at the configuration's own threshold.
            top1_correct: whether the top-1 class is the GT class (``None``: Top-1 Loc not reported).
            gt_mask: bool (H, W) foreground mask for PxAP (sweep mode only), or ``None``.
            fixed_boxes: (N, 4) all contour boxes at the fixed threshold; required when ``sweep`` is off.
            pred_mask: bool (H, W) the configuration's own foreground mask; with ``gt_mask`` it adds to the
                mean mask IoU (any mode).

        Raises:
            ParameterError: missing or malformed inputs for the evaluator's mode.
        """
        gt = _check_boxes(gt_boxes, "gt_boxes")
        hit = bool(box_iou(np.asarray(fixed_box).reshape(1, 4), gt).max() >= self.v1_iou)
        if self.sweep:
            if scoremap is None:
                raise ParameterError("`scoremap` is required when the evaluator sweeps thresholds")
            largest, best = sweep_ious(scoremap, gt, self.thresholds, self.thresholding)  # (T,), (T,)
            if gt_mask is not None:
                self._accumulate_mask(np.asarray(scoremap, dtype=np.float32), gt_mask)
        else:
            if fixed_boxes is None:
                raise ParameterError("`fixed_boxes` is required when `sweep` is False")
            largest = np.array([box_iou(np.asarray(fixed_box).reshape(1, 4), gt).max()])
            best = np.array([box_iou(fixed_boxes, gt).max()])
        if gt_mask is not None and pred_mask is not None:
            self._mask_ious.append(mask_iou(pred_mask, gt_mask))
        self._v1_hits += largest >= self.v1_iou
        self._v2_hits += best[None, :] >= self.iou_thresholds[:, None]
        self._n += 1
        self._gt_known += hit
        if top1_correct is not None:
            self._top1_given += 1
            self._top1 += hit and bool(top1_correct)

    def _accumulate_mask(self, scoremap: np.ndarray, gt_mask: np.ndarray) -> None:
        mask = np.asarray(gt_mask, dtype=bool)
        if mask.shape != scoremap.shape:
            raise ParameterError(f"`gt_mask` shape {mask.shape} differs from `scoremap` shape {scoremap.shape}")
        self._pos_hist += np.histogram(scoremap[mask], bins=self._edges)[0]
        self._neg_hist += np.histogram(scoremap[~mask], bins=self._edges)[0]

    def _pxap(self) -> float | None:
        positives = self._pos_hist.sum()
        if positives <= 0:
            return None
        tp = self._pos_hist[::-1].cumsum()  # descending thresholds
        fp = self._neg_hist[::-1].cumsum()
        precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
        recall = tp / positives
        return float((precision[1:] * np.diff(recall)).sum() * 100.0)

    def compute(self) -> LocalizationMetrics:
        """Percentages over every accumulated image.

        Raises:
            ParameterError: nothing was accumulated.
        """
        if self._n == 0:
            raise ParameterError("`compute` called before any `accumulate`: no image to score")
        v1_curve = 100.0 * self._v1_hits / self._n  # (T,)
        v2_curves = 100.0 * self._v2_hits / self._n  # (D, T)
        keys = [f"{round(d * 100):d}" for d in self.iou_thresholds]
        by_iou = {key: float(curve.max()) for key, curve in zip(keys, v2_curves, strict=True)}
        thetas = [round(float(t), 6) for t in self.thresholds]
        curves, best_theta = {}, {}
        if self.sweep:
            curves = {"v1": v1_curve.tolist()} | {k: c.tolist() for k, c in zip(keys, v2_curves, strict=True)}
            best_theta = {"v1": thetas[int(np.argmax(v1_curve))]}
            best_theta |= {k: thetas[int(np.argmax(c))] for k, c in zip(keys, v2_curves, strict=True)}
        return LocalizationMetrics(
            n_images=self._n,
            gt_known_loc=100.0 * self._gt_known / self._n,
            top1_loc=100.0 * self._top1 / self._top1_given if self._top1_given else None,
            maxboxacc_v1=float(v1_curve.max()),
            maxboxacc_v2=float(np.mean(list(by_iou.values()))),
            maxboxacc_v2_by_iou=by_iou,
            best_theta=best_theta,
            thresholds=thetas if self.sweep else [],
            curves=curves,
            pxap=self._pxap() if self.sweep else None,
            sweep=self.sweep,
            mask_iou=100.0 * float(np.mean(self._mask_ious)) if self._mask_ious else None,
        )


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two bool (H, W) masks in ``[0, 1]`` (1.0 when both are empty).

    Raises:
        ParameterError: the shapes differ.
    """
    a, b = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if a.shape != b.shape:
        raise ParameterError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def format_rows(configs: Mapping[str, LocalizationMetrics]) -> list[str]:
    """A header and one text row per configuration, percentages with one decimal."""
    lines = [f"{'config':<16}{'GT-known':>9}{'Top-1 Loc':>10}{'MaxBoxAcc':>10}  MaxBoxAccV2 (30 / 50 / 70)"]
    for name, m in configs.items():
        v2 = " / ".join(f"{v:.1f}" for v in m.maxboxacc_v2_by_iou.values())
        note = "" if m.sweep else "  (at the fixed threshold, no sweep)"
        top1 = f"{m.top1_loc:.1f}" if m.top1_loc is not None else "-"
        lines.append(
            f"{name:<16}{m.gt_known_loc:>9.1f}{top1:>10}{m.maxboxacc_v1:>10.1f}  {m.maxboxacc_v2:.1f} ({v2}){note}"
        )
    return lines
