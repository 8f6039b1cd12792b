"""Foreground thresholds: max as a standard (MaS) and percentile as a standard (PaS, module M3).

All functions take a min-max normalised map (float (H, W) in ``[0, 1]``, see
:func:`cam_core.cam.normalize`).

* MaS: foreground = ``cam > theta · max(cam)``; on a normalised map ``max == 1``, so the threshold is
  ``theta`` (default 0.2).
* PaS: foreground = ``cam > theta · P_p(cam)``, ``P_p`` the p-th percentile over all pixels (paper
  code: p = 90, theta = 0.35; LID challenge: p = 98).
* For threshold sweeps, PaS rescales the map instead: ``cam' = min(1, cam / P_p(cam))`` (this project's
  extension: the sweep's thresholds ``theta · P_p`` then cover ``[0, P_p)`` only).

Two comparison rules:

* ``"8bit"`` (default; clovaai/wsolevaluation and won-bae/rethinkingCAM): the map is quantised as
  ``q = uint8(255 · cam)`` (truncation), the threshold is the integer ``t = int(theta · max(q))`` (MaS) or
  ``t = int(theta · P_p(q))`` (PaS, percentile of ``q``), and foreground is ``q > t`` (OpenCV's
  ``THRESH_BINARY``), i.e. ``cam >= (t + 1) / 255``.
* ``"float"``: foreground is ``cam > value`` on the float map (a superset of the 8-bit mask: about 100
  more pixels per 224 x 224 mask).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from cam_core.errors import ParameterError

Rule = Literal["mas", "pas"]
Thresholding = Literal["8bit", "float"]


@dataclass(frozen=True)
class Preset:
    """A named set of method parameters.

    Attributes:
        theta_mas: MaS threshold fraction of the maximum.
        theta_pas: PaS threshold fraction of the percentile.
        percentile: p in ``(0, 100]``.
        tau_tap: TAP threshold fraction of each channel's maximum.
    """

    theta_mas: float
    theta_pas: float
    percentile: float
    tau_tap: float


PRESETS: dict[str, Preset] = {
    "paper code": Preset(theta_mas=0.2, theta_pas=0.35, percentile=90.0, tau_tap=0.1),
    "LID challenge": Preset(theta_mas=0.2, theta_pas=0.35, percentile=98.0, tau_tap=0.05),
}


def check_theta(theta: float, name: str = "theta") -> float:
    """Return ``theta`` as float if in ``[0, 1]``, else raise :class:`ParameterError` naming ``name``."""
    if not (isinstance(theta, (int, float, np.floating)) and 0.0 <= float(theta) <= 1.0):
        raise ParameterError(f"`{name}` must be a number in [0, 1], got {theta!r}")
    return float(theta)


def check_percentile(percentile: float) -> float:
    """Return ``percentile`` as float if in ``(0, 100]``, else raise :class:`ParameterError`."""
    if not (isinstance(percentile, (int, float, np.floating)) and 0.0 < float(percentile) <= 100.0):
        raise ParameterError(f"`percentile` must be a number in (0, 100], got {percentile!r}")
    return float(percentile)


def mas_threshold(cam: np.ndarray, theta: float = 0.2) -> float:
    """MaS threshold ``theta · max(cam)`` of a normalised map (float (H, W) in [0, 1])."""
    return check_theta(theta, "theta_mas") * float(cam.max())


def pas_threshold(cam: np.ndarray, theta: float = 0.35, percentile: float = 90.0) -> float:
    """PaS threshold ``theta · P_p(cam)`` of a normalised map (float (H, W) in [0, 1])."""
    return check_theta(theta, "theta_pas") * float(np.percentile(cam, check_percentile(percentile)))


def threshold(cam: np.ndarray, rule: Rule, theta: float, percentile: float = 90.0) -> float:
    """Dispatch to :func:`mas_threshold` or :func:`pas_threshold`."""
    if rule == "mas":
        return mas_threshold(cam, theta)
    if rule == "pas":
        return pas_threshold(cam, theta, percentile)
    raise ParameterError(f"`rule` must be 'mas' or 'pas', got {rule!r}")


def foreground(cam: np.ndarray, value: float) -> np.ndarray:
    """Binary mask ``cam > value`` (strict): bool (H, W)."""
    return np.asarray(cam > value)


def quantize(cam: np.ndarray) -> np.ndarray:
    """wsolevaluation's 8-bit map ``(cam * 255).astype(uint8)`` (truncation, in ``cam``'s own dtype).

    Args:
        cam: float (H, W) in ``[0, 1]``.

    Returns:
        uint8 (H, W) in ``[0, 255]``.
    """
    return (np.asarray(cam) * 255).astype(np.uint8)


def threshold_8bit(quantized: np.ndarray, rule: Rule, theta: float, percentile: float = 90.0) -> int:
    """Integer threshold on a :func:`quantize`'d map: ``int(theta · max(q))`` or ``int(theta · P_p(q))``.

    Args:
        quantized: uint8 (H, W).
        rule: ``"mas"`` or ``"pas"``.
        theta: fraction in ``[0, 1]``.
        percentile: p in ``(0, 100]`` (PaS only; linear interpolation, as ``np.percentile``).

    Returns:
        ``t`` in ``[0, 255]``; foreground is ``quantized > t``.
    """
    if rule == "mas":
        return int(check_theta(theta, "theta_mas") * float(quantized.max()))
    if rule == "pas":
        return int(check_theta(theta, "theta_pas") * float(np.percentile(quantized, check_percentile(percentile))))
    raise ParameterError(f"`rule` must be 'mas' or 'pas', got {rule!r}")


def threshold_mask(
    cam: np.ndarray, rule: Rule, theta: float, percentile: float = 90.0, thresholding: Thresholding = "8bit"
) -> tuple[float, np.ndarray]:
    """Threshold and foreground mask of a normalised map under either comparison rule.

    Args:
        cam: float (H, W) in ``[0, 1]``.
        rule, theta, percentile: as :func:`threshold`.
        thresholding: ``"8bit"`` (wsolevaluation) or ``"float"`` (see the module docstring).

    Returns:
        ``(value, mask)``: ``value`` the threshold in map units (8-bit: ``t / 255``, foreground is
        ``uint8(255 · cam) > 255 · value``; float: foreground is ``cam > value``), ``mask`` bool (H, W).

    Raises:
        ParameterError: bad ``rule``, ``theta``, ``percentile`` or ``thresholding``.
    """
    if thresholding == "8bit":
        quantized = quantize(cam)
        level = threshold_8bit(quantized, rule, theta, percentile)
        return level / 255.0, quantized > level
    if thresholding == "float":
        value = threshold(cam, rule, theta, percentile)
        return value, foreground(cam, value)
    raise ParameterError(f"`thresholding` must be '8bit' or 'float', got {thresholding!r}")


def pas_normalize(cam: np.ndarray, percentile: float = 90.0) -> np.ndarray:
    """PaS rescaling for threshold sweeps: ``min(1, cam / P_p(cam))``.

    Args:
        cam: float (H, W) in ``[0, 1]``.
        percentile: p in ``(0, 100]``.

    Returns:
        float32 (H, W) in ``[0, 1]``; all zeros when ``P_p == 0``.
    """
    level = float(np.percentile(cam, check_percentile(percentile)))
    if level <= 0.0:
        return np.zeros(cam.shape, dtype=np.float32)
    return np.minimum(1.0, cam / level).astype(np.float32)
