"""Exact CAM as one ONNX graph: ``python -m cam_core.export --out cam.onnx`` (or the ``cam-export`` script).

The graph takes the photo already stretched to the analysis square and returns what
:func:`cam_core.cam.analyze` computes from the same pixels::

    image  uint8   (1, N, N, 3) RGB, 0-255; normalisation ``(pixel / 255 - mean) / std`` is inside the graph
    logits float32 (1, K)
    cams   float32 (1, K, h, w) plain signed CAMs ``M_c = sum_k W[c, k] F_k`` in logit units (no bias):
           ``mean_hw(cams[0, c]) + b_c == logits[0, c]`` for a GAP head; ``(h, w) ~ N / output_stride``

Resize the photo to ``N x N`` yourself (bicubic, as :func:`cam_core.cam.preprocess` does); NWC, the
positive / negative parts, thresholds and boxes are array work on ``cams`` and the classifier, as in
:class:`cam_core.cam.Analysis`. Export needs the ``onnx`` package (``requirements-dev.txt``); running the
graph needs only ``onnxruntime``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cam_core.errors import CamError, ParameterError
from cam_core.models import DEFAULT_MODEL, LoadedModel, classifier_weights, load_model, with_input_size

DEFAULT_INPUT_SIZE = 448
"""The app's starting analysis square (``app.inputs.DEFAULT_RESOLUTION``; a test keeps them equal)."""
DEFAULT_OUTPUT_STRIDE = 16
"""The app's starting output stride (``app.inputs.DEFAULT_RESOLUTION``)."""
OPSET = 17


class CamGraph(nn.Module):
    """uint8 NHWC photo -> ``(logits, cams)``: the network, its normalisation and the CAM as a 1x1 conv."""

    weights: torch.Tensor  # float32 (K, C, 1, 1): the classifier W as a 1x1 kernel
    mean: torch.Tensor  # float32 (1, 3, 1, 1)
    std: torch.Tensor  # float32 (1, 3, 1, 1)

    def __init__(self, loaded: LoadedModel) -> None:
        """Wrap ``loaded`` (its module is shared, not copied).

        Args:
            loaded: a checked model from :func:`cam_core.models.load_model`.
        """
        super().__init__()
        self.net: Any = loaded.model  # timm API (forward_features / forward_head)
        weights, _ = classifier_weights(loaded.model.get_classifier(), loaded.name)  # type: ignore[operator]
        self.register_buffer("weights", weights.detach().float().reshape(*weights.shape[:2], 1, 1).clone())
        self.register_buffer("mean", torch.tensor(loaded.data_config.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(loaded.data_config.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the photo.

        Args:
            image: uint8 (B, N, N, 3) RGB.

        Returns:
            ``logits`` float32 (B, K) and ``cams`` float32 (B, K, h, w).
        """
        pixels = image.permute(0, 3, 1, 2).float() / 255.0  # (B, 3, N, N) in [0, 1]
        features = self.net.forward_features((pixels - self.mean) / self.std)  # (B, C, h, w)
        logits = self.net.forward_head(features)  # (B, K)
        cams = nn.functional.conv2d(features, self.weights)  # (B, K, h, w): sum_k W[c, k] F_k
        return logits, cams


def export_onnx(loaded: LoadedModel, out: str | Path, input_size: int | None = None) -> Path:
    """Write ``loaded`` as an exact-CAM ONNX graph (see the module docstring for its inputs and outputs).

    Args:
        loaded: a checked model; its ``output_stride`` is kept.
        out: the ``.onnx`` file to write (parent folders are created).
        input_size: the square N the graph takes; ``None`` keeps ``loaded.data_config.input_size``
            (which must then be square).

    Returns:
        The written path.

    Raises:
        ParameterError: ``input_size`` out of range, or a non-square ``loaded`` input without ``input_size``.
        CamError: the ``onnx`` package (needed by the exporter) is missing.
    """
    if input_size is not None:
        loaded = with_input_size(loaded, input_size)
    height, width = loaded.data_config.input_size
    if height != width:
        raise ParameterError(f"The ONNX graph takes a square input; got {height}x{width}: pass `input_size`.")
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError as error:
        raise CamError("Exporting needs the `onnx` package: pip install -r requirements-dev.txt") from error
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = CamGraph(loaded).eval()
    example = torch.zeros(1, height, width, 3, dtype=torch.uint8)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(
            graph,
            (example,),
            str(path),
            input_names=["image"],
            output_names=["logits", "cams"],
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter needs only `onnx`, not onnxscript
        )
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cam-export", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"registry key or timm name (default {DEFAULT_MODEL})")
    parser.add_argument(
        "--input-size", type=int, default=DEFAULT_INPUT_SIZE, help=f"analysis square N (default {DEFAULT_INPUT_SIZE})"
    )
    parser.add_argument(
        "--output-stride",
        type=int,
        default=DEFAULT_OUTPUT_STRIDE,
        help=f"32, 16 or 8 (default {DEFAULT_OUTPUT_STRIDE}, as the app starts)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: export a model; print the file, its size and the graph's shapes. Returns the exit code."""
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    try:
        loaded = load_model(args.model, output_stride=args.output_stride, input_size=args.input_size)
        path = export_onnx(loaded, args.out)
    except CamError as error:
        print(f"cam-export: {error}", file=sys.stderr)
        return 2
    size = args.input_size
    cells = -(-size // loaded.output_stride)
    print(
        f"{path}: {path.stat().st_size / 2**20:.1f} MiB, {loaded.name} ({loaded.weights}), "
        f"image uint8 (1,{size},{size},3) -> logits (1,{loaded.num_classes}), "
        f"cams (1,{loaded.num_classes},~{cells},~{cells}), {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
