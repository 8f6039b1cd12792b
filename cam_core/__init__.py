"""cam_core: Class Activation Mapping and the fixes of Bae et al. (ECCV 2020), as a small library.

The engine is flat here (models, resolution, cam, localize, threshold, boxes, tap, image, crf, datasets, errors);
the applications are packages: :mod:`cam_core.evaluate`, :mod:`cam_core.segment`, :mod:`cam_core.train`, each
with its ``python -m`` command. The public API is re-exported here; see the README for a tour.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from cam_core.boxes import box_iou, largest_box, mask_to_boxes, scale_boxes
from cam_core.cam import Analysis, analyze, analyze_batch, normalize, preprocess, upsample
from cam_core.crf import CrfParams, crf_available, refine_mask, refine_probability
from cam_core.errors import (
    CamError,
    CheckpointError,
    ClassIndexError,
    CrfUnavailableError,
    DatasetError,
    InvalidImageError,
    NonFiniteMapError,
    NotCamExactError,
    ParameterError,
    UnknownModelError,
    WeightsUnavailableError,
)
from cam_core.image import load_image, load_image_with_size, to_rgb_array
from cam_core.localize import CONFIGS, Localization, LocalizationConfig, heatmap, localize
from cam_core.models import (
    DEFAULT_MODEL,
    MODELS,
    LoadedModel,
    ModelSpec,
    check_cam_exact,
    imagenet_classes,
    load_model,
    with_input_size,
    wrap_model,
)
from cam_core.resolution import OUTPUT_STRIDES, resolution_label
from cam_core.tap import ChannelStats, ThresholdedAvgPool2d, channel_stats, tap_pool
from cam_core.threshold import PRESETS, Preset, mas_threshold, pas_normalize, pas_threshold
from cam_core.train.checkpoint import load_checkpoint, read_card, save_checkpoint

try:
    __version__ = version("cam-explainer")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

__all__ = [
    "CONFIGS",
    "DEFAULT_MODEL",
    "MODELS",
    "OUTPUT_STRIDES",
    "PRESETS",
    "Analysis",
    "CamError",
    "ChannelStats",
    "CheckpointError",
    "ClassIndexError",
    "CrfParams",
    "CrfUnavailableError",
    "DatasetError",
    "InvalidImageError",
    "LoadedModel",
    "Localization",
    "LocalizationConfig",
    "ModelSpec",
    "NonFiniteMapError",
    "NotCamExactError",
    "ParameterError",
    "Preset",
    "ThresholdedAvgPool2d",
    "UnknownModelError",
    "WeightsUnavailableError",
    "analyze",
    "analyze_batch",
    "box_iou",
    "channel_stats",
    "check_cam_exact",
    "crf_available",
    "heatmap",
    "imagenet_classes",
    "largest_box",
    "load_checkpoint",
    "load_image",
    "load_image_with_size",
    "load_model",
    "localize",
    "mas_threshold",
    "mask_to_boxes",
    "normalize",
    "pas_normalize",
    "pas_threshold",
    "preprocess",
    "read_card",
    "refine_mask",
    "refine_probability",
    "resolution_label",
    "save_checkpoint",
    "scale_boxes",
    "tap_pool",
    "to_rgb_array",
    "upsample",
    "with_input_size",
    "wrap_model",
]  # fmt: skip
