"""Everything that arrives over HTTP, checked and converted once, where it enters.

Every event of the page is reachable with raw HTTP (``/gradio_api/call/<name>``, ``queue/join`` with an
``fn_index``, ``/gradio_api/run/predict``), whatever its ``api_visibility`` says, and some run with
``preprocess=False``, so Gradio's own checks do not apply. Every callback therefore converts its raw
inputs with the functions here before using them:

* **files**: only a regular file whose real path (symlinks resolved) lies inside Gradio's upload folder
  or the app's ``assets/examples``, at most :data:`MAX_UPLOAD_MB`. Any other path, folder, device or
  missing file gets one message that says nothing about the path (:data:`NOT_A_FILE`);
* **numbers**: real ``int`` / ``float`` values (never ``bool`` or strings), finite and in range;
* **booleans**: ``True`` / ``False`` only (``"false"`` is refused, never read as true);
* **models**: only the menu's values (:func:`app.models.model_choices`), never a path or a hub name;
* **classes**: empty (top-1), an index in ASCII digits, or a class name (see :func:`parse_class`).

Each message names the parameter (```theta_pas` must be ...``). Errors are the library's typed
:class:`~cam_core.errors.CamError` subclasses; :func:`app.callbacks.user_errors` shows them to the user.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gradio.utils import get_upload_folder

import cam_core

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
MAX_UPLOAD_MB = 20
NOT_A_FILE = "The upload did not arrive as a file; upload it again."
_DIGITS = re.compile(r"[0-9]{1,6}")


def allowed_roots() -> tuple[str, ...]:
    """Real paths of the folders an image argument may point into: Gradio's upload folder, the examples."""
    return os.path.realpath(get_upload_folder()), os.path.realpath(EXAMPLES)


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(os.path.commonpath([path, root]) == root for root in roots)


def upload_path(payload: Any, name: str = "image") -> str:
    """The checked real path of an uploaded file, from a Gradio ``FileData`` dict, an object with ``.path``,
    or a plain string.

    Raises:
        InvalidImageError: no upload (``None``), or anything but a regular file inside :func:`allowed_roots`
            (one generic message, :data:`NOT_A_FILE`), or a file over :data:`MAX_UPLOAD_MB`.
    """
    if payload is None:
        raise cam_core.InvalidImageError(f"Upload a photo first (or pick an example): `{name}` is empty.")
    raw = payload.get("path") if isinstance(payload, dict) else getattr(payload, "path", payload)
    if not isinstance(raw, str) or not raw or "\x00" in raw or len(raw) > 4096:
        raise cam_core.InvalidImageError(NOT_A_FILE)
    real = os.path.realpath(raw)
    try:
        info = os.stat(real)
    except (OSError, ValueError):
        raise cam_core.InvalidImageError(NOT_A_FILE) from None
    if not _inside(real, allowed_roots()) or not stat.S_ISREG(info.st_mode):
        raise cam_core.InvalidImageError(NOT_A_FILE)
    if info.st_size > MAX_UPLOAD_MB * 2**20:
        raise cam_core.InvalidImageError(f"The file is {info.st_size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_MB} MB.")
    return real


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
