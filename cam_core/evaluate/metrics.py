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
The threshold sweep itself lives in :mod:`cam_core.evaluate.sweep`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from cam_core.boxes import box_iou
from cam_core.errors import ParameterError
from cam_core.evaluate.sweep import check_boxes, sweep_boxes, sweep_ious, sweep_thresholds
from cam_core.threshold import Thresholding

DEFAULT_IOU_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
"""MaxBoxAccV2's IoU thresholds delta."""
__all__ = [
    "Evaluator",
    "LocalizationMetrics",
    "format_rows",
    "mask_iou",
    "sweep_boxes",
    "sweep_ious",
    "sweep_thresholds",
]


class ImageHits(NamedTuple):
    """One image's hits, kept by ``Evaluator(keep_per_image=True)`` for paired bootstraps over images.

    Attributes:
        gt_known: GT-known hit at the fixed threshold. top1_loc: and top-1 right (``None`` if not given).
        v1: bool (T,) largest-contour IoU >= 0.5 per theta. v2: bool (D, T) best IoU >= delta per theta.
    """

    gt_known: bool
    top1_loc: bool | None
    v1: np.ndarray
    v2: np.ndarray


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
        keep_per_image: also keep each image's hits in :attr:`per_image` (:class:`ImageHits`).

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
        keep_per_image: bool = False,
    ) -> None:
        self.keep_per_image = keep_per_image  # fill `per_image` with one ImageHits per accumulated image
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
        self.per_image: list[ImageHits] = []

    def accumulate(
        self,
        scoremap: np.ndarray | None,
        gt_boxes: np.ndarray,
        fixed_box: np.ndarray,
        top1_correct: bool | None = None,
        gt_mask: np.ndarray | None = None,
        fixed_boxes: np.ndarray | None = None,
        pred_mask: np.ndarray | None = None,
        gt_ignore: np.ndarray | None = None,
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
            gt_ignore: bool (H, W) pixels that count neither as positive nor as negative (wsolevaluation's
                OpenImages ignore mask), for PxAP and the mask IoU; ``None``: every pixel counts.

        Raises:
            ParameterError: missing or malformed inputs for the evaluator's mode.
        """
        gt = check_boxes(gt_boxes, "gt_boxes")
        hit = bool(box_iou(np.asarray(fixed_box).reshape(1, 4), gt).max() >= self.v1_iou)
        if self.sweep:
            if scoremap is None:
                raise ParameterError("`scoremap` is required when the evaluator sweeps thresholds")
            largest, best = sweep_ious(scoremap, gt, self.thresholds, self.thresholding)  # (T,), (T,)
            if gt_mask is not None:
                self._accumulate_mask(np.asarray(scoremap, dtype=np.float32), gt_mask, gt_ignore)
        else:
            if fixed_boxes is None:
                raise ParameterError("`fixed_boxes` is required when `sweep` is False")
            largest = np.array([box_iou(np.asarray(fixed_box).reshape(1, 4), gt).max()])
            best = np.array([box_iou(fixed_boxes, gt).max()])
        if gt_mask is not None and pred_mask is not None:
            keep = True if gt_ignore is None else ~np.asarray(gt_ignore, dtype=bool)  # ignored pixels drop out
            self._mask_ious.append(mask_iou(np.asarray(pred_mask, bool) & keep, np.asarray(gt_mask, bool) & keep))
        self._v1_hits += largest >= self.v1_iou
        self._v2_hits += best[None, :] >= self.iou_thresholds[:, None]
        self._n += 1
        self._gt_known += hit
        if top1_correct is not None:
            self._top1_given += 1
            self._top1 += hit and bool(top1_correct)
        if self.keep_per_image:
            top1 = None if top1_correct is None else hit and bool(top1_correct)
            self.per_image.append(
                ImageHits(hit, top1, largest >= self.v1_iou, best[None, :] >= self.iou_thresholds[:, None])
            )

    def _accumulate_mask(self, scoremap: np.ndarray, gt_mask: np.ndarray, gt_ignore: np.ndarray | None) -> None:
        mask = np.asarray(gt_mask, dtype=bool)
        valid = np.ones_like(mask) if gt_ignore is None else ~np.asarray(gt_ignore, dtype=bool)
        if mask.shape != scoremap.shape or valid.shape != scoremap.shape:
            raise ParameterError(f"`gt_mask` / `gt_ignore` shapes differ from `scoremap` shape {scoremap.shape}")
        self._pos_hist += np.histogram(scoremap[mask & valid], bins=self._edges)[0]
        self._neg_hist += np.histogram(scoremap[~mask & valid], bins=self._edges)[0]

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
