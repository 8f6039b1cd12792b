"""Gradient CAM-family maps (Grad-CAM, XGrad-CAM, LayerCAM) from torchcam, combined in cam_core.

torchcam (``torchcam==0.5.0``) computes each method's weights (``_get_weights``); cam_core combines them
with the hooked final features ``F`` (C, h, w) itself so that NWC (clamping negative channel weights,
Bae et al. module M2) applies the same way as for plain CAM: ``M = ReLU(sum_k w_k F_k)`` with
``w_k -> max(w_k, 0)`` under NWC. LayerCAM's weights are per pixel and already ``ReLU(dY/dF)``, so NWC
is undefined there (:class:`ParameterError`). The map returned is at feature resolution, unnormalised,
so upsampling, 8-bit thresholds, MaS/PaS, boxes, masks and CRF run on it exactly as on plain CAM.

Identity: for a GAP + linear head, ``dY_c/dF_k(i, j) = W[c, k] / (h w)``, so Grad-CAM's weights are
``W[c, k] / (h w)`` and Grad-CAM ``= ReLU(CAM) / (h w)``; :func:`identity_gap` measures it.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torchcam.methods import GradCAM, GradCAMpp, LayerCAM, XGradCAM

from cam_core.cam import Analysis, preprocess
from cam_core.errors import NonFiniteMapError, ParameterError
from cam_core.models import LoadedModel, eval_mode, with_input_size

Method = Literal["gradcam", "xgradcam", "layercam"]
METHODS: dict[str, type[Any]] = {
    "gradcam": GradCAM,
    "xgradcam": XGradCAM,
    "layercam": LayerCAM,
}
METHOD_LABELS = {
    "gradcam": "Grad-CAM",
    "gradcampp": "Grad-CAM++",
    "xgradcam": "XGrad-CAM",
    "layercam": "LayerCAM",
}
NWC_DEFINED = frozenset({"gradcam", "xgradcam"})
# Grad-CAM++ is withheld: torchcam 0.5.0 divides ``alpha[mask]`` in place, but boolean indexing returns a
# copy, so alpha stays ``g^2`` and its weights are ``sum g^2 ReLU(g)``, not the paper's (tests/test_family.py).
WITHHELD = {"gradcampp": GradCAMpp}


class _Features(nn.Module):
    """The model's ``forward_features`` as one module, so torchcam can hook its output ``F``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net: Any = self.model
        return net.forward_features(x)  # (B, C, h, w)


class _Net(nn.Module):
    """``forward_head(features(x))``: the timm model with its final features as a named submodule."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.features = _Features(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net: Any = self.features.model
        return net.forward_head(self.features(x))  # (B, K)


def family_map(
    loaded: LoadedModel,
    image: np.ndarray,
    class_index: int,
    method: str,
    *,
    nwc: bool = False,
    input_size: int | tuple[int, int] | None = None,
) -> np.ndarray:
    """One gradient CAM-family map at feature resolution (one forward and one backward pass).

    Args:
        loaded: model from :func:`cam_core.models.load_model` (timm forward_features / forward_head API).
        image: uint8 (H, W, 3) RGB.
        class_index: c in ``[0, K)``.
        method: a key of :data:`METHODS`.
        nwc: clamp negative channel weights (only for :data:`NWC_DEFINED`).
        input_size: analysis square N or ``(H_in, W_in)``; ``None`` keeps the model's.

    Returns:
        float32 (h, w) ``>= 0``, unnormalised (``ReLU(sum_k w_k F_k)``).

    Raises:
        ParameterError: unknown method, NWC on LayerCAM, or class out of range.
        NonFiniteMapError: the map has NaN or infinity.
    """
    if method not in METHODS:
        raise ParameterError(f"`method` must be one of {sorted(METHODS)}, got {method!r}")
    if nwc and method not in NWC_DEFINED:
        raise ParameterError(f"NWC is undefined for {METHOD_LABELS[method]} (its weights are per pixel, >= 0)")
    if input_size is not None:
        loaded = with_input_size(loaded, input_size)
    if not 0 <= int(class_index) < loaded.num_classes:
        raise ParameterError(f"`class_index` {class_index} is out of range [0, {loaded.num_classes})")
    net = _Net(loaded.model)
    batch = preprocess(image, loaded.data_config)[None]  # (1, 3, H_in, W_in)
    batch = batch.to(next(loaded.model.parameters()).device).requires_grad_(True)  # frozen weights: grad via input
    with eval_mode(loaded.model), torch.enable_grad(), METHODS[method](net, "features") as extractor:
        scores = net(batch)  # (1, K)
        weights = extractor._get_weights(int(class_index), scores)[0][0].detach()  # (C,) or (C, h, w)
        features = extractor.hook_a[0][0].detach()  # (C, h, w)
    if nwc:
        weights = weights.clamp(min=0)
    if weights.ndim == 1:
        weights = weights[:, None, None]
    cam = torch.relu((weights * features).sum(0)).float().cpu().numpy()  # (h, w)
    if not np.isfinite(cam).all():
        raise NonFiniteMapError(f"The {method} map of class {class_index} has non-finite values.")
    return cam.astype(np.float32, copy=False)


def identity_gap(analysis: Analysis, gradcam: np.ndarray, class_index: int) -> float:
    """Largest deviation of ``(h w) · Grad-CAM`` from ``ReLU(CAM)``, relative to ``max |CAM|``.

    Args:
        analysis: the plain-CAM analysis of the same image at the same resolution.
        gradcam: float32 (h, w) from :func:`family_map` with ``method="gradcam"``.
        class_index: c.

    Returns:
        ``max |h w · G - ReLU(M)| / max |M|`` (0 for an exact GAP + linear head; float32 noise ~1e-6).
    """
    cam = analysis.cam(class_index)
    height, width = analysis.feature_size
    scale = max(float(np.abs(cam).max()), 1e-12)
    return float(np.abs(height * width * gradcam - np.maximum(cam, 0.0)).max() / scale)
