"""Analysis resolution: the square a photo is stretched to and the network's output stride.

A CAM has one cell per ``output_stride`` input pixels: the default model at 224 px and stride 32 gives a
7 x 7 map. Two levers make it finer: a larger analysis square ``input_size`` (the forward's cost grows
with its area) and timm's ``output_stride`` 16 or 8 (the last stages dilated instead of strided, same
weights, cost grows with the area of the dilated stages). Measured trade-offs: ``docs/resolution.md``.
"""

from __future__ import annotations

import timm
from torch import nn

from cam_core.errors import ParameterError

OUTPUT_STRIDES: tuple[int, ...] = (32, 16, 8)
"""Output strides :func:`cam_core.models.load_model` accepts: 32 as trained, 16 / 8 dilate the last stages."""
INPUT_SIZE_RANGE: tuple[int, int] = (32, 1024)
"""Smallest and largest analysis square :func:`with_input_size` accepts, in pixels."""


def check_output_stride(output_stride: object) -> int:
    """Return ``output_stride`` as int if it is one of :data:`OUTPUT_STRIDES`, else raise :class:`ParameterError`."""
    if isinstance(output_stride, bool) or not isinstance(output_stride, int) or output_stride not in OUTPUT_STRIDES:
        raise ParameterError(f"`output_stride` must be one of {OUTPUT_STRIDES}, got {output_stride!r}")
    return output_stride


def check_input_size(input_size: object) -> tuple[int, int]:
    """Return ``input_size`` (an int N for N x N, or ``(H, W)``) as ``(H, W)`` if every side lies in
    :data:`INPUT_SIZE_RANGE`; raise :class:`ParameterError` naming ``input_size`` otherwise."""
    sides = (input_size, input_size) if not isinstance(input_size, (tuple, list)) else tuple(input_size)
    low, high = INPUT_SIZE_RANGE
    valid = len(sides) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in sides)
    if not valid:
        raise ParameterError(f"`input_size` must be an int or (H, W) of ints in [{low}, {high}], got {input_size!r}")
    return int(sides[0]), int(sides[1])  # type: ignore[call-overload]


def resolution_label(
    input_size: int | tuple[int, int], output_stride: int, feature_size: tuple[int, int] | None = None
) -> str:
    """Name an analysis resolution by its map size: ``"448 px, stride 16 -> 28x28 map"``.

    Args:
        input_size: N (square) or ``(H_in, W_in)``.
        output_stride: 32, 16 or 8.
        feature_size: the measured ``(h, w)``; ``None`` predicts ``ceil(H_in / stride)`` (timm's ResNets
            and EfficientNets; other architectures may differ by one cell).

    Returns:
        ``"<H_in> px, stride <s> -> <h>x<w> map"`` (``"<H_in>x<W_in> px, ..."`` for a non-square input).
    """
    height, width = check_input_size(input_size)
    h, w = feature_size or (-(-height // output_stride), -(-width // output_stride))
    size = f"{height}" if height == width else f"{height}x{width}"
    return f"{size} px, stride {output_stride} -> {h}x{w} map"


def create_model(arch: str, pretrained: bool, output_stride: int) -> nn.Module:
    """``timm.create_model``, passing ``output_stride`` only when it is not 32 (so the default path is unchanged)."""
    if output_stride == 32:
        return timm.create_model(arch, pretrained=pretrained)
    try:
        return timm.create_model(arch, pretrained=pretrained, output_stride=output_stride)
    except (TypeError, AssertionError) as exc:  # unknown keyword, or timm's `assert output_stride in (...)`
        raise ParameterError(
            f"`output_stride` {output_stride} is not supported by {arch!r} (timm builds it only with stride 32: "
            f"{type(exc).__name__}: {str(exc)[:200]}). Use output_stride=32, or a ResNet / EfficientNet / RegNet."
        ) from exc
