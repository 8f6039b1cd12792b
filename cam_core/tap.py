"""Thresholded Average Pooling (TAP, Bae et al. ECCV 2020, module M1) and the per-channel view of P1.

Per image and channel k: ``thr_k = tau · max_ij F_k(i, j)``; pixels with ``F_k(i, j) > thr_k`` (strict)
are kept; ``TAP(F_k) = sum(kept values) / max(1, number kept)``. ``tau = 0`` is *not* GAP: it still drops
pixels at or below zero. TAP replaces GAP in the forward pass, so it changes what the classifier learns
and needs (fine-)training; the CAM is still ``sum_k W[c, k] F_k`` with the TAP-trained ``W``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cam_core.errors import ParameterError


def _check_tau(tau: float) -> float:
    if not 0.0 <= tau < 1.0:
        raise ParameterError(f"`tau` must be in [0, 1), got {tau!r}")
    return float(tau)


class ThresholdedAvgPool2d(nn.Module):
    """Drop-in replacement for timm's ``global_pool``: ``(B, C, h, w) -> (B, C)``.

    Args:
        tau: threshold as a fraction of each channel's per-image maximum, in ``[0, 1)``.
            The paper's code uses 0.1; the LID challenge entry 0.05.
    """

    def __init__(self, tau: float = 0.1) -> None:
        super().__init__()
        self.tau = _check_tau(tau)

    def forward(self, feature_maps: torch.Tensor) -> torch.Tensor:
        """Pool ``feature_maps`` float (B, C, h, w) to float (B, C)."""
        peak = feature_maps.amax(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        keep = feature_maps > self.tau * peak  # (B, C, h, w)
        total = (feature_maps * keep).sum(dim=(2, 3))  # (B, C)
        count = keep.sum(dim=(2, 3)).clamp(min=1)  # (B, C)
        return total / count

    def extra_repr(self) -> str:
        return f"tau={self.tau}"


def tap_pool(feature_maps: np.ndarray, tau: float) -> np.ndarray:
    """NumPy TAP over the last two axes.

    Args:
        feature_maps: float (..., h, w), any sign.
        tau: threshold fraction in ``[0, 1)``.

    Returns:
        float (...) pooled values.
    """
    tau = _check_tau(tau)
    peak = feature_maps.max(axis=(-2, -1), keepdims=True)
    keep = feature_maps > tau * peak
    return (feature_maps * keep).sum(axis=(-2, -1)) / np.maximum(keep.sum(axis=(-2, -1)), 1)


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel statistics explaining P1 for one class; every array is float32 (C,).

    Attributes:
        gap: global average ``mean_hw F_k``.
        tap: TAP value ``TAP(F_k)`` at the given tau.
        active_fraction: share of the ``h · w`` pixels with ``F_k > tau · max F_k``, in ``[0, 1]``.
        peak: ``max_hw F_k``.
        weight: ``W[c, k]``.
        logit_contribution: ``W[c, k] · gap_k`` (these sum to ``logit_c - b_c`` for a GAP head).
        cam_peak_contribution: ``W[c, k] · F_k`` at the CAM's argmax pixel (these sum to the CAM peak).
    """

    gap: np.ndarray
    tap: np.ndarray
    active_fraction: np.ndarray
    peak: np.ndarray
    weight: np.ndarray
    logit_contribution: np.ndarray
    cam_peak_contribution: np.ndarray


def channel_stats(feature_maps: np.ndarray, class_weights: np.ndarray, tau: float) -> ChannelStats:
    """Compute :class:`ChannelStats` for one image and one class.

    Args:
        feature_maps: float32 (C, h, w) final conv features, any sign.
        class_weights: float32 (C,) classifier row ``W[c]``.
        tau: TAP threshold fraction in ``[0, 1)``.
    """
    tau = _check_tau(tau)
    peak = feature_maps.max(axis=(1, 2))  # (C,)
    active = feature_maps > tau * peak[:, None, None]  # (C, h, w)
    gap = feature_maps.mean(axis=(1, 2))
    cam = np.einsum("c,chw->hw", class_weights, feature_maps)  # (h, w)
    i, j = np.unravel_index(int(np.argmax(cam)), cam.shape)
    as32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return ChannelStats(
        gap=as32(gap),
        tap=as32(tap_pool(feature_maps, tau)),
        active_fraction=as32(active.mean(axis=(1, 2))),
        peak=as32(peak),
        weight=as32(class_weights),
        logit_contribution=as32(class_weights * gap),
        cam_peak_contribution=as32(class_weights * feature_maps[:, i, j]),
    )
