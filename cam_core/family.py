"""Gradient CAM-family maps (Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM) from torchcam, combined in cam_core.

torchcam (``torchcam==0.5.0``) computes each method's weights (``_get_weights``); cam_core combines them
with the hooked final features ``F`` (C, h, w) itself so that NWC (clamping negative channel weights,
Bae et al. module M2) applies the same way as for plain CAM: ``M = ReLU(sum_k w_k F_k)`` with
``w_k -> max(w_k, 0)`` under NWC. LayerCAM's weights are per pixel and already ``ReLU(dY/dF)``, so NWC
is undefined there (:class:`ParameterError`). The map returned is at feature resolution, unnormalised,
so upsampling, 8-bit thresholds, MaS/PaS, boxes, masks and CRF run on it exactly as on plain CAM.

Grad-CAM++ uses :class:`GradCAMppFixed`, torchcam's class with only its alpha step corrected (torchcam 0.5.0
divides a boolean-indexed copy, so its alpha stays ``g^2``).

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

Method = Literal["gradcam", "gradcampp", "xgradcam", "layercam"]


class GradCAMppFixed(GradCAMpp):
    """torchcam's Grad-CAM++ with the paper's alpha (Chattopadhay et al. 2018, eq. 19); all else is torchcam's.

    torchcam 0.5.0 runs ``alpha[idx][mask].div_(...)`` on a boolean-indexed *copy*, so its alpha stays ``g^2``
    (tests/test_family.py pins the bug). Here ``alpha_kij = g^2 / (2 g^2 + g^3 sum_ab A_kab)`` where ``g > 0``
    would make it finite (``g = dY_c/dA_kij``; 0 where ``g = 0``), and ``w_k = sum_ij alpha_kij ReLU(g_kij)``.
    The paper's denominator multiplies the pixel's own ``g^3`` by the channel sum of ``A``; torchcam's sums
    ``A g^3`` over pixels, which only agrees for a constant gradient (a GAP + linear head).
    """

    def _get_weights(
        self, class_idx: int | list[int], scores: torch.Tensor, eps: float = 1e-8, **kwargs: Any
    ) -> list[torch.Tensor]:
        """Weights ``(B, C)`` per hooked layer, from torchcam's backward pass and the paper's alpha."""
        self._backprop(scores, class_idx, **kwargs)
        weights = []
        for act, grad in zip(self.hook_a, self.hook_g, strict=True):  # each (B, C, h, w)
            grad_2 = grad.pow(2)
            sums = act.flatten(2).sum(-1)[..., None, None]  # (B, C, 1, 1): sum_ab A_kab
            alpha = torch.where(grad_2 > 0, grad_2 / (2 * grad_2 + grad_2 * grad * sums + eps), 0.0)
            weights.append((alpha * torch.relu(grad)).flatten(2).sum(-1))
        return weights


METHODS: dict[str, type[Any]] = {
    "gradcam": GradCAM,
    "gradcampp": GradCAMppFixed,
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
NWC_UNDEFINED_WHY = {
    "layercam": "its weights are per pixel and already pass through ReLU",
    "gradcampp": "its weights sum alpha · ReLU(gradient), never negative on ReLU features",
}


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
        raise ParameterError(f"NWC is undefined for {METHOD_LABELS[method]} ({NWC_UNDEFINED_WHY[method]})")
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
