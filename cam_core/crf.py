"""Dense-CRF refinement of a thresholded CAM (Krähenbühl & Koltun, NeurIPS 2011), via ``pydensecrf2``.

A CAM is blurry: it is upsampled from a coarse feature grid, so its thresholded mask follows neither
the object's edges nor its colour. A fully connected CRF with a Gaussian (smoothness) and a
bilateral (appearance: position + RGB) pairwise term pulls the mask onto colour edges.

Unary. Two labels, 0 = background and 1 = foreground. The foreground probability is a piecewise
linear map of the normalised heatmap ``h`` that puts the threshold ``t`` at 50/50::

    p(h) = 0.5 · h / t                      for h <= t
    p(h) = 0.5 + 0.5 · (h - t) / (1 - t)    for h >  t

so ``p(0) = 0``, ``p(t) = 0.5``, ``p(1) = 1``, then clipped to ``[1e-5, 1 - 1e-5]``; the unary is
``-log p`` (foreground) and ``-log(1 - p)`` (background). With no pairwise term the CRF labels are
exactly ``h > t`` (ties go to background, as in :func:`cam_core.threshold.foreground`), so the CRF
only moves pixels the pairwise terms argue about. Piecewise linear rather than a sigmoid because
it needs no extra temperature parameter and spans the full probability range whatever ``t`` is;
``t`` is clamped to ``[1e-3, 1 - 1e-3]`` so that thresholds 0 and 1 stay usable.

Size cap. The CRF costs time and memory linear in pixels (permutohedral lattice); images whose
longer side exceeds :attr:`CrfParams.max_side` (default 512) are downscaled (image: area
interpolation, heatmap: bilinear) so the longer side equals ``max_side``, refined there, and the
result is upscaled back to ``(H, W)``: the mask with nearest-neighbour, the probability bilinearly.
Spatial standard deviations (``*_sxy``) are in pixels of that (possibly downscaled) CRF grid.

Several labels. :func:`refine_labels` runs the same kernels on an L-label Potts model whose unary
is ``-log p`` of a given per-pixel label distribution (:mod:`cam_core.segment.segmentation` builds it: background
plus one label per class); the size cap works the same way, each label's plane resized bilinearly. Its cost
grows with labels x pixels too (every mean-field array is (L, h*w), and so is the lattice's blur), so the grid
is also shrunk until ``L * h * w <=`` :data:`MAX_LABEL_PIXELS` (:func:`label_grid`): eight labels keep the
512² grid, 21 labels get about 316².

``pydensecrf2`` is optional: it builds from source and needs a C++ compiler. Check
:func:`crf_available` first; the refine functions raise :class:`CrfUnavailableError` without it.

Where it runs. ``pydensecrf`` holds Python's GIL for a whole inference (1.2 s for 20 iterations on a 512²
grid, measured): every other thread of the process waits that long. A server passes ``runner`` (a
:data:`MeanField` with :func:`mean_field`'s contract) to run the inference elsewhere, e.g. in a child process.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from types import ModuleType

import cv2
import numpy as np

from cam_core.errors import CrfUnavailableError, InvalidImageError, ParameterError

_P_CLIP = 1e-5
_T_CLAMP = 1e-3
_INSTALL_HINT = (
    "Dense-CRF refinement needs the optional package `pydensecrf2` (imported as `pydensecrf`). "
    "It builds from source and needs a C++ compiler (e.g. build-essential / Xcode CLT / MSVC): "
    "`pip install pydensecrf2`."
)


MAX_LABEL_PIXELS = 8 * 512 * 512
"""Budget of a multi-label CRF's grid, labels x pixels: the memory of its (L, h*w) arrays and of the lattice's
blur grow with it (a 21-label CRF on a 512² grid took about 300 MB, measured by ``bench/bench_hostile.py``)."""


def label_grid(height: int, width: int, labels: int, max_side: int = 512) -> tuple[int, int]:
    """``(h, w)`` of the CRF grid of an L-label CRF on an ``(height, width)`` image: the longer side at most
    ``max_side`` and ``labels * h * w <=`` :data:`MAX_LABEL_PIXELS`, aspect kept (each side at least 1).

    >>> label_grid(512, 512, 8), label_grid(512, 512, 21), label_grid(1000, 500, 2)
    ((512, 512), (316, 316), (512, 256))
    """
    side_scale = max_side / max(height, width)
    budget_scale = (MAX_LABEL_PIXELS / (labels * height * width)) ** 0.5
    if min(side_scale, budget_scale) >= 1.0:
        return height, width
    if side_scale <= budget_scale:  # the size cap binds: rounded, as the single-label grid (_crf_grid)
        return max(1, round(height * side_scale)), max(1, round(width * side_scale))
    return max(1, int(height * budget_scale)), max(1, int(width * budget_scale))  # floor: within the budget


@dataclass(frozen=True)
class CrfParams:
    """Dense-CRF parameters (defaults: the DeepLab / pydensecrf example values).

    Attributes:
        gaussian_sxy: spatial std (pixels of the CRF grid) of the smoothness kernel, > 0.
        gaussian_compat: weight of the smoothness kernel (Potts compatibility), >= 0.
        bilateral_sxy: spatial std (pixels of the CRF grid) of the appearance kernel, > 0.
        bilateral_srgb: colour std (0-255 RGB units) of the appearance kernel, > 0.
        bilateral_compat: weight of the appearance kernel (Potts compatibility), >= 0.
        iterations: mean-field steps, int >= 1.
        max_side: size cap, int >= 16: images whose longer side exceeds it are downscaled to it
            for the CRF, and the result is upscaled back (mask: nearest-neighbour).
    """

    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 80.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 10.0
    iterations: int = 10
    max_side: int = 512

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in ("iterations", "max_side"):
                low = 1 if field.name == "iterations" else 16
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                    raise ParameterError(f"`{field.name}` must be an int >= {low}, got {value!r}")
                continue
            strict = not field.name.endswith("compat")
            ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
            ok = ok and bool(np.isfinite(value)) and (value > 0 if strict else value >= 0)
            if not ok:
                bound = "> 0" if strict else ">= 0"
                raise ParameterError(f"`{field.name}` must be a finite number {bound}, got {value!r}")


@functools.cache
def crf_available() -> bool:
    """Whether ``pydensecrf.densecrf`` (package ``pydensecrf2``) can be imported; cached."""
    try:
        importlib.import_module("pydensecrf.densecrf")
    except ImportError:
        return False
    return True


def _densecrf() -> ModuleType:
    if not crf_available():
        raise CrfUnavailableError(_INSTALL_HINT)
    return importlib.import_module("pydensecrf.densecrf")


def _check_inputs(image: np.ndarray, heatmap: np.ndarray, threshold: float) -> float:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidImageError(f"`image` must be a uint8 RGB array of shape (H, W, 3), got {got}")
    if not isinstance(heatmap, np.ndarray) or not np.issubdtype(heatmap.dtype, np.floating) or heatmap.ndim != 2:
        got = f"{heatmap.dtype} {heatmap.shape}" if isinstance(heatmap, np.ndarray) else type(heatmap).__name__
        raise InvalidImageError(f"`heatmap` must be a float array of shape (H, W), got {got}")
    if heatmap.shape != image.shape[:2]:
        raise InvalidImageError(f"`heatmap` shape {heatmap.shape} must equal the image's (H, W) {image.shape[:2]}")
    if min(heatmap.shape) < 1:
        raise InvalidImageError(f"`image` must not be empty, got shape {image.shape}")
    if not np.isfinite(heatmap).all():
        raise InvalidImageError("`heatmap` contains NaN or infinity")
    if heatmap.min() < 0.0 or heatmap.max() > 1.0:
        raise InvalidImageError(
            f"`heatmap` must be normalised to [0, 1], got [{heatmap.min():.4g}, {heatmap.max():.4g}]"
            " (see cam_core.normalize)"
        )
    ok = isinstance(threshold, (int, float, np.floating)) and not isinstance(threshold, bool)
    if not (ok and 0.0 <= float(threshold) <= 1.0):
        raise ParameterError(f"`threshold` must be a number in [0, 1], got {threshold!r}")
    return float(threshold)


def foreground_probability(heatmap: np.ndarray, threshold: float) -> np.ndarray:
    """The unary's foreground probability: piecewise linear in ``heatmap`` with ``p(threshold) = 0.5``.

    Args:
        heatmap: float (H, W) in ``[0, 1]``.
        threshold: foreground threshold in ``[0, 1]`` (clamped to ``[1e-3, 1 - 1e-3]``).

    Returns:
        float32 (H, W) in ``[1e-5, 1 - 1e-5]``, monotone non-decreasing in ``heatmap``.
    """
    t = min(max(float(threshold), _T_CLAMP), 1.0 - _T_CLAMP)
    h = heatmap.astype(np.float64)
    p = np.where(h <= t, 0.5 * h / t, 0.5 + 0.5 * (h - t) / (1.0 - t))
    return np.clip(p, _P_CLIP, 1.0 - _P_CLIP).astype(np.float32)


def _crf_grid(image: np.ndarray, heatmap: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Downscale ``image`` (uint8 (H, W, 3)) and ``heatmap`` (float (H, W)) so max(h, w) <= max_side."""
    height, width = heatmap.shape
    if max(height, width) <= max_side:
        return image, heatmap
    scale = max_side / max(height, width)
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    small_image = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
    small_map = cv2.resize(heatmap.astype(np.float32), (small_w, small_h), interpolation=cv2.INTER_LINEAR)
    return small_image, np.clip(small_map, 0.0, 1.0)


def mean_field(image: np.ndarray, unary: np.ndarray, params: CrfParams) -> np.ndarray:
    """Mean-field marginals of an L-label Potts CRF with this module's two kernels, in this process.

    Args:
        image: uint8 (h, w, 3) RGB of the CRF grid.
        unary: float (L, h*w) energies, ``-log p`` of each label.
        params: the kernels and the number of iterations (the size cap is the caller's: not applied here).

    Returns:
        float32 (L, h*w) marginals after ``params.iterations`` steps.

    Raises:
        CrfUnavailableError: ``pydensecrf2`` is not installed.
    """
    dcrf = _densecrf()
    height, width = image.shape[:2]
    crf = dcrf.DenseCRF2D(width, height, unary.shape[0])
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(
        sxy=params.bilateral_sxy,
        srgb=params.bilateral_srgb,
        rgbim=np.require(image, dtype=np.uint8, requirements=["C", "W"]),  # pydensecrf rejects read-only buffers
        compat=params.bilateral_compat,
    )
    return np.asarray(crf.inference(params.iterations), dtype=np.float32)  # (L, h*w)


MeanField = Callable[[np.ndarray, np.ndarray, CrfParams], np.ndarray]
"""What runs the inference: ``(image, unary, params) -> marginals`` with :func:`mean_field`'s contract."""


def _marginal(
    image: np.ndarray, heatmap: np.ndarray, threshold: float, params: CrfParams, runner: MeanField
) -> np.ndarray:
    """Mean-field foreground marginal on the CRF grid: float32 (h, w) in [0, 1]."""
    height, width = heatmap.shape
    p = foreground_probability(heatmap, threshold).reshape(-1)  # (h*w,)
    unary = -np.log(np.stack([1.0 - p, p]))  # (2, h*w): label 0 background, 1 foreground
    return runner(image, unary, params)[1].reshape(height, width)


def _grid_marginal(
    image: np.ndarray, heatmap: np.ndarray, threshold: float, params: CrfParams | None, runner: MeanField | None
) -> np.ndarray:
    """Validate, shrink to the size cap, and run the CRF: float32 (h, w) marginal on the CRF grid."""
    checked = _check_params(params)
    t = _check_inputs(image, heatmap, threshold)
    small_image, small_map = _crf_grid(image, heatmap, checked.max_side)
    return _marginal(small_image, small_map, t, checked, runner or mean_field)


def refine_probability(
    image: np.ndarray,
    heatmap: np.ndarray,
    threshold: float,
    params: CrfParams | None = None,
    *,
    runner: MeanField | None = None,
) -> np.ndarray:
    """Dense-CRF foreground marginal of a CAM (see the module docstring for the unary).

    Args:
        image: uint8 (H, W, 3) RGB, 0-255.
        heatmap: float (H, W) normalised CAM in ``[0, 1]``, finite.
        threshold: foreground threshold on ``heatmap`` in ``[0, 1]`` (e.g. from
            :func:`cam_core.threshold.threshold`); pixels at it start at 50/50.
        params: CRF parameters; defaults to :class:`CrfParams()`.
        runner: runs the inference (default :func:`mean_field`, in this process).

    Returns:
        float32 (H, W) in ``[0, 1]``: the foreground marginal after ``params.iterations``
        mean-field steps (bilinearly upscaled when the size cap applied).

    Raises:
        InvalidImageError: wrong shape, dtype, range or non-finite values in ``image`` / ``heatmap``.
        ParameterError: ``threshold`` outside ``[0, 1]``, or ``params`` not a :class:`CrfParams`.
        CrfUnavailableError: ``pydensecrf2`` is not installed.
    """
    q = _grid_marginal(image, heatmap, threshold, params, runner)
    if q.shape != heatmap.shape:
        q = cv2.resize(q, (heatmap.shape[1], heatmap.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(q, 0.0, 1.0).astype(np.float32)


def refine_mask(
    image: np.ndarray,
    heatmap: np.ndarray,
    threshold: float,
    params: CrfParams | None = None,
    *,
    runner: MeanField | None = None,
) -> np.ndarray:
    """Dense-CRF foreground mask of a CAM: the argmax label after mean-field inference.

    Args:
        image: uint8 (H, W, 3) RGB, 0-255.
        heatmap: float (H, W) normalised CAM in ``[0, 1]``, finite.
        threshold: foreground threshold on ``heatmap`` in ``[0, 1]``; pixels at it start at 50/50.
        params: CRF parameters; defaults to :class:`CrfParams()`.
        runner: runs the inference (default :func:`mean_field`, in this process).

    Returns:
        bool (H, W): True where foreground wins (nearest-neighbour upscaled when the size cap applied).

    Raises:
        InvalidImageError: wrong shape, dtype, range or non-finite values in ``image`` / ``heatmap``.
        ParameterError: ``threshold`` outside ``[0, 1]``, or ``params`` not a :class:`CrfParams`.
        CrfUnavailableError: ``pydensecrf2`` is not installed.
    """
    mask = _grid_marginal(image, heatmap, threshold, params, runner) > 0.5  # argmax of two normalised marginals
    if mask.shape != heatmap.shape:
        size = (heatmap.shape[1], heatmap.shape[0])  # cv2 wants (W, H)
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    return mask


def _check_params(params: CrfParams | None) -> CrfParams:
    if params is None:
        return CrfParams()
    if not isinstance(params, CrfParams):
        raise ParameterError(f"`params` must be a CrfParams or None, got {type(params).__name__}")
    return params


def _check_label_inputs(image: np.ndarray, probabilities: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidImageError(f"`image` must be a uint8 RGB array of shape (H, W, 3), got {got}")
    if not (isinstance(probabilities, np.ndarray) and probabilities.ndim == 3 and 2 <= len(probabilities) <= 256):
        got = getattr(probabilities, "shape", type(probabilities).__name__)
        raise InvalidImageError(f"`probabilities` must have shape (L, H, W) with 2 <= L <= 256, got {got}")
    if probabilities.shape[1:] != image.shape[:2]:
        raise InvalidImageError(
            f"`probabilities` (H, W) {probabilities.shape[1:]} must equal the image's {image.shape[:2]}"
        )
    if not (np.issubdtype(probabilities.dtype, np.floating) and np.isfinite(probabilities).all()):
        raise InvalidImageError("`probabilities` must be finite floats")
    if probabilities.min() < 0.0:
        raise InvalidImageError(f"`probabilities` must be >= 0, got minimum {probabilities.min():.4g}")


def refine_labels(
    image: np.ndarray, probabilities: np.ndarray, params: CrfParams | None = None, *, runner: MeanField | None = None
) -> np.ndarray:
    """Multi-label dense CRF: the argmax label after mean-field inference (same kernels as :func:`refine_mask`).

    Used by :mod:`cam_core.segment.segmentation` (background + one label per class). The unary is ``-log p`` of the
    given per-pixel label distribution, clipped below at 1e-5 and renormalised; with both pairwise
    weights at 0 the result is the argmax of ``probabilities`` (ties to the lower label).

    Args:
        image: uint8 (H, W, 3) RGB, 0-255.
        probabilities: float (L, H, W), 2 <= L <= 256 labels, finite and >= 0; each pixel's column is
            renormalised to sum 1.
        params: CRF parameters (the size cap and :data:`MAX_LABEL_PIXELS` apply, :func:`label_grid`: bilinear
            downscale of each label's plane, nearest upscale of the labels); defaults to :class:`CrfParams()`.
        runner: runs the inference (default :func:`mean_field`, in this process).

    Returns:
        uint8 (H, W) labels in ``[0, L)``.

    Raises:
        InvalidImageError: wrong shape, dtype or values in ``image`` / ``probabilities``.
        ParameterError: ``params`` not a :class:`CrfParams`.
        CrfUnavailableError: ``pydensecrf2`` is not installed.
    """
    checked = _check_params(params)
    _check_label_inputs(image, probabilities)
    height, width = image.shape[:2]
    small_image, planes = image, probabilities.astype(np.float32)  # (L, H, W)
    grid = label_grid(height, width, len(planes), checked.max_side)
    if grid != (height, width):
        size = (grid[1], grid[0])  # cv2 wants (W, H)
        small_image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        planes = np.stack([cv2.resize(plane, size, interpolation=cv2.INTER_LINEAR) for plane in planes])
    p = np.clip(planes.reshape(len(planes), -1), _P_CLIP, None)  # (L, h*w)
    q = (runner or mean_field)(small_image, -np.log(p / p.sum(0, keepdims=True)), checked)  # (L, h*w)
    labels = q.argmax(0).astype(np.uint8).reshape(small_image.shape[:2])
    if labels.shape != (height, width):
        labels = cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
    return labels
