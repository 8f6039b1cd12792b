"""Weakly supervised semantic segmentation from cached CAMs: several classes, one label map (issue #16).

Modules: :mod:`~cam_core.segment.segmentation` (:func:`segment`, :class:`Segmentation`, the class choice),
:mod:`~cam_core.segment.labels` (the array maths: standards, scores, label maps), :mod:`~cam_core.segment.files`
(palette PNGs of slots with JSON sidecars, mIoU); ``python -m cam_core.segment`` is the command line
(:mod:`cam_core.segment.cli`). The public names are re-exported here.
"""

from __future__ import annotations

from cam_core.segment.files import MeanIoU, colorize, palette, read_label_png, write_label_png
from cam_core.segment.labels import (
    LABEL_PIXELS,
    label_map,
    label_probabilities,
    label_size,
    levels_8bit,
    overclaims,
    resize_labels,
    running_labels,
    scores,
    slot_shares,
    standards,
)
from cam_core.segment.segmentation import (
    MAX_CLASSES,
    Segmentation,
    SegmentConfig,
    class_maps,
    from_maps,
    segment,
    select_classes,
)

__all__ = [
    "LABEL_PIXELS",
    "MAX_CLASSES",
    "MeanIoU",
    "SegmentConfig",
    "Segmentation",
    "class_maps",
    "colorize",
    "from_maps",
    "label_map",
    "label_probabilities",
    "label_size",
    "levels_8bit",
    "overclaims",
    "palette",
    "read_label_png",
    "resize_labels",
    "running_labels",
    "scores",
    "segment",
    "select_classes",
    "slot_shares",
    "standards",
    "write_label_png",
]
