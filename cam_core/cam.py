"""One forward pass per image, then every CAM variant as array work on the cached :class:`Analysis`.

Plain CAM (Zhou et al. 2016): ``M_c = sum_k W[c, k] F_k`` (no bias), so ``mean_hw(M_c) + b_c`` is the
logit of a GAP head. NWC (Bae et al., module M2) clamps the weights: ``sum_k max(W[c, k], 0) F_k``.
The decomposition ``M_c = M_c^+ - M_c^-`` uses ``M^+ = sum_k max(W, 0) F_k`` and
``M^- = sum_k max(-W, 0) F_k``; NWC is exactly ``M^+``.

Geometry: the whole image is resized (stretched) to the network input, so input pixel ``(x, y)`` maps
to original pixel ``(x · W / W_in, y · H / H_in)`` and a CAM is upsampled straight to any target size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import torch
from PIL import Image

from cam_core.errors import ClassIndexError, InvalidImageError, NonFiniteMapError, ParameterError
from cam_core.models import DataConfig, LoadedModel, classifier_weights, eval_mode

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
        probabilities: float32 (K,) softmax of ``logits``, sums to 1.
        class_names: K names.
        input_size: network input ``(H_in, W_in)``.
        pooling: ``"gap"`` or ``"tap"``; tap_tau: TAP threshold when ``pooling == "tap"``.
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

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of :attr:`image`."""
        return int(self.image.shape[0]), int(self.image.shape[1])

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


def analyze_batch(
    loaded: LoadedModel, images: Sequence[np.ndarray], interpolation: str | None = None
) -> list[Analysis]:
    """Run the network once over a batch and keep what every CAM needs.

    Args:
        loaded: model from :func:`cam_core.models.load_model`.
        images: uint8 (H, W, 3) RGB arrays (sizes may differ).
        interpolation: resampling for the input resize; defaults to the model's own.

    Returns:
        One :class:`Analysis` per image, in order.

    Raises:
        InvalidImageError: an image is not uint8 (H, W, 3).
        NonFiniteMapError: the network produced NaN or infinity.
    """
    model = loaded.model
    weight_tensor, bias_tensor = classifier_weights(model.get_classifier(), loaded.name)  # type: ignore[operator]
    weights = weight_tensor.detach().cpu().numpy()  # (K, C), also for a 1x1-conv head
    weights.setflags(write=False)
    bias = bias_tensor.detach().cpu().numpy() if bias_tensor is not None else np.zeros(weights.shape[0], np.float32)
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
    probabilities = torch.softmax(torch.from_numpy(logits_np), dim=1).numpy()
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
        )
        for i, image in enumerate(images)
    ]


def analyze(loaded: LoadedModel, image: np.ndarray, interpolation: str | None = None) -> Analysis:
    """Single-image :func:`analyze_batch`."""
    return analyze_batch(loaded, [image], interpolation)[0]


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
