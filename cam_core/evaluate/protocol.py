"""Evaluation protocol: the configurations evaluated, and how a photo, its boxes and masks become network views.

Protocol ``stretch`` (default, method.md's and wsolevaluation's): image stretched to the model input
(bilinear), GT boxes scaled by the same factors and truncated as wsolevaluation's ``resize_bbox``, GT
masks resized with ``cv2.resize(..., INTER_NEAREST)`` as its ``load_mask_image``. Protocol ``official``
(timm's validation transform): shorter side resized to ``input / crop_pct`` with the model's resampling,
then a centre crop; boxes transformed alike and clipped into the crop, boxes wholly outside dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image

from cam_core.boxes import scale_boxes
from cam_core.errors import ParameterError
from cam_core.family import METHODS, NWC_DEFINED
from cam_core.localize import CONFIGS, LocalizationConfig
from cam_core.models import DataConfig
from cam_core.threshold import Thresholding

Protocol = Literal["stretch", "official"]

CONVENTIONS: dict[str, str] = {
    "decoding": "stored pixel order: EXIF orientation ignored (boxes and masks refer to stored pixels)",
    "gt_box_scaling": "int(x * W_in / W) toward zero, as wsolevaluation's resize_bbox",
    "threshold_grid": "np.arange(0, 1, threshold_step), float64, as wsolevaluation's cam_threshold_list",
    "gt_mask_resize": "cv2.resize INTER_NEAREST of the union of instance masks; ignore pixels excluded from PxAP",
}
"""The evaluation's fixed conventions, written into every JSON result."""


@dataclass(frozen=True)
class ConfigSpec:
    """One evaluated configuration: the localisation rule, optionally followed by dense-CRF refinement."""

    localization: LocalizationConfig
    crf: bool = False
    method: str = "cam"  # "cam" (exact, from the cached forward) or a cam_core.family method


def describe_config(spec: ConfigSpec) -> dict[str, Any]:
    """JSON-ready description of one configuration: modules, rule, theta, p, thresholding and sweep map.

    The PaS sweep map ``min(1, CAM / P_p)`` is this project's extension (wsolevaluation sweeps the
    min-max map only): its thresholds ``theta · P_p`` never reach above ``P_p``; the description says so.
    """
    cfg = spec.localization
    pas = cfg.rule == "pas"
    if spec.crf:
        sweep_map = "none: CRF mask at the fixed threshold only"
    elif pas:
        sweep_map = (f"min(1, CAM / P{cfg.percentile:g}): project extension, not wsolevaluation's; the sweep "
                     f"covers thresholds below P{cfg.percentile:g} only")  # fmt: skip
    else:
        sweep_map = "min-max normalised CAM (wsolevaluation)"
    return {"method": spec.method, "nwc": cfg.nwc, "rule": cfg.rule,
            "theta": cfg.theta, "percentile": cfg.percentile if pas else None,
            "thresholding": cfg.thresholding, "crf": spec.crf, "sweep_map": sweep_map}  # fmt: skip


def default_configs(
    pooling: str = "gap", crf: bool = False, thresholding: Thresholding = "8bit", methods: tuple[str, ...] = ("cam",)
) -> dict[str, ConfigSpec]:
    """The four configurations of the ablation, named ``cam, pas, nwc, nwc+pas`` (``tap, tap+pas,
    tap+nwc, tap+nwc+pas`` for a TAP-trained head), plus ``cam+crf`` and ``nwc+pas+crf`` with ``crf``;
    every one thresholds by ``thresholding`` (``"8bit"``: wsolevaluation's rule). Each other method of
    ``methods`` (:data:`cam_core.family.METHODS`) adds ``m, m+pas`` and, where NWC is defined, ``m+nwc,
    m+nwc+pas``: the same rules on that method's map."""
    specs = {name: ConfigSpec(replace(cfg, thresholding=thresholding)) for name, cfg in CONFIGS.items()}
    if crf:
        specs |= {"cam+crf": ConfigSpec(specs["cam"].localization, True)}
        specs |= {"nwc+pas+crf": ConfigSpec(specs["nwc+pas"].localization, True)}
    family = _family_configs(methods, thresholding)
    if pooling != "tap":
        return specs | family
    return {("tap" if n == "cam" else "tap+" + n.removeprefix("cam+")): s for n, s in specs.items()} | family


def _family_configs(methods: tuple[str, ...], thresholding: Thresholding) -> dict[str, ConfigSpec]:
    """``m, m+pas, m+nwc, m+nwc+pas`` per family method (no ``+nwc`` where NWC is undefined)."""
    unknown = [m for m in methods if m != "cam" and m not in METHODS]
    if unknown:
        raise ParameterError(f"unknown methods {unknown}; choose from cam, {', '.join(METHODS)}")
    specs = {}
    for method in (m for m in methods if m != "cam"):
        for name, cfg in CONFIGS.items():
            if cfg.nwc and method not in NWC_DEFINED:
                continue
            suffix = name.removeprefix("cam")
            specs[method + ("" if not suffix else suffix if suffix.startswith("+") else "+" + suffix)] = ConfigSpec(
                replace(cfg, thresholding=thresholding), method=method
            )
    return specs


def prepare(
    image: np.ndarray, boxes: np.ndarray, config: DataConfig, protocol: Protocol = "stretch"
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the protocol's geometry to an image and its boxes.

    Args:
        image: uint8 (H, W, 3) RGB.
        boxes: float (M, 4) inclusive boxes in image pixels.
        config: the model's preprocessing (input size, resampling, crop_pct).
        protocol: ``"stretch"`` (bilinear stretch) or ``"official"`` (resize shorter side, centre crop).

    Returns:
        ``(view, view_boxes)``: uint8 (H_in, W_in, 3) network-sized image, int64 (M', 4) inclusive boxes
        in view pixels, truncated toward zero as wsolevaluation's ``resize_bbox`` (``official`` drops boxes
        entirely outside the crop, so M' may be 0).
    """
    height, width = image.shape[:2]
    h_in, w_in = config.input_size
    if protocol == "stretch":
        stretched = Image.fromarray(image).resize((w_in, h_in), Image.Resampling.BILINEAR)
        return np.array(stretched), scale_boxes(boxes, (height, width), (h_in, w_in), "truncate")
    if protocol != "official":
        raise ParameterError(f"`protocol` must be 'stretch' or 'official', got {protocol!r}")
    short = math.floor(min(h_in, w_in) / config.crop_pct)
    new_w, new_h = (short, int(short * height / width)) if width <= height else (int(short * width / height), short)
    resample = Image.Resampling[config.interpolation.upper()]
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), resample))
    top, left = round((new_h - h_in) / 2.0), round((new_w - w_in) / 2.0)
    view = resized[top : top + h_in, left : left + w_in].copy()  # writable, C-contiguous
    scale, shift = np.array([new_w / width, new_h / height] * 2), np.array([left, top] * 2)
    b = np.asarray(boxes, np.float64).reshape(-1, 4) * scale - shift  # (M, 4) in crop pixels, unclipped
    inside = (b[:, 2] >= 0) & (b[:, 3] >= 0) & (b[:, 0] <= w_in - 1) & (b[:, 1] <= h_in - 1)
    return view, scale_boxes(b[inside], (h_in, w_in), (h_in, w_in), "truncate")


def prepare_mask(mask: np.ndarray, config: DataConfig, protocol: Protocol = "stretch") -> np.ndarray:
    """Apply :func:`prepare`'s geometry to a ground-truth mask (nearest neighbour): bool (H_in, W_in).

    ``stretch`` resizes with ``cv2.resize(..., INTER_NEAREST)``, as wsolevaluation's ``load_mask_image``.
    """
    if protocol == "stretch":
        height, width = config.input_size
        binary = np.asarray(mask, dtype=np.uint8)  # (H, W) 0/1
        return cv2.resize(binary, (width, height), interpolation=cv2.INTER_NEAREST) > 0
    image = np.repeat(np.asarray(mask, dtype=np.uint8)[:, :, None] * 255, 3, axis=2)
    nearest = DataConfig(config.input_size, config.mean, config.std, "nearest", config.crop_pct)
    return prepare(image, np.zeros((0, 4)), nearest, protocol)[0][:, :, 0] > 127
