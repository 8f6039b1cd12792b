"""WSOL evaluation (wsolevaluation's protocol): the evaluation loop, its metrics, threshold sweeps, calibration
and paired bootstrap intervals; ``python -m cam_core.evaluate`` is its command line (:mod:`cam_core.evaluate.cli`).

Modules: :mod:`~cam_core.evaluate.run` (:func:`evaluate`, one forward pass per image, every configuration scored),
:mod:`~cam_core.evaluate.protocol` (geometry and conventions), :mod:`~cam_core.evaluate.metrics` (GT-known, Top-1
Loc, MaxBoxAcc v1/v2, PxAP), :mod:`~cam_core.evaluate.sweep` (the exact vectorised threshold sweep),
:mod:`~cam_core.evaluate.calibrate` (choose θ and p on a held-out set), :mod:`~cam_core.evaluate.bootstrap`
(paired intervals over images). The names callers use are re-exported here.
"""

from __future__ import annotations

from cam_core.datasets import Sample, load_stored_image, read_boxes_csv, read_wsol_metadata
from cam_core.evaluate.calibrate import Calibration, calibrate
from cam_core.evaluate.metrics import Evaluator, ImageHits, LocalizationMetrics, format_rows, mask_iou
from cam_core.evaluate.protocol import CONVENTIONS, ConfigSpec, Protocol, default_configs, prepare, prepare_mask
from cam_core.evaluate.run import EvaluationResult, evaluate, format_table

__all__ = [
    "CONVENTIONS",
    "Calibration",
    "ConfigSpec",
    "EvaluationResult",
    "Evaluator",
    "ImageHits",
    "LocalizationMetrics",
    "Protocol",
    "Sample",
    "calibrate",
    "default_configs",
    "evaluate",
    "format_rows",
    "format_table",
    "load_stored_image",
    "mask_iou",
    "prepare",
    "prepare_mask",
    "read_boxes_csv",
    "read_wsol_metadata",
]
