"""WSOL evaluation of a CAM model over a labelled image set: :func:`evaluate` and its result.

Geometry (``stretch`` / ``official``) and the wsolevaluation conventions (stored pixel order, truncated
GT box scaling, nearest-neighbour masks) are in :mod:`cam_core.evaluate.protocol`; thresholds are 8-bit by default
(:mod:`cam_core.threshold`). The model's mean/std; CAM of the ground-truth class upsampled to the input size.

One forward pass per image (batched); every configuration is array work on the cached analysis. The
``+crf`` configs refine the mask at the config's own fixed threshold (a CRF per sweep threshold would be
100 CRF runs per image): their MaxBoxAcc v1/v2 are accuracies *at that threshold* (``"sweep": false``).

The command line (``python -m cam_core.evaluate --images DIR (--boxes boxes.csv | --metadata DIR) [--out r.json]``)
is :mod:`cam_core.evaluate.cli`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cam_core.boxes import mask_to_boxes
from cam_core.cam import Analysis, analyze_batch, normalize, upsample
from cam_core.datasets import (  # read_boxes_csv, read_wsol_metadata: re-exported for callers
    Sample,
    fit_boxes,
    load_stored_image,
    load_wsol_masks,
    read_boxes_csv,  # noqa: F401
    read_wsol_metadata,  # noqa: F401
)
from cam_core.errors import (
    CrfUnavailableError,
    DatasetError,
    InvalidImageError,
    ParameterError,
)
from cam_core.evaluate.metrics import Evaluator, ImageHits, LocalizationMetrics, format_rows
from cam_core.evaluate.protocol import (
    CONVENTIONS,
    ConfigSpec,
    Protocol,
    default_configs,
    describe_config,
    prepare,
    prepare_mask,
)
from cam_core.family import family_maps
from cam_core.localize import heatmap
from cam_core.models import LoadedModel
from cam_core.resolution import resolution_label
from cam_core.threshold import pas_normalize, threshold_mask

Progress = Callable[[int, int], None]
View = tuple[Sample, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]


@dataclass
class EvaluationResult:
    """Outcome of :func:`evaluate`; accuracies in percent ``[0, 100]``.

    Attributes:
        model, weights: the :class:`LoadedModel`'s name and weight description.
        protocol: ``"stretch"`` or ``"official"``.
        n_images: images evaluated (skipped ones excluded).
        top1: top-1 classification accuracy over those images.
        skipped: ``{"file", "reason"}`` per image that could not be evaluated.
        configs: metrics per configuration name.
        threshold_step: the theta grid step of the sweeps.
        settings: per configuration name, what :func:`describe_config` says (rule, theta, sweep map...).
        calibration: per configuration name, the values chosen on a calibration set (see
            :mod:`cam_core.evaluate.calibrate`), empty without one.
        warnings: ``{"file", "reason"}`` per image evaluated with a correction (e.g. a clipped box).
        input_size: ``(H_in, W_in)`` the photos were stretched to (the frame the boxes are scored in).
        output_stride: the model's output stride. feature_size: ``(h, w)`` of the CAMs.
        per_image: per configuration name, one :class:`ImageHits` per evaluated image, in ``evaluated``
            order (only with ``evaluate(..., per_image=True)``; not written to JSON).
        evaluated: the evaluated files, in order (skipped ones excluded).
    """

    model: str
    weights: str
    protocol: str
    n_images: int
    top1: float
    skipped: list[dict[str, str]] = field(default_factory=list)
    configs: dict[str, LocalizationMetrics] = field(default_factory=dict)
    threshold_step: float = 0.01
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    calibration: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)
    input_size: tuple[int, int] = (224, 224)
    output_stride: int = 32
    feature_size: tuple[int, int] | None = None
    per_image: dict[str, list[ImageHits]] = field(default_factory=dict)
    evaluated: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the attributes, ``top1`` rounded, each config's metrics
        (``LocalizationMetrics.to_dict``) with its ``settings``, and the evaluation's ``conventions``."""
        head = {k: getattr(self, k) for k in ("model", "weights", "protocol", "n_images", "threshold_step")}
        feature = None if self.feature_size is None else list(self.feature_size)
        head |= {"input_size": list(self.input_size), "output_stride": self.output_stride, "feature_size": feature}
        configs = {name: m.to_dict() | {"settings": self.settings.get(name, {})} for name, m in self.configs.items()}
        extra = {"calibration": self.calibration} if self.calibration else {}
        return head | {"conventions": CONVENTIONS, "top1": round(self.top1, 4), "skipped": self.skipped,
                       "warnings": self.warnings, "configs": configs} | extra  # fmt: skip


def _ground_truth(
    sample: Sample, size: tuple[int, int], masks: Path | None, protocol: Protocol
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, list[str]]:
    """``(boxes, mask, ignore, warnings)`` of one sample in stored pixels (boxes fitted by :func:`fit_boxes`).

    Raises:
        InvalidImageError: a box wholly outside the photo, a missing or unreadable mask, or no mask root.
    """
    if not sample.masks:
        boxes, warnings = fit_boxes(sample.boxes, sample.lines, size)
        return boxes, None if masks is None else _load_mask(masks, sample, size), None, warnings
    if masks is None:
        raise InvalidImageError("a mask-only sample (OpenImages layout) needs `masks`, the mask root (--masks)")
    mask, ignore, boxes = load_wsol_masks(masks, sample)
    if protocol != "stretch" and mask.shape != size:
        raise InvalidImageError(f"its masks are {mask.shape[1]}x{mask.shape[0]}, the photo {size[1]}x{size[0]}")
    if not len(boxes):
        raise InvalidImageError("every instance mask is empty")
    return boxes, mask, ignore, []


def _load_mask(masks: Path, sample: Sample, size: tuple[int, int]) -> np.ndarray:
    """``masks/<image stem>.png`` as bool (H, W), nonzero = foreground; raises InvalidImageError."""
    path = masks / f"{sample.path.stem}.png"
    mask = load_stored_image(path)[:, :, 0] > 0
    if mask.shape != size:
        raise InvalidImageError(f"mask {path.name} is {mask.shape[1]}x{mask.shape[0]}, the photo {size[1]}x{size[0]}")
    return mask


def _crf_refiner() -> Callable[[np.ndarray, np.ndarray, float], np.ndarray]:
    """``cam_core.crf.refine_mask``, imported lazily; raises CrfUnavailableError with a clear message."""
    try:
        from cam_core.crf import crf_available, refine_mask
    except ImportError as exc:
        raise CrfUnavailableError("CRF configurations need cam_core/crf.py, which is not installed here.") from exc
    if crf_available():
        return refine_mask
    raise CrfUnavailableError("CRF configurations need `pydensecrf2`: pip install 'cam-explainer[crf]'.")


def _score(
    loaded: LoadedModel,
    analysis: Analysis,
    label: int,
    gt: np.ndarray,
    specs: Mapping[str, ConfigSpec],
    evaluators: Mapping[str, Evaluator],
    gt_mask: np.ndarray | None = None,
    gt_ignore: np.ndarray | None = None,
) -> None:
    """Accumulate one analysed image into every configuration's evaluator."""
    correct = int(np.argmax(analysis.logits)) == label
    maps: dict[tuple[str, bool], np.ndarray] = {}
    for name, spec in specs.items():
        cfg = spec.localization
        key = (spec.method, cfg.nwc)
        if key not in maps:  # one upsampled heatmap per method and weight choice, shared by MaS / PaS / CRF
            maps[key] = _method_heatmap(loaded, analysis, label, spec.method, cfg.nwc)
        cam = maps[key]
        value, mask = threshold_mask(cam, cfg.rule, cfg.theta, cfg.percentile, cfg.thresholding)
        if spec.crf:
            mask = _crf_refiner()(analysis.image, cam, value)
            boxes = mask_to_boxes(mask)
            largest = mask_to_boxes(mask, largest_only=True)[0]
            evaluators[name].accumulate(None, gt, largest, correct, gt_mask, boxes, mask, gt_ignore)
            continue
        largest = mask_to_boxes(mask, largest_only=True)[0]
        sweep_map = cam if cfg.rule == "mas" else pas_normalize(cam, cfg.percentile)
        evaluators[name].accumulate(sweep_map, gt, largest, correct, gt_mask, None, mask, gt_ignore)


def _method_heatmap(loaded: LoadedModel, analysis: Analysis, label: int, method: str, nwc: bool) -> np.ndarray:
    """float32 (H_in, W_in) in [0, 1]: plain CAM from the cached forward, or a family map (the head alone, forward
    and backward, on the cached features), through the same bicubic upsampling and min-max as plain CAM."""
    if method == "cam":
        return heatmap(analysis, label, nwc, size=analysis.image_size)
    maps = family_maps(loaded, analysis.feature_maps, label, method)  # (h, w) each
    raw = maps.nwc if nwc else maps.plain
    if raw is None:
        raise ParameterError(f"NWC is undefined for {method}")
    return normalize(upsample(raw, analysis.image_size))


def _load_batch(
    loaded: LoadedModel,
    samples: Sequence[Sample],
    protocol: Protocol,
    skipped: list[dict[str, str]],
    masks: Path | None = None,
    warnings: list[dict[str, str]] | None = None,
) -> list[View]:
    """``(sample, view, view_boxes, view_mask, view_ignore)`` of each usable sample; the others go to
    ``skipped``, corrections (clipped boxes) to ``warnings``."""
    batch = []
    for sample in samples:
        reason = ""
        if not 0 <= sample.class_index < loaded.num_classes:
            reason = f"class index {sample.class_index} out of range for a {loaded.num_classes}-class model"
        else:
            try:
                image = load_stored_image(sample.path)  # boxes are in stored pixels: no EXIF rotation
                gt, mask, ignore, notes = _ground_truth(sample, image.shape[:2], masks, protocol)
            except InvalidImageError as exc:
                reason = str(exc)
            else:
                view, boxes = prepare(image, gt, loaded.data_config, protocol)
                view_mask, view_ignore = (None if m is None else prepare_mask(m, loaded.data_config, protocol)
                                          for m in (mask, ignore))  # fmt: skip
                if len(boxes):
                    batch.append((sample, view, boxes, view_mask, view_ignore))
                    if warnings is not None:
                        warnings.extend({"file": str(sample.path), "reason": note} for note in notes)
                else:
                    reason = "no ground-truth box inside the centre crop"
        if reason:
            skipped.append({"file": str(sample.path), "reason": reason})
    return batch


def evaluate(
    loaded: LoadedModel,
    samples: Sequence[Sample],
    configs: Mapping[str, ConfigSpec] | None = None,
    *,
    protocol: Protocol = "stretch",
    batch_size: int = 32,
    step: float = 0.01,
    progress: Progress | None = None,
    on_image: Callable[[Sample, Analysis, np.ndarray], None] | None = None,
    masks: str | Path | None = None,
    per_image: bool = False,
) -> EvaluationResult:
    """Evaluate WSOL metrics of ``loaded`` over ``samples``, one forward pass per image.

    Args:
        loaded: the model.
        samples: labelled images (see :func:`read_boxes_csv`, :func:`read_wsol_metadata`).
        configs: name -> :class:`ConfigSpec`; defaults to :func:`default_configs` for the model's pooling.
        protocol: geometry (see the module docstring).
        batch_size: images per forward pass, >= 1.
        step: theta grid step of the MaxBoxAcc sweep.
        progress: called as ``progress(done, total)`` after each batch (done counts skipped images).
        on_image: called as ``on_image(sample, analysis, gt_boxes)`` for each evaluated image (gt_boxes:
            int64 (M, 4) in input pixels), e.g. to collect per-image results without a second forward.
        masks: folder of ground-truth masks ``<image stem>.png`` (nonzero = object), or, for mask-only
            samples (wsolevaluation's OpenImages layout), the root their instance and ignore masks are
            relative to: adds PxAP (ignore pixels excluded) and the mean mask IoU of every configuration's
            own mask; an image without its mask is skipped.
        per_image: keep every image's hits (:attr:`EvaluationResult.per_image`), e.g. for paired bootstraps.

    The photos are stretched to ``loaded.data_config.input_size`` (see :func:`cam_core.models.with_input_size`)
    and scored in that frame; GT boxes are read in the stored photo's pixels and scaled into it.

    Returns:
        The metrics; unreadable images, out-of-range classes, boxes outside the photo or the crop go to
        ``skipped`` (a box partly outside the photo is clipped and listed under ``warnings``).

    Raises:
        DatasetError: no image could be evaluated. CrfUnavailableError: CRF configs without the CRF backend.
        ParameterError: ``batch_size`` < 1 or an unknown ``protocol``.
    """
    if batch_size < 1:
        raise ParameterError(f"`batch_size` must be >= 1, got {batch_size}")
    specs = dict(configs) if configs is not None else default_configs(loaded.pooling)
    if any(s.crf for s in specs.values()):
        _crf_refiner()  # fail before the first forward pass
    evaluators = {
        name: Evaluator(step=step, sweep=not s.crf, thresholding=s.localization.thresholding, keep_per_image=per_image)
        for name, s in specs.items()
    }
    skipped: list[dict[str, str]] = []
    warnings: list[dict[str, str]] = []
    evaluated: list[str] = []
    feature_size: tuple[int, int] | None = None
    correct = 0
    for start in range(0, len(samples), batch_size):
        mask_dir = None if masks is None else Path(masks)
        batch = _load_batch(loaded, samples[start : start + batch_size], protocol, skipped, mask_dir, warnings)
        if batch:  # views are already network-sized: analyze_batch's resize is the identity
            analyses = analyze_batch(loaded, [view for _, view, _, _, _ in batch])
            for (sample, _, gt, gt_mask, gt_ignore), analysis in zip(batch, analyses, strict=True):
                correct += int(np.argmax(analysis.logits)) == sample.class_index
                evaluated.append(str(sample.path))
                feature_size = analysis.feature_size
                _score(loaded, analysis, sample.class_index, gt, specs, evaluators, gt_mask, gt_ignore)
                if on_image is not None:
                    on_image(sample, analysis, gt)
        if progress is not None:
            progress(min(start + batch_size, len(samples)), len(samples))
    n_images = len(samples) - len(skipped)
    if n_images == 0:
        first = "; ".join(f"{Path(s['file']).name}: {s['reason']}" for s in skipped[:3])
        raise DatasetError(f"No image could be evaluated ({len(skipped)} skipped; first: {first}).")
    metrics = {name: ev.compute() for name, ev in evaluators.items()}
    top1 = 100.0 * correct / n_images
    settings = {name: describe_config(s) for name, s in specs.items()}
    hits = {name: ev.per_image for name, ev in evaluators.items()} if per_image else {}
    return EvaluationResult(
        loaded.name, loaded.weights, protocol, n_images, top1, skipped, metrics, step, settings, warnings=warnings,
        input_size=loaded.data_config.input_size, output_stride=loaded.output_stride, feature_size=feature_size,
        per_image=hits, evaluated=evaluated,
    )  # fmt: skip


def format_table(result: EvaluationResult) -> str:
    """Plain-text table of a result: a header line, then :func:`cam_core.evaluate.metrics.format_rows`."""
    resolution = resolution_label(result.input_size, result.output_stride, result.feature_size)
    head = (
        f"{result.model} ({result.weights}), protocol {result.protocol}, {resolution}: {result.n_images} images, "
        f"top-1 {result.top1:.1f} %, {len(result.skipped)} skipped"
    )
    masks = [f"{n}: mask IoU {m.mask_iou:.1f}" + ("" if m.pxap is None else f", PxAP {m.pxap:.1f}")
             for n, m in result.configs.items() if m.mask_iou is not None]  # fmt: skip
    return "\n".join([head, *format_rows(result.configs), *masks])
