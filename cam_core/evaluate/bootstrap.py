"""Paired bootstrap intervals over images for WSOL accuracies, MaxBoxAcc's threshold sweep included.

A few hundred photos leave every accuracy with a sampling error of several points, so a difference
between two configurations (or two resolutions) evaluated on the *same* photos is reported with a
paired bootstrap: resample the photos with replacement, recompute both accuracies on the same
resample, and take the percentiles of the difference.

Hits come from ``Evaluator(keep_per_image=True)`` (:class:`cam_core.evaluate.metrics.ImageHits`) as one bool
array per image of shape ``(D, T)``: D IoU thresholds delta, T sweep thresholds theta. The accuracy of
a (re)sample with image counts ``c`` (``c_i`` copies of image i, ``sum c = N``) is the sweep statistic

    ``acc(c) = 100 · mean_d max_t (sum_i c_i · hits[i, d, t]) / N``

which is MaxBoxAccV2 for ``(3, T)`` hits, MaxBoxAcc (v1) for ``(1, T)`` and GT-known / Top-1 Loc for
``(1, 1)``. Note that the max over theta is re-taken in every resample (theta is chosen per resample,
as the metric itself does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cam_core.errors import ParameterError
from cam_core.evaluate.metrics import ImageHits

Statistic = Literal["maxboxacc_v2", "maxboxacc_v1", "gt_known_loc", "top1_loc"]


@dataclass(frozen=True)
class PairedInterval:
    """A difference ``b - a`` of two accuracies over the same images, with its bootstrap interval.

    Attributes:
        estimate: ``acc(b) - acc(a)`` on the full sample, in percentage points.
        low, high: percentile interval of the resampled differences (``level`` coverage).
        level: coverage, e.g. 0.95. n_images: N. n_resamples: R. seed: the generator's seed.
    """

    estimate: float
    low: float
    high: float
    level: float
    n_images: int
    n_resamples: int
    seed: int

    def __str__(self) -> str:
        return f"{self.estimate:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"


def hits_array(per_image: Sequence[ImageHits], statistic: Statistic) -> np.ndarray:
    """Stack one configuration's per-image hits for ``statistic``.

    Args:
        per_image: N :class:`ImageHits`, in a fixed image order.
        statistic: which accuracy the hits feed.

    Returns:
        bool (N, D, T): ``(N, 3, T)`` v2 hits, ``(N, 1, T)`` v1 hits, or ``(N, 1, 1)`` fixed-threshold hits.

    Raises:
        ParameterError: unknown ``statistic``, no image, or Top-1 Loc without top-1 results.
    """
    if not per_image:
        raise ParameterError("`per_image` must hold at least one image")
    if statistic == "maxboxacc_v2":
        return np.stack([np.asarray(h.v2, bool) for h in per_image])
    if statistic == "maxboxacc_v1":
        return np.stack([np.asarray(h.v1, bool) for h in per_image])[:, None, :]
    if statistic == "gt_known_loc":
        return np.array([h.gt_known for h in per_image], bool).reshape(-1, 1, 1)
    if statistic == "top1_loc":
        if any(h.top1_loc is None for h in per_image):
            raise ParameterError("`top1_loc` needs every image's top-1 result")
        return np.array([h.top1_loc for h in per_image], bool).reshape(-1, 1, 1)
    raise ParameterError(f"`statistic` must be one of {Statistic.__args__}, got {statistic!r}")  # type: ignore[attr-defined]


def sweep_accuracy(hits: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """``100 · mean_d max_t mean_i hits`` for the sample (``counts=None``) or for each resample.

    Args:
        hits: bool (N, D, T).
        counts: int (R, N) copies of each image per resample, rows summing to N; ``None`` = each once.

    Returns:
        float64 () for the sample, or (R,) per resample, in ``[0, 100]``.
    """
    n, d, t = hits.shape
    flat = hits.reshape(n, d * t).astype(np.float64)  # (N, D·T)
    weights = np.ones((1, n)) if counts is None else counts.astype(np.float64)  # (R, N)
    shares = weights @ flat / n  # (R, N) @ (N, D·T) -> (R, D·T)
    best = shares.reshape(-1, d, t).max(axis=2)  # (R, D): theta chosen per delta and per resample
    result = 100.0 * best.mean(axis=1)  # (R,)
    return result[0] if counts is None else result


def resample_counts(n_images: int, n_resamples: int = 10_000, seed: int = 0) -> np.ndarray:
    """Counts of each image in ``n_resamples`` bootstrap resamples of ``n_images`` (with replacement).

    Returns:
        int64 (R, N), each row summing to N; the same ``seed`` gives the same counts.

    Raises:
        ParameterError: ``n_images`` or ``n_resamples`` below 1.
    """
    if n_images < 1 or n_resamples < 1:
        raise ParameterError(f"`n_images` and `n_resamples` must be >= 1, got {n_images}, {n_resamples}")
    draws = np.random.default_rng(seed).integers(0, n_images, size=(n_resamples, n_images))  # (R, N)
    offsets = np.arange(n_resamples)[:, None] * n_images  # (R, 1): one bincount for all rows
    return np.bincount((draws + offsets).ravel(), minlength=n_resamples * n_images).reshape(n_resamples, n_images)


def paired_difference(
    hits_a: np.ndarray,
    hits_b: np.ndarray,
    n_resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
    counts: np.ndarray | None = None,
) -> PairedInterval:
    """Paired bootstrap percentile interval of ``acc(b) - acc(a)`` over the same N images.

    Args:
        hits_a, hits_b: bool (N, D, T) each (see :func:`hits_array`), rows are the same images in the same order.
        n_resamples: R resamples (ignored when ``counts`` is given).
        seed: generator seed of :func:`resample_counts`.
        level: interval coverage in ``(0, 1)``.
        counts: int (R, N) precomputed resample counts (to share resamples across comparisons).

    Returns:
        The estimate and its ``level`` percentile interval, in percentage points.

    Raises:
        ParameterError: shapes differ, or ``level`` outside ``(0, 1)``.
    """
    if hits_a.shape[0] != hits_b.shape[0] or hits_a.ndim != 3 or hits_b.ndim != 3:
        raise ParameterError(
            f"`hits_a` and `hits_b` must be (N, D, T) over the same N, got {hits_a.shape}, {hits_b.shape}"
        )
    if not 0.0 < level < 1.0:
        raise ParameterError(f"`level` must lie in (0, 1), got {level!r}")
    counts = resample_counts(hits_a.shape[0], n_resamples, seed) if counts is None else counts
    diffs = sweep_accuracy(hits_b, counts) - sweep_accuracy(hits_a, counts)  # (R,)
    low, high = np.percentile(diffs, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    estimate = float(sweep_accuracy(hits_b) - sweep_accuracy(hits_a))
    return PairedInterval(estimate, float(low), float(high), level, hits_a.shape[0], counts.shape[0], seed)
