"""Calibrate, then test: choose each configuration's theta (and p for PaS) on a held-out set.

wsolevaluation's central point (Choe et al., CVPR 2020): hyper-parameters such as the CAM threshold must be
chosen on a held-out split with full supervision (its ``train-fullsup``), and the numbers reported on the
test split at those values. :func:`calibrate` runs the model over the calibration samples (one forward
pass each, same geometry as :func:`cam_core.evaluate.run.evaluate`) and, for every configuration, scores the
*fixed-threshold* rule at every theta of the grid (and every candidate p for PaS):

* ``"gt_known"``: share of images whose largest-contour box has IoU >= 0.5 (GT-known Loc);
* ``"v2"``: mean over delta in {0.3, 0.5, 0.7} of the share whose best contour box reaches delta.

The best (theta, p) wins (first in grid order on ties: lowest p, then lowest theta). CRF configurations
are not calibrated (a CRF per candidate would be too slow).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cam_core.cam import Analysis
from cam_core.datasets import Sample, read_boxes_csv, read_wsol_metadata
from cam_core.errors import DatasetError, ParameterError
from cam_core.evaluate.metrics import DEFAULT_IOU_THRESHOLDS
from cam_core.evaluate.run import ConfigSpec, Progress, Protocol, evaluate
from cam_core.evaluate.sweep import ious_from_levels, sweep_thresholds
from cam_core.localize import LocalizationConfig, heatmap
from cam_core.models import LoadedModel
from cam_core.threshold import quantize

Metric = Literal["gt_known", "v2"]
DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 70.0, 80.0, 90.0, 95.0, 98.0, 99.0, 100.0)
"""Candidate p of PaS calibration (the paper code's 90 and the LID challenge's 98 among them)."""


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` chose for one configuration.

    Attributes:
        theta: the chosen threshold fraction in ``[0, 1)``.
        percentile: the chosen p for PaS, ``None`` for MaS.
        metric: ``"gt_known"`` or ``"v2"``.
        value: the metric at the chosen values on the calibration set, percent ``[0, 100]``.
        n_images: calibration images scored.
    """

    theta: float
    percentile: float | None
    metric: str
    value: float
    n_images: int

    def apply(self, config: LocalizationConfig) -> LocalizationConfig:
        """``config`` with the calibrated theta (and p)."""
        return replace(config, theta=self.theta, percentile=self.percentile or config.percentile)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``value`` rounded to 4 digits."""
        return {"theta": self.theta, "percentile": self.percentile, "metric": self.metric,
                "value": round(self.value, 4), "n_images": self.n_images}  # fmt: skip


def fixed_rule_levels(cam: np.ndarray, config: LocalizationConfig, thresholds: np.ndarray) -> np.ndarray:
    """Per pixel, how many thetas of the grid keep it in the fixed-rule mask (``mask_k = levels > k``).

    Args:
        cam: float (H, W) normalised map in ``[0, 1]``.
        config: rule, percentile and thresholding (its theta is ignored: the grid replaces it).
        thresholds: float64 (T,) ascending theta grid.

    Returns:
        int (H, W) in ``[0, T]``; ``levels > k`` is exactly :func:`cam_core.threshold.threshold_mask` at
        ``theta = thresholds[k]`` (8-bit: ``q > int(theta · max q)`` or ``int(theta · P_p(q))``).
    """
    if config.thresholding == "8bit":
        q = quantize(cam)  # (H, W) uint8
        base = float(q.max()) if config.rule == "mas" else float(np.percentile(q, config.percentile))
        return np.searchsorted((thresholds * base).astype(np.int64), q, side="left")
    base = float(cam.max()) if config.rule == "mas" else float(np.percentile(cam, config.percentile))
    values = (thresholds * base).astype(np.float32)  # `cam > theta · base` compares in float32 (NEP 50)
    return np.searchsorted(values, np.asarray(cam, np.float32), side="left")


class _Scores:
    """Hit counts per (config, p) and theta, accumulated image by image."""

    def __init__(self, specs: Mapping[str, ConfigSpec], percentiles: Sequence[float], step: float) -> None:
        self.thresholds = sweep_thresholds(step)
        self.deltas = np.asarray(DEFAULT_IOU_THRESHOLDS)
        self.candidates = {
            name: [s.localization] if s.localization.rule == "mas" else
            [replace(s.localization, percentile=p) for p in sorted(percentiles)]
            for name, s in specs.items() if not s.crf and s.method == "cam"  # family maps: not calibrated
        }  # fmt: skip
        size = self.thresholds.size
        self.v1 = {n: np.zeros((len(c), size)) for n, c in self.candidates.items()}  # (P, T)
        self.v2 = {n: np.zeros((len(c), size)) for n, c in self.candidates.items()}
        self.n = 0

    def add(self, analysis: Analysis, label: int, gt: np.ndarray) -> None:
        maps: dict[bool, np.ndarray] = {}
        for name, configs in self.candidates.items():
            for i, cfg in enumerate(configs):
                if cfg.nwc not in maps:
                    maps[cfg.nwc] = heatmap(analysis, label, cfg.nwc, size=analysis.image_size)
                levels = fixed_rule_levels(maps[cfg.nwc], cfg, self.thresholds)
                largest, best = ious_from_levels(levels, self.thresholds.size, gt)  # (T,), (T,)
                self.v1[name][i] += largest >= 0.5
                self.v2[name][i] += (best[None, :] >= self.deltas[:, None]).mean(axis=0)
        self.n += 1

    def best(self, name: str, metric: Metric) -> Calibration:
        table = 100.0 * (self.v1 if metric == "gt_known" else self.v2)[name] / self.n  # (P, T)
        i, k = np.unravel_index(int(np.argmax(table)), table.shape)
        cfg = self.candidates[name][i]
        p = cfg.percentile if cfg.rule == "pas" else None
        return Calibration(round(float(self.thresholds[k]), 6), p, metric, float(table[i, k]), self.n)


def calibrate(
    loaded: LoadedModel,
    samples: Sequence[Sample],
    configs: Mapping[str, ConfigSpec],
    *,
    metric: Metric = "gt_known",
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    step: float = 0.01,
    protocol: Protocol = "stretch",
    batch_size: int = 32,
    progress: Progress | None = None,
) -> dict[str, Calibration]:
    """Choose theta (and p for PaS) of every non-CRF configuration on ``samples``.

    Args:
        loaded: the model.
        samples: the calibration set (never the test set).
        configs: the configurations to calibrate (CRF ones are left out of the result).
        metric: ``"gt_known"`` or ``"v2"`` (see the module docstring).
        percentiles: candidate p for PaS configurations, each in ``(0, 100]``.
        step: theta grid step.
        protocol, batch_size, progress: as :func:`cam_core.evaluate.run.evaluate` (``progress(done, total)``
            after each batch of calibration photos).

    Returns:
        Configuration name -> :class:`Calibration`.

    Raises:
        ParameterError: unknown ``metric``, an empty or out-of-range ``percentiles``.
        DatasetError: no calibration image could be evaluated.
    """
    if metric not in ("gt_known", "v2"):
        raise ParameterError(f"`metric` must be 'gt_known' or 'v2', got {metric!r}")
    if not percentiles or not all(0.0 < float(p) <= 100.0 for p in percentiles):
        raise ParameterError(f"`percentiles` must be numbers in (0, 100], got {list(percentiles)!r}")
    scores = _Scores(configs, [float(p) for p in percentiles], step)
    evaluate(loaded, samples, {}, protocol=protocol, batch_size=batch_size, step=step, progress=progress,
             on_image=lambda sample, analysis, gt: scores.add(analysis, sample.class_index, gt))  # fmt: skip
    return {name: scores.best(name, metric) for name in scores.candidates}


def calibrated_specs(specs: Mapping[str, ConfigSpec], chosen: Mapping[str, Calibration]) -> dict[str, ConfigSpec]:
    """The calibrated configurations, named ``<name>@cal``, to evaluate next to the defaults."""
    return {
        f"{n}@cal": ConfigSpec(chosen[n].apply(s.localization), s.crf, s.method)
        for n, s in specs.items()
        if n in chosen
    }


def read_calibration_set(path: str | Path, images: str | Path | None = None) -> list[Sample]:
    """A boxes CSV (photos in ``images``, default: the CSV's folder) or a wsolevaluation metadata folder
    (photos under ``images``; required then, e.g. the data root holding ``train/...``).

    Raises:
        DatasetError: unreadable or malformed set, or a metadata folder without ``images``.
    """
    path = Path(path)
    if path.is_dir():
        if images is None:
            raise DatasetError("`--calibrate-on` names a metadata folder: pass --calibrate-images (the photo root)")
        return read_wsol_metadata(path, images)
    return read_boxes_csv(path, path.parent if images is None else images)


def _identities(samples: Sequence[Sample]) -> set[str]:
    """Base names: copies of a photo in two folders (even re-encoded, e.g. ImageNet ids) count as one."""
    return {s.path.name for s in samples}
