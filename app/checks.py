"""The scalar checks of hostile request values: numbers, whole numbers, booleans, texts, menu choices and class
references, and the safe printing of what was sent.

Part of :mod:`app.inputs`, which re-exports every name here and states the rules every input follows: real
``int`` / ``float`` values (never ``bool`` or strings), finite and in range; ``True`` / ``False`` only; one of a
menu's values exactly. Each message names the parameter (```theta_pas` must be ...``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import cam_core

_DIGITS = re.compile(r"[0-9]{1,6}")


def number(value: Any, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    """A finite real number in ``[low, high]`` (``(low, high]`` with ``low_open``), else ``ParameterError``."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise cam_core.ParameterError(f"`{name}` must be a number in {interval}, got {_show(value)}.")
    result = float(value)
    if not math.isfinite(result) or result > high or result < low or (low_open and result == low):
        raise cam_core.ParameterError(f"`{name}` must be a number in {interval}, got {_show(value)}.")
    return result


def integer(value: Any, name: str, low: int, high: int) -> int:
    """An integral number in ``[low, high]`` (``3`` or ``3.0``), else ``ParameterError``."""
    result = number(value, name, low, high)
    if not result.is_integer():
        raise cam_core.ParameterError(f"`{name}` must be a whole number in [{low}, {high}], got {_show(value)}.")
    return int(result)


def flag(value: Any, name: str) -> bool:
    """``True`` or ``False`` exactly (JSON ``true`` / ``false``), else ``ParameterError``."""
    if not isinstance(value, bool):
        raise cam_core.ParameterError(f"`{name}` must be true or false, got {_show(value)}.")
    return value


def text(value: Any, name: str, max_length: int = 200) -> str:
    """A string (``None`` -> ``""``) of at most ``max_length`` characters without NUL, else ``ParameterError``."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > max_length or "\x00" in value:
        raise cam_core.ParameterError(f"`{name}` must be a text of at most {max_length} characters.")
    return value


def choice(value: Any, name: str, options: Iterable[str]) -> str:
    """One of ``options`` exactly, else ``ParameterError`` listing them."""
    allowed = list(options)
    if not isinstance(value, str) or value not in allowed:
        raise cam_core.ParameterError(f"`{name}` must be one of {allowed}, got {_show(value)}.")
    return value


def choices(value: Any, name: str, options: Iterable[str]) -> tuple[str, ...]:
    """A list of distinct values of ``options`` (a checkbox group's; ``None`` -> none), in ``options``' order, else
    ``ParameterError`` listing them. At most ``len(options)`` items, so the check is bounded by the menu."""
    allowed = list(options)
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > len(allowed):
        raise cam_core.ParameterError(
            f"`{name}` must be a list of at most {len(allowed)} of {allowed}, got {_show(value)}."
        )
    unknown = [item for item in value if not isinstance(item, str) or item not in allowed]
    if unknown:
        raise cam_core.ParameterError(f"`{name}` must hold only values of {allowed}, got {_show(unknown[0])}.")
    if len(set(value)) != len(value):
        raise cam_core.ParameterError(f"`{name}` names a value twice: {_show(value)}.")
    return tuple(option for option in allowed if option in value)


def class_reference(value: Any, name: str = "class") -> int | str | None:
    """A class as given: ``None`` (top-1), an ``int`` index, or a name (resolved against the analysis later).

    Accepts ``None`` / ``""``, an ``int``, a string of ASCII digits, or a class name of at most 200
    characters; digit-like text such as ``"²"`` or ``"١"`` is a name (and then unknown), never an index.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    name_text = text(value, name).strip()
    if not name_text:
        return None
    return int(name_text) if _DIGITS.fullmatch(name_text) else name_text


def shown(name: str, limit: int = 60) -> str:
    """A user-supplied name made safe to print: control characters escaped, at most ``limit`` characters."""
    safe = name.encode("unicode_escape").decode("ascii") if not name.isprintable() else name
    return safe if len(safe) <= limit else f"{safe[: limit - 3]}..."


def _show(value: Any) -> str:
    """A short, safe rendering of a hostile value for an error message."""
    shown = repr(value)
    return shown if len(shown) <= 40 else f"{shown[:37]}..."
