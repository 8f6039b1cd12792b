"""Gradient CAM-family maps (Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM) from torchcam, combined in cam_core.

torchcam (``torchcam==0.5.0``) computes each method's weights (``_get_weights``); cam_core combines them
with the hooked final features ``F`` (C, h, w) itself so that NWC (clamping negative channel weights,
Bae et al. module M2) applies the same way as for plain CAM: ``M = ReLU(sum_k w_k F_k)`` with
``w_k -> max(w_k, 0)`` under NWC. LayerCAM's weights are per pixel and already ``ReLU(dY/dF)``, so NWC
is undefined there (:class:`ParameterError`). The map returned is at feature resolution, unnormalised,
so upsampling, 8-bit thresholds, MaS/PaS, boxes, masks and CRF run on it exactly as on plain CAM.

Grad-CAM++ uses :class:`GradCAMppFixed`, torchcam's class with only its alpha step corrected (torchcam 0.5.0
divides a boolean-indexed copy, so its alpha stays ``g^2``).

Every method needs only ``A = F`` and ``dY_c/dF`` at the final features, so :func:`family_maps` runs the model's
head alone on features an earlier forward pass gave (an :class:`~cam_core.cam.Analysis`'s): a method costs one
pass through the head, forward and backward, never a second pass through the backbone.

Identity: for a GAP + linear head, ``dY_c/dF_k(i, j) = W[c, k] / (h w)``, so Grad-CAM's weights are
``W[c, k] / (h w)`` and Grad-CAM ``= ReLU(CAM) / (h w)`` (LayerCAM ``= ReLU(NWC CAM) / (h w)``: :data:`IDENTITIES`);
:func:`identity_gap` measures it.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import nn
from torchcam.methods import GradCAM, GradCAMpp, LayerCAM, XGradCAM

from cam_core.cam import Analysis, Variant, preprocess
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


class _Given(nn.Module):
    """The hooked layer: the final features ``F`` passed straight through (computed by an earlier forward pass)."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features  # (B, C, h, w)


class _Head(nn.Module):
    """``forward_head(F)`` of a timm model, with ``F`` given: only the head runs forward and backward.

    Every method here needs just ``A = F`` and ``dY_c/dF`` at the final features; both depend on the head alone
    once ``F`` is known, so the backbone's forward pass (cached in an :class:`~cam_core.cam.Analysis`) is never
    repeated and no gradient flows through it.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.features = _Given()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        net: Any = self.model
        return net.forward_head(self.features(features))  # (B, K)


class FamilyMaps(NamedTuple):
    """One method's map for one class, with and without NWC, at feature resolution (float32 (h, w) ``>= 0``).

    Attributes:
        plain: ``ReLU(sum_k w_k F_k)``.
        nwc: the same with ``w_k -> max(w_k, 0)``; ``None`` where NWC is undefined (:data:`NWC_UNDEFINED_WHY`).
    """

    plain: np.ndarray
    nwc: np.ndarray | None


def family_maps(loaded: LoadedModel, features: np.ndarray, class_index: int, method: str) -> FamilyMaps:
    """A method's maps from the final features ``F`` of one image: one pass through the head, forward and backward.

    Args:
        loaded: the model whose ``forward_features`` gave ``features`` (its head is run here).
        features: float32 (C, h, w), e.g. :attr:`cam_core.cam.Analysis.feature_maps`.
        class_index: c in ``[0, K)``.
        method: a key of :data:`METHODS`.

    Returns:
        :class:`FamilyMaps`: the map, and the NWC map where NWC is defined.

    Raises:
        ParameterError: unknown method, or class out of range.
        NonFiniteMapError: a map has NaN or infinity.
    """
    if method not in METHODS:
        raise ParameterError(f"`method` must be one of {sorted(METHODS)}, got {method!r}")
    if not 0 <= int(class_index) < loaded.num_classes:
        raise ParameterError(f"`class_index` {class_index} is out of range [0, {loaded.num_classes})")
    head = _Head(loaded.model)
    device = next(loaded.model.parameters()).device
    given = torch.as_tensor(np.asarray(features, dtype=np.float32))[None].to(device).requires_grad_(True)
    with eval_mode(loaded.model), torch.enable_grad(), METHODS[method](head, "features") as extractor:
        scores = head(given)  # (1, K)
        weights = extractor._get_weights(int(class_index), scores)[0][0].detach()  # (C,) or (C, h, w)
    combine = lambda w: _combined(w, given[0].detach(), method, class_index)  # noqa: E731
    return FamilyMaps(combine(weights), combine(weights.clamp(min=0)) if method in NWC_DEFINED else None)


def _combined(weights: torch.Tensor, features: torch.Tensor, method: str, class_index: int) -> np.ndarray:
    """``ReLU(sum_k w_k F_k)`` as float32 (h, w); ``weights`` (C,) or per pixel (C, h, w)."""
    if weights.ndim == 1:
        weights = weights[:, None, None]
    cam = torch.relu((weights * features).sum(0)).float().cpu().numpy()  # (h, w)
    if not np.isfinite(cam).all():
        raise NonFiniteMapError(f"The {method} map of class {class_index} has non-finite values.")
    return cam.astype(np.float32, copy=False)


def family_map(
    loaded: LoadedModel,
    image: np.ndarray,
    class_index: int,
    method: str,
    *,
    nwc: bool = False,
    input_size: int | tuple[int, int] | None = None,
) -> np.ndarray:
    """One gradient CAM-family map of a photo at feature resolution: the backbone's forward pass, then
    :func:`family_maps` (head only). With an :class:`~cam_core.cam.Analysis` at hand, call :func:`family_maps` on
    its ``feature_maps`` instead: no second forward pass.

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
    batch = preprocess(image, loaded.data_config)[None]  # (1, 3, H_in, W_in)
    net: Any = loaded.model
    with eval_mode(loaded.model), torch.inference_mode():
        features = net.forward_features(batch.to(next(loaded.model.parameters()).device))[0]  # (C, h, w)
    maps = family_maps(loaded, features.float().cpu().numpy(), class_index, method)
    return maps.nwc if nwc and maps.nwc is not None else maps.plain


IDENTITIES: dict[str, tuple[Variant, str]] = {
    "gradcam": ("cam", "ReLU(CAM) / (h w)"),
    "xgradcam": ("cam", "ReLU(CAM) / (h w)"),
    "layercam": ("nwc", "ReLU(NWC CAM) / (h w)"),
}
"""What each method equals on a GAP + linear head, where ``dY_c/dF_k(i, j) = W[c, k] / (h w)`` at every pixel:
Grad-CAM's weights are ``W[c, k] / (h w)``; XGrad-CAM's feature-weighted mean of a constant gradient is the same;
LayerCAM's per-pixel ``ReLU(W[c, k] / (h w))`` clamps the negative weights (NWC). Grad-CAM++ has none: its alpha
rescales channel k by ``1 / (2 + g_k S_k)``, which depends on the channel's total activation ``S_k``. The
:class:`~cam_core.cam.Analysis` variant of the identity, and its formula."""


def identity_gap(analysis: Analysis, method_map: np.ndarray, class_index: int, method: str = "gradcam") -> float:
    """Largest deviation of ``(h w) · map`` from the method's CAM identity (:data:`IDENTITIES`), relative to the
    largest value of that CAM.

    Args:
        analysis: the plain-CAM analysis of the same image at the same resolution.
        method_map: float32 (h, w) from :func:`family_map` / :func:`family_maps` (without NWC).
        class_index: c.
        method: a key of :data:`IDENTITIES`.

    Returns:
        ``max |h w · G - ReLU(M)| / max |M|`` with ``M`` the plain or NWC CAM: 0 up to float32 noise (~1e-6) on a
        GAP + linear head; large where the head is not one (a TAP head for XGrad-CAM and LayerCAM).

    Raises:
        ParameterError: the method has no identity with CAM (Grad-CAM++).
    """
    if method not in IDENTITIES:
        raise ParameterError(f"{METHOD_LABELS.get(method, method)} has no identity with CAM")
    cam = analysis.cam(class_index, IDENTITIES[method][0])
    height, width = analysis.feature_size
    scale = max(float(np.abs(cam).max()), 1e-12)
    return float(np.abs(height * width * method_map - np.maximum(cam, 0.0)).max() / scale)
