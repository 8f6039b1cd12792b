"""From a cached :class:`~cam_core.cam.Analysis` to heatmap, threshold, mask and boxes.

This is the pipeline shared by the app and the evaluation: pick the weights (plain or NWC), upsample
the raw map bicubically to the target size, min-max normalise, threshold by MaS or PaS (on 8 bits, as
wsolevaluation: see :mod:`cam_core.threshold`), and box the foreground. No network call happens here, and
the app and the evaluation share it, so one photo gives one box in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cam_core.boxes import mask_to_boxes
from cam_core.cam import Analysis, normalize, upsample
from cam_core.errors import ParameterError
from cam_core.threshold import Rule, Thresholding, apply_rule, check_percentile, check_theta


@dataclass(frozen=True)
class LocalizationConfig:
    """Which modules are on and how the map is thresholded.

    Attributes:
        nwc: clamp negative class weights (module M2).
        rule: ``"mas"`` (theta · max) or ``"pas"`` (theta · P_p, module M3).
        theta: threshold fraction in ``[0, 1]``.
        percentile: p for PaS in ``(0, 100]`` (ignored by MaS).
        thresholding: ``"8bit"`` (wsolevaluation's ``uint8(255 · M) > int(255 · theta)``, the default) or
            ``"float"`` (``M > theta``).
    """

    nwc: bool = False
    rule: Rule = "mas"
    theta: float = 0.2
    percentile: float = 90.0
    thresholding: Thresholding = "8bit"

    def __post_init__(self) -> None:
        check_theta(self.theta)
        check_percentile(self.percentile)
        if self.thresholding not in ("8bit", "float"):
            raise ParameterError(f"`thresholding` must be '8bit' or 'float', got {self.thresholding!r}")

    @property
    def name(self) -> str:
        """Short config name: ``cam``, ``pas``, ``nwc`` or ``nwc+pas``."""
        parts = (["nwc"] if self.nwc else []) + (["pas"] if self.rule == "pas" else [])
        return "+".join(parts) or "cam"


CONFIGS: dict[str, LocalizationConfig] = {
    "cam": LocalizationConfig(nwc=False, rule="mas", theta=0.2),
    "pas": LocalizationConfig(nwc=False, rule="pas", theta=0.35, percentile=90.0),
    "nwc": LocalizationConfig(nwc=True, rule="mas", theta=0.2),
    "nwc+pas": LocalizationConfig(nwc=True, rule="pas", theta=0.35, percentile=90.0),
}
"""The four inference-time configurations of the paper's ablation, with the paper code's defaults."""


@dataclass(frozen=True)
class Localization:
    """The result of :func:`localize`.

    Attributes:
        heatmap: float32 (H, W) normalised map in ``[0, 1]``.
        threshold: the foreground threshold on ``heatmap``; with 8-bit thresholding a multiple of 1/255.
        mask: bool (H, W): ``uint8(255 · heatmap) > 255 · threshold`` (8-bit) or ``heatmap > threshold`` (float).
        box: int64 (4,) largest-contour box ``(x0, y0, x1, y1)``, inclusive.
        boxes: int64 (N, 4) one box per contour.
        reference: what theta multiplied: ``heatmap``'s max (MaS) or its p-th percentile ``P_p`` (PaS); with
            8-bit thresholding, of the 8-bit map (``Q / 255``; the threshold is ``int(theta · Q) / 255``).
    """

    heatmap: np.ndarray
    threshold: float
    mask: np.ndarray
    box: np.ndarray
    boxes: np.ndarray
    reference: float

    @property
    def foreground_fraction(self) -> float:
        """Share of pixels in the mask, in ``[0, 1]``."""
        return float(self.mask.mean())


def heatmap(analysis: Analysis, class_index: int, nwc: bool = False, size: tuple[int, int] | None = None) -> np.ndarray:
    """Normalised CAM of one class at ``size`` (default: the analysed image's ``(H, W)``).

    Returns:
        float32 (H, W) in ``[0, 1]``: bicubic upsampling of the raw map, then min-max.
    """
    raw = analysis.cam(class_index, "nwc" if nwc else "cam")  # (h, w)
    return normalize(upsample(raw, size or analysis.image_size))


def localize(
    analysis: Analysis,
    class_index: int,
    config: LocalizationConfig,
    size: tuple[int, int] | None = None,
) -> Localization:
    """Heatmap, threshold, mask and boxes of one class under one configuration.

    Args:
        analysis: cached forward pass.
        class_index: c in ``[0, K)``.
        config: modules and threshold rule.
        size: output ``(H, W)``; defaults to the analysed image's size.
    """
    return localize_heatmap(heatmap(analysis, class_index, config.nwc, size), config)


def localize_map(raw: np.ndarray, config: LocalizationConfig, size: tuple[int, int]) -> Localization:
    """:func:`localize` of any raw map at feature resolution (a CAM-family method's, :mod:`cam_core.family`): the
    same bicubic upsampling, min-max, threshold rule and boxes as plain CAM. ``config.nwc`` is not read: the map
    already is the one wanted (with or without NWC).

    Args:
        raw: float32 (h, w), unnormalised.
        config: the threshold rule.
        size: output ``(H, W)``.
    """
    return localize_heatmap(normalize(upsample(raw, size)), config)


def localize_heatmap(cam: np.ndarray, config: LocalizationConfig) -> Localization:
    """Threshold, mask and boxes of a normalised heatmap (float32 (H, W) in ``[0, 1]``) under ``config``'s rule."""
    rule = apply_rule(cam, config.rule, config.theta, config.percentile, config.thresholding)
    boxes = mask_to_boxes(rule.mask)
    return Localization(
        cam, rule.value, rule.mask, mask_to_boxes(rule.mask, largest_only=True)[0], boxes, rule.reference
    )
