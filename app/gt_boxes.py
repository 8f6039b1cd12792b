"""Ground-truth boxes where they enter: the typed field's text and a drag's corner fractions, checked against the
photo, and the field's format written back.

Part of :mod:`app.inputs`, which re-exports every name here: ``"x0, y0, x1, y1; x0, y0, x1, y1"`` typed (at most
:data:`MAX_GT_BOXES`), or a drag's corner fractions, inside the photo.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

import cam_core
from app.checks import shown

MAX_GT_BOXES = 20
"""The most ground-truth boxes one photo takes (typed or drawn)."""
MAX_GT_CHARS = 40 * MAX_GT_BOXES
"""The longest ground-truth text: :data:`MAX_GT_BOXES` boxes of four 6-digit numbers fit with room to spare."""


def parse_boxes(value: Any, size: tuple[int, int]) -> np.ndarray | None:
    """``"x0, y0, x1, y1; x0, y0, x1, y1"`` in original pixels -> int64 (M, 4), or ``None`` for an empty field.

    Boxes are separated by ``;`` (or line breaks); empty pieces (a trailing ``;``) are skipped, so today's
    single-box text ``"x0, y0, x1, y1"`` is one box. Numbers are rounded to whole pixels.

    Args:
        value: the ground-truth field's text (``None`` counts as empty).
        size: ``(H, W)`` of the photo: every box must lie inside it.

    Returns:
        int64 (M, 4) inclusive boxes, 1 <= M <= :data:`MAX_GT_BOXES`, in the order given; or ``None``.

    Raises:
        ParameterError: not a text, a NUL, more than :data:`MAX_GT_BOXES` boxes or :data:`MAX_GT_CHARS`
            characters, or a box that is not four finite numbers with corners in order inside the photo
            (the message names the box and, with several, its position).
    """
    if value is None:
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise cam_core.ParameterError("Ground-truth boxes must be a text of numbers `x0, y0, x1, y1; ...`.")
    if len(value) > MAX_GT_CHARS:  # refused before splitting: a huge text is never split into pieces
        separators = value.count(";") + value.count("\n")
        if separators >= MAX_GT_BOXES:
            raise cam_core.ParameterError(f"At most {MAX_GT_BOXES} ground-truth boxes, got {separators + 1}.")
        raise cam_core.ParameterError(
            f"The ground-truth text has {len(value)} characters; the limit is {MAX_GT_CHARS} "
            f"(up to {MAX_GT_BOXES} boxes `x0, y0, x1, y1`)."
        )
    pieces = [piece.strip() for piece in re.split(r"[;\n]", value) if piece.strip()]
    if not pieces:
        return None
    if len(pieces) > MAX_GT_BOXES:
        raise cam_core.ParameterError(f"At most {MAX_GT_BOXES} ground-truth boxes, got {len(pieces)}: remove some.")
    boxes = [_one_box(piece, size, f" (box {i + 1} of {len(pieces)})" if len(pieces) > 1 else "")
             for i, piece in enumerate(pieces)]  # fmt: skip
    return np.asarray(boxes, dtype=np.int64).reshape(-1, 4)


def _one_box(piece: str, size: tuple[int, int], where: str) -> list[int]:
    """One ``"x0, y0, x1, y1"`` piece -> four whole pixels inside the ``(H, W)`` photo, else ``ParameterError``."""
    named = f"Ground-truth box {shown(piece)!r}{where}"
    try:
        values = [round(float(v)) for v in piece.split(",")]  # nan -> ValueError, inf -> OverflowError
    except (ValueError, OverflowError) as exc:
        raise cam_core.ParameterError(f"{named}: write four numbers `x0, y0, x1, y1`.") from exc
    if len(values) != 4 or values[2] < values[0] or values[3] < values[1]:
        raise cam_core.ParameterError(f"{named}: need four numbers `x0, y0, x1, y1` with x0 <= x1 and y0 <= y1.")
    height, width = size
    if values[0] < 0 or values[1] < 0 or values[2] >= width or values[3] >= height:
        raise cam_core.ParameterError(f"{named} leaves the {width}x{height} photo.")
    return values


def box_from_fractions(fractions: Any, size: tuple[int, int]) -> np.ndarray:
    """A box dragged on the displayed photo -> int64 (4,) inclusive box in original pixels.

    Args:
        fractions: ``(fx0, fy0, fx1, fy1)``, the drag's corners as fractions of the picture's width and
            height (0 = left / top edge, 1 = right / bottom edge); slightly outside [0, 1] is clipped.
        size: ``(H, W)`` of the photo.

    Raises:
        ParameterError: not four finite numbers, or an empty drag (``fx1 <= fx0`` or ``fy1 <= fy0``).
    """
    try:
        values = np.asarray(fractions, dtype=np.float64).reshape(4)
    except (TypeError, ValueError) as exc:
        raise cam_core.ParameterError(f"A drawn box needs four fractions x0, y0, x1, y1; got {fractions!r}.") from exc
    if not np.isfinite(values).all() or values[2] <= values[0] or values[3] <= values[1]:
        raise cam_core.ParameterError(f"A drawn box needs x0 < x1 and y0 < y1; got {values.tolist()}.")
    height, width = size
    fx0, fy0, fx1, fy1 = np.clip(values, 0.0, 1.0)
    # the drag covers [fx0 W, fx1 W) continuously: the pixels it touches, at least one
    x0, y0 = min(int(np.floor(fx0 * width)), width - 1), min(int(np.floor(fy0 * height)), height - 1)
    x1, y1 = max(x0, int(np.ceil(fx1 * width)) - 1), max(y0, int(np.ceil(fy1 * height)) - 1)
    return np.asarray([x0, y0, x1, y1], dtype=np.int64)


def format_box(box: np.ndarray) -> str:
    """``"x0, y0, x1, y1"``: one box in the ground-truth field's format (see :func:`parse_boxes`)."""
    return ", ".join(str(int(v)) for v in box)


def format_boxes(boxes: np.ndarray) -> str:
    """``"x0, y0, x1, y1; x0, y0, x1, y1"``: int (M, 4) boxes as the ground-truth field writes them."""
    return "; ".join(format_box(box) for box in np.asarray(boxes).reshape(-1, 4))
