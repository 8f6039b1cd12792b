"""The Resolution menu: the measured input sizes and output strides the app offers, and the checks of a chosen one.

Part of :mod:`app.inputs`, which re-exports every name here (the default, :data:`app.inputs.DEFAULT_RESOLUTION`,
is read there from the starting preset): only the offered :data:`RESOLUTIONS`, as the menu's ``"448/16"`` values
or ``/explain``'s ``input_size`` and ``output_stride`` as one offered pair (see :func:`resolution`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cam_core
from app.checks import _show, choice, integer
from app.state import Resolution


@dataclass(frozen=True)
class ResolutionChoice:
    """One entry of the Resolution menu.

    Attributes:
        resolution: input size and output stride.
        forward_cost: the forward's time relative to 224 px / stride 32, measured with one thread
            (``docs/resolution.md``, ``docs/bench_resolution.json``).
    """

    resolution: Resolution
    forward_cost: float

    @property
    def label(self) -> str:
        """``"448 px, stride 16 -> 28x28 map"`` (:func:`cam_core.resolution_label`)."""
        return self.resolution.label


RESOLUTIONS: tuple[ResolutionChoice, ...] = (
    ResolutionChoice(Resolution(224, 32), 1.0),
    ResolutionChoice(Resolution(336, 32), 1.7),
    ResolutionChoice(Resolution(336, 16), 2.4),
    ResolutionChoice(Resolution(448, 32), 3.4),
    ResolutionChoice(Resolution(448, 16), 3.7),
    ResolutionChoice(Resolution(512, 16), 6.2),
)
"""The measured settings the app offers (``docs/resolution.md``'s grid; stride 8 costs 3.7-23x and is left out:
at 224 px it gained no localisation, at 448 / 512 px it is too slow to explore a photo with)."""


def resolution_choices() -> list[tuple[str, str]]:
    """The Resolution menu's ``(label, value)`` pairs, e.g. ``("448 px, stride 16 -> 28x28 map", "448/16")``."""
    return [(choice.label, choice.resolution.value) for choice in RESOLUTIONS]


def resolution_info() -> str:
    """The Resolution menu's info line: what N and the stride do, and each choice's measured forward cost."""
    costs = ", ".join(f"{c.resolution.map_side}x{c.resolution.map_side} x{c.forward_cost:.1f}" for c in RESOLUTIONS)
    return (
        "The photo is stretched to N x N px; the map has N / stride cells a side. Forward time vs 224 px "
        f"(measured): {costs}. Sliders stay instant."
    )


def resolution_choice(value: Any, name: str = "resolution") -> Resolution:
    """A Resolution menu value (``"448/16"``) as :class:`~app.models.Resolution`; only the offered ones.

    Raises:
        ParameterError: naming ``name`` and listing the offered values.
    """
    offered = {choice.resolution.value: choice.resolution for choice in RESOLUTIONS}
    return offered[choice(value, name, offered)]


def resolution(input_size: Any, output_stride: Any) -> Resolution:
    """``/explain``'s ``input_size`` and ``output_stride`` as an offered :class:`~app.models.Resolution`.

    Raises:
        ParameterError: naming the parameter: not a whole number, not an offered value, or a pair not offered
            together (``input_size`` 224 with ``output_stride`` 16).
    """
    sizes = sorted({c.resolution.input_size for c in RESOLUTIONS})
    strides = sorted({c.resolution.output_stride for c in RESOLUTIONS}, reverse=True)
    size = integer(input_size, "input_size", min(sizes), max(sizes))
    if size not in sizes:
        raise cam_core.ParameterError(f"`input_size` must be one of {sizes}, got {_show(input_size)}.")
    stride = integer(output_stride, "output_stride", min(strides), max(strides))
    if stride not in strides:
        raise cam_core.ParameterError(f"`output_stride` must be one of {strides}, got {_show(output_stride)}.")
    offered = [c.resolution for c in RESOLUTIONS]
    if Resolution(size, stride) not in offered:
        pairs = ", ".join(r.value for r in offered)
        raise cam_core.ParameterError(
            f"`input_size` {size} with `output_stride` {stride} is not offered; the offered pairs "
            f"(input_size/output_stride): {pairs}."
        )
    return Resolution(size, stride)
