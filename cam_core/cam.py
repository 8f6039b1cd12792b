"""One forward pass per image, then every CAM variant as array work on the cached :class:`Analysis`.

Plain CAM (Zhou et al. 2016): ``M_c = sum_k W[c, k] F_k`` (no bias), so ``mean_hw(M_c) + b_c`` is the
logit of a GAP head. NWC (Bae et al., module M2) clamps the weights: ``sum_k max(W[c, k], 0) F_k``.
The decomposition ``M_c = M_c^+ - M_c^-`` uses ``M^+ = sum_k max(W, 0) F_k`` and
``M^- = sum_k max(-W, 0) F_k``; NWC is exactly ``M^+``.

Geometry: the whole image is resized (stretched) to the network input ``(H_in, W_in)`` (the analysis
resolution, 224 by default; see :func:`cam_core.models.with_input_size`), so input pixel ``(x, y)`` maps
to image pixel ``(x · W / W_in, y · H / H_in)`` and a CAM is upsampled straight to any target size. The
feature map is ``(h, w) ~ (H_in, W_in) / output_stride``. When the analysed image is a downscaled copy of
the user's photo, :attr:`Analysis.original_size` records the photo's size and
:meth:`Analysis.to_original` maps boxes back to its pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import cv2
import numpy as np
import torch
from PIL import Image

from cam_core.boxes import scale_boxes
from cam_core.calibration import softmax, temperature
from cam_core.errors import ClassIndexError, InvalidImageError, NonFiniteMapError, ParameterError
from cam_core.models import DataConfig, LoadedModel, classifier_weights, eval_mode, with_input_size
from cam_core.resolution import resolution_label

Variant = Literal["cam", "nwc", "positive", "negative"]
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything one forward pass yields for one image; all later work is array work on it.

    Attributes:
        model_name: the :class:`LoadedModel` name.
        image: uint8 (H, W, 3) RGB, the photo the analysis refers to.
        feature_maps: float32 (C, h, w) final conv features ``F``, any sign (SiLU nets go below 0).
        class_weights: float32 (K, C) classifier ``W`` (read-only view of the model's weights).
        bias: float32 (K,) classifier ``b``.
        logits: float32 (K,).
        probabilities: float32 (K,) ``softmax(logits / temperature)``, sums to 1: calibrated when
            :attr:`temperature` is set (:mod:`cam_core.calibration`), the raw softmax when it is ``None``.
        class_names: K names.
        input_size: network input ``(H_in, W_in)``: the analysis resolution the image was stretched to.
        pooling: ``"gap"`` or ``"tap"``; tap_tau: TAP threshold when ``pooling == "tap"``.
        output_stride: input pixels per feature cell of the model (32 as trained, 16 / 8 dilated).
        original_size: ``(H, W)`` of the photo the user gave when :attr:`image` is a downscaled copy of
            it, else ``None`` (the image *is* the photo). Boxes map back with :meth:`to_original`.
        temperature: the calibration's ``T`` for this model at this resolution, or ``None`` (uncalibrated: no
            fit stored). Only :attr:`probabilities` depend on it: logits, ranking and every CAM do not.
    """

    model_name: str
    image: np.ndarray
    feature_maps: np.ndarray
    class_weights: np.ndarray
    bias: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray
    class_names: tuple[str, ...]
    input_size: tuple[int, int]
    pooling: Literal["gap", "tap"] = "gap"
    tap_tau: float | None = None
    output_stride: int = 32
    original_size: tuple[int, int] | None = None
    temperature: float | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of :attr:`image`."""
        return int(self.image.shape[0]), int(self.image.shape[1])

    @property
    def feature_size(self) -> tuple[int, int]:
        """``(h, w)`` of :attr:`feature_maps`: the resolution of every raw CAM."""
        return int(self.feature_maps.shape[1]), int(self.feature_maps.shape[2])

    @property
    def photo_size(self) -> tuple[int, int]:
        """``(H, W)`` of the user's photo: :attr:`original_size`, or :attr:`image_size` when that is ``None``."""
        return self.original_size if self.original_size is not None else self.image_size

    @property
    def resolution(self) -> str:
        """The analysis resolution in words, e.g. ``"448 px, stride 16 -> 28x28 map"``."""
        return resolution_label(self.input_size, self.output_stride, self.feature_size)

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """Map boxes from :attr:`image` pixels to the user's photo's pixels (:attr:`photo_size`).

        Args:
            boxes: (N, 4) or (4,) inclusive ``(x0, y0, x1, y1)`` in :attr:`image_size` pixels.

        Returns:
            int64 (N, 4) inclusive boxes in :attr:`photo_size` pixels (rounded, clipped); unchanged
            values when the image is the photo.
        """
        return scale_boxes(boxes, self.image_size, self.photo_size)

    @property
    def num_classes(self) -> int:
        """K."""
        return int(self.logits.shape[0])

    def check_class(self, class_index: int) -> int:
        """Return ``class_index`` as int if it lies in ``[0, K)``; raise :class:`ClassIndexError` otherwise."""
        if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
            raise ClassIndexError(f"`class_index` must be an int, got {type(class_index).__name__}")
        if not 0 <= int(class_index) < self.num_classes:
            raise ClassIndexError(f"`class_index` {class_index} is out of range [0, {self.num_classes})")
        return int(class_index)

    def top_k(self, k: int = 5) -> list[tuple[int, str, float]]:
        """The ``k`` most probable classes as ``(index, name, probability)``, most probable first."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(int(i), self.class_names[i], float(self.probabilities[i])) for i in order]

    def cam(self, class_index: int, variant: Variant = "cam") -> np.ndarray:
        """Raw class activation map at feature resolution.

        Args:
            class_index: c in ``[0, K)``.
            variant: ``"cam"`` (plain, signed), ``"nwc"`` / ``"positive"`` (``M^+``, NWC),
                ``"negative"`` (``M^-``, >= 0 for ReLU features).

        Returns:
            float32 (h, w), unnormalised; ``cam == positive - negative`` exactly up to float rounding.

        Raises:
            ClassIndexError: ``class_index`` out of range.
            NonFiniteMapError: the map has NaN or infinity.
            ParameterError: unknown ``variant``.
        """
        weights = self.class_weights[self.check_class(class_index)]  # (C,)
        if variant in ("nwc", "positive"):
            weights = np.maximum(weights, 0.0)
        elif variant == "negative":
            weights = np.maximum(-weights, 0.0)
        elif variant != "cam":
            raise ParameterError(f"`variant` must be 'cam', 'nwc', 'positive' or 'negative', got {variant!r}")
        cam = np.einsum("c,chw->hw", weights, self.feature_maps)  # (h, w)
        if not np.isfinite(cam).all():
            raise NonFiniteMapError(f"The {variant} map of class {class_index} has non-finite values.")
        return cam.astype(np.float32, copy=False)


def preprocess(image: np.ndarray, config: DataConfig, interpolation: str | None = None) -> torch.Tensor:
    """Stretch-resize an RGB image to the model input and normalise it.

    Args:
        image: uint8 (H, W, 3) RGB.
        config: the model's preprocessing.
        interpolation: resampling filter name; defaults to ``config.interpolation``.

    Returns:
        float32 (3, H_in, W_in) tensor, ``(pixel / 255 - mean) / std``.
    """
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise InvalidImageError("`image` must be a uint8 (H, W, 3) RGB array; use cam_core.image.to_rgb_array first.")
    height, width = config.input_size
    resample = _RESAMPLE[interpolation or config.interpolation]
    resized = np.asarray(Image.fromarray(image).resize((width, height), resample), dtype=np.float32)
    tensor = torch.from_numpy(resized).permute(2, 0, 1) / 255.0  # (3, H_in, W_in)
    mean = torch.tensor(config.mean).view(3, 1, 1)
    std = torch.tensor(config.std).view(3, 1, 1)
    return (tensor - mean) / std


def _classifier_arrays(loaded: LoadedModel) -> tuple[np.ndarray, np.ndarray]:
    """The classifier as numpy: ``W`` float32 (K, C) read-only and ``b`` float32 (K,) (zeros without bias)."""
    weight_tensor, bias_tensor = classifier_weights(loaded.model.get_classifier(), loaded.name)  # type: ignore[operator]
    weights = weight_tensor.detach().cpu().numpy()  # (K, C), also for a 1x1-conv head
    weights.setflags(write=False)
    bias = bias_tensor.detach().cpu().numpy() if bias_tensor is not None else np.zeros(weights.shape[0], np.float32)
    return weights, bias


def analyze_batch(
    loaded: LoadedModel,
    images: Sequence[np.ndarray],
    interpolation: str | None = None,
    *,
    input_size: int | tuple[int, int] | None = None,
) -> list[Analysis]:
    """Run the network once over a batch and keep what every CAM needs.

    The batch's way to :func:`analyze`: photos of any sizes are each stretched to the same input, then go
    through **one** forward pass (faster per photo than one :func:`analyze` call each; memory grows with
    ``len(images) · H_in · W_in``, so chunk long lists, e.g. 32 at a time as :mod:`cam_core.evaluate` does).
    Every later map (any class, any variant, any threshold) is array work on the returned analyses::

        analyses = cam_core.analyze_batch(loaded, [cam_core.load_image(p) for p in paths], input_size=448)
        for a in analyses:
            top = a.top_k(1)[0][0]
            heat = cam_core.normalize(cam_core.upsample(a.cam(top, "nwc"), a.image_size))  # (H, W) in [0, 1]

    Args:
        loaded: model from :func:`cam_core.models.load_model`.
        images: uint8 (H, W, 3) RGB arrays (sizes may differ).
        interpolation: resampling for the input resize; defaults to the model's own.
        input_size: analysis square N or ``(H_in, W_in)``; ``None`` uses ``loaded.data_config.input_size``.
            The forward's cost grows with ``H_in · W_in``.

    Returns:
        One :class:`Analysis` per image, in order, each with ``feature_maps`` (C, h, w),
        ``(h, w) ~ (H_in, W_in) / loaded.output_stride``.

    Raises:
        InvalidImageError: an image is not uint8 (H, W, 3).
        NonFiniteMapError: the network produced NaN or infinity.
        ParameterError: ``input_size`` out of range.
    """
    if input_size is not None:
        loaded = with_input_size(loaded, input_size)
    model = loaded.model
    weights, bias = _classifier_arrays(loaded)
    batch = torch.stack(
        [preprocess(image, loaded.data_config, interpolation) for image in images]
    )  # (B, 3, H_in, W_in)
    device = next(model.parameters()).device
    net: Any = model  # timm API (forward_features / forward_head) is not in nn.Module's type
    with eval_mode(model), torch.inference_mode():
        features = net.forward_features(batch.to(device))  # (B, C, h, w)
        logits = net.forward_head(features)  # (B, K)
    features_np = features.float().cpu().numpy()
    logits_np = logits.float().cpu().numpy()
    if not (np.isfinite(features_np).all() and np.isfinite(logits_np).all()):
        raise NonFiniteMapError(f"{loaded.name} produced non-finite features or logits.")
    t = temperature(loaded.name, loaded.data_config.input_size, loaded.output_stride)
    probabilities = softmax(logits_np, t).astype(np.float32)  # (B, K), calibrated when a fit is stored
    return [
        Analysis(
            model_name=loaded.name,
            image=image,
            feature_maps=features_np[i],
            class_weights=weights,
            bias=bias,
            logits=logits_np[i],
            probabilities=probabilities[i],
            class_names=loaded.class_names,
            input_size=loaded.data_config.input_size,
            pooling=loaded.pooling,
            tap_tau=loaded.tap_tau,
            output_stride=loaded.output_stride,
            temperature=t,
        )
        for i, image in enumerate(images)
    ]


def analyze(
    loaded: LoadedModel,
    image: np.ndarray,
    interpolation: str | None = None,
    *,
    input_size: int | tuple[int, int] | None = None,
    original_size: tuple[int, int] | None = None,
) -> Analysis:
    """Single-image :func:`analyze_batch`.

    Args:
        loaded, image, interpolation, input_size: as :func:`analyze_batch`.
        original_size: ``(H, W)`` of the user's photo when ``image`` is a downscaled copy of it (recorded
            as :attr:`Analysis.original_size`, so boxes can be mapped back with :meth:`Analysis.to_original`).

    Raises:
        ParameterError: ``original_size`` is not two positive ints.
    """
    analysis = analyze_batch(loaded, [image], interpolation, input_size=input_size)[0]
    if original_size is None:
        return analysis
    if not (len(original_size) == 2 and all(isinstance(v, int) and v > 0 for v in original_size)):
        raise ParameterError(f"`original_size` must be (H, W) of positive ints, got {original_size!r}")
    return replace(analysis, original_size=(int(original_size[0]), int(original_size[1])))


def upsample(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic upsampling of a feature-resolution map.

    Args:
        cam: float32 (h, w), any range.
        size: target ``(H, W)``.

    Returns:
        float32 (H, W). Bicubic overshoot is kept (normalise afterwards).
    """
    height, width = size
    return cv2.resize(cam.astype(np.float32, copy=False), (width, height), interpolation=cv2.INTER_CUBIC)


def normalize(cam: np.ndarray) -> np.ndarray:
    """Min-max normalise to ``[0, 1]``; a constant map becomes all zeros.

    Args:
        cam: float (H, W), finite.

    Returns:
        float32 (H, W) in ``[0, 1]``.

    Raises:
        NonFiniteMapError: the map has NaN or infinity.
    """
    if not np.isfinite(cam).all():
        raise NonFiniteMapError("Cannot normalise a map with non-finite values.")
    low, high = float(cam.min()), float(cam.max())
    if high - low <= 1e-12 * max(1.0, abs(high)):
        return np.zeros(cam.shape, dtype=np.float32)
    return ((cam - low) / (high - low)).astype(np.float32)
