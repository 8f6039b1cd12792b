"""Foreground thresholds: max as a standard (MaS) and percentile as a standard (PaS, module M3).

All functions take a min-max normalised map (float (H, W) in ``[0, 1]``, see
:func:`cam_core.cam.normalize`).

* MaS: foreground = ``cam > theta · max(cam)``; on a normalised map ``max == 1``, so the threshold is
  ``theta`` (default 0.2).
* PaS: foreground = ``cam > theta · P_p(cam)``, ``P_p`` the p-th percentile over all pixels (paper
  code: p = 90, theta = 0.35; LID challenge: p = 98; see :data:`PRESETS`).
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
from typing import Literal, NamedTuple

import numpy as np

from cam_core.errors import ParameterError

Rule = Literal["mas", "pas"]
Thresholding = Literal["8bit", "float"]


@dataclass(frozen=True)
class Preset:
    """A named set of method parameters and the analysis resolution they go with.

    Attributes:
        theta_mas: MaS threshold fraction of the maximum.
        theta_pas: PaS threshold fraction of the percentile.
        percentile: p in ``(0, 100]``.
        tau_tap: TAP threshold fraction of each channel's maximum.
        input_size: the square the photo is stretched to, in pixels (see :mod:`cam_core.resolution`).
        output_stride: input pixels per CAM cell: 32 as trained, 16 with dilated last stages.
    """

    theta_mas: float
    theta_pas: float
    percentile: float
    tau_tap: float
    input_size: int = 224
    output_stride: int = 32


PRESETS: dict[str, Preset] = {
    "sharp (448 px)": Preset(0.2, 0.35, 90.0, 0.1, input_size=448, output_stride=16),
    "paper code": Preset(0.2, 0.35, 90.0, 0.1, input_size=224, output_stride=32),
    "LID challenge": Preset(0.2, 0.35, 98.0, 0.05, input_size=336, output_stride=16),
}
"""The named settings, each with its resolution (the app's Preset radio sets the sliders *and* the resolution).

* ``"sharp (448 px)"``: the paper code's thresholds on a 28 x 28 map (448 px, stride 16). Measured on 120
  full-resolution ImageNet photos (``docs/resolution.md``): MaxBoxAccV2 48.3 -> 55.6 (plain CAM) and
  48.6 -> 60.0 (NWC + PaS) against 224 / 32, top-1 unchanged (70.0), forward x3.7 the 224 / 32 one.
  The thresholds were chosen for 7 x 7 maps: at fixed θ, NWC + PaS's GT-known is below plain CAM's here.
* ``"paper code"``: won-bae/rethinkingCAM's defaults (MaS θ = 0.2, PaS θ = 0.35, p = 90, τ = 0.1) at the
  protocol's 224 px, stride 32 (7 x 7 map): the setting of ``docs/method.md``'s self-check numbers.
* ``"LID challenge"``: Bae et al.'s LID 2020 entry (ResNet50-SE): p = 98, τ = 0.05, photos resized to 384
  and centre-cropped to 336, so analysed at 336 px (stretched, not cropped: the app never cuts the photo).
  Stride 16: the WSOL benchmark's ResNet-50 (clovaai/wsolevaluation sets layer4's stride to 1, i.e. output
  stride 16; ``docs/method.md`` does not record the entry's own), and 336 / 16 measured better than 336 / 32
  here (V2 55.8 vs 54.7 plain CAM, 56.7 vs 55.3 NWC + PaS) for a forward x2.4 instead of x1.7 the 224 / 32 one.
"""


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


def reference_value(cam: np.ndarray, rule: Rule, percentile: float = 90.0) -> float:
    """What theta multiplies: the map's maximum (MaS) or its p-th percentile ``P_p`` (PaS).

    Args:
        cam: float (H, W) in ``[0, 1]``, or its :func:`quantize`'d uint8 copy (then in ``[0, 255]``).
        rule: ``"mas"`` or ``"pas"``.
        percentile: p in ``(0, 100]`` (PaS only; linear interpolation, as ``np.percentile``).
    """
    if rule == "mas":
        return float(cam.max())
    if rule == "pas":
        return float(np.percentile(cam, check_percentile(percentile)))
    raise ParameterError(f"`rule` must be 'mas' or 'pas', got {rule!r}")


class Threshold(NamedTuple):
    """A rule applied to one map (see :func:`apply_rule`).

    Attributes:
        reference: the map's max (MaS) or ``P_p`` (PaS) in map units; with 8-bit thresholding, of the 8-bit
            map (``Q / 255``, so the threshold is ``int(theta · Q) / 255``).
        value: the threshold in map units (8-bit: a multiple of 1/255).
        mask: bool (H, W) foreground.
    """

    reference: float
    value: float
    mask: np.ndarray


def apply_rule(
    cam: np.ndarray, rule: Rule, theta: float, percentile: float = 90.0, thresholding: Thresholding = "8bit"
) -> Threshold:
    """Reference value, threshold and foreground mask of a normalised map: each computed once.

    Args:
        cam: float (H, W) in ``[0, 1]``.
        rule, theta, percentile: as :func:`threshold`.
        thresholding: ``"8bit"`` (wsolevaluation) or ``"float"`` (see the module docstring).

    Raises:
        ParameterError: bad ``rule``, ``theta``, ``percentile`` or ``thresholding``.
    """
    name = "theta_mas" if rule == "mas" else "theta_pas"
    if thresholding == "8bit":
        quantized = quantize(cam)
        reference = reference_value(quantized, rule, percentile)  # Q in [0, 255]
        level = int(check_theta(theta, name) * reference)
        return Threshold(reference / 255.0, level / 255.0, quantized > level)
    if thresholding == "float":
        reference = reference_value(cam, rule, percentile)
        value = check_theta(theta, name) * reference
        return Threshold(reference, value, foreground(cam, value))
    raise ParameterError(f"`thresholding` must be '8bit' or 'float', got {thresholding!r}")


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
    result = apply_rule(cam, rule, theta, percentile, thresholding)
    return result.value, result.mask


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
