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
* **resolutions**: only the offered :data:`RESOLUTIONS` (the menu's ``"448/16"`` values, or ``/explain``'s
  ``input_size`` and ``output_stride`` as one offered pair; see :func:`resolution`);
* **classes**: empty (top-1), an index in ASCII digits, or a class name (see :func:`class_reference`);
* **boxes**: ``"x0, y0, x1, y1"`` typed, or a drag's corner fractions, inside the photo (see :func:`parse_box`).

Each message names the parameter (```theta_pas` must be ...``). Errors are the library's typed
:class:`~cam_core.errors.CamError` subclasses; :func:`app.errors.user_errors` shows them to the user.

The values that travel together become one typed object here, built by one function whose parameters
*are* the order of the event's inputs: :func:`view_request` (session, class, :class:`Controls`, ground
truth) and :func:`crf_params`. The layout gathers its components by those parameter names
(:data:`VIEW`, :data:`CRF`, see :mod:`app.wiring`), so the two orders cannot drift apart.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

import cam_core
from app.state import Resolution, Session
from cam_core.crf import CrfParams
from cam_core.localize import LocalizationConfig

T = TypeVar("T")

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
MAX_UPLOAD_MB = 20
NOT_A_FILE = "The upload did not arrive as a file; upload it again."
_DIGITS = re.compile(r"[0-9]{1,6}")


def allowed_roots() -> tuple[str, ...]:
    """Real paths of the folders an image argument may point into: Gradio's upload folder, the examples."""
    from gradio.utils import get_upload_folder  # here, so that the Gradio-free modules importing this stay so

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


# ---------------------------------------------------------------- ground-truth boxes


def parse_box(value: Any, size: tuple[int, int]) -> np.ndarray | None:
    """``"x0, y0, x1, y1"`` in original pixels -> int64 (4,), or ``None`` for an empty field.

    Args:
        value: the ground-truth field's text (``None`` counts as empty).
        size: ``(H, W)`` of the photo: the box must lie inside it.

    Raises:
        ParameterError: not a short text, not four numbers, corners out of order, or outside the photo.
    """
    box_text = text(value, "ground-truth box")
    if not box_text.strip():
        return None
    try:
        values = [round(float(v)) for v in box_text.replace(";", ",").split(",")]
    except (ValueError, OverflowError) as exc:
        raise cam_core.ParameterError(f"Ground-truth box {box_text!r}: write four numbers `x0, y0, x1, y1`.") from exc
    if len(values) != 4 or values[2] < values[0] or values[3] < values[1]:
        raise cam_core.ParameterError(f"Ground-truth box {box_text!r}: need four numbers with x0 <= x1 and y0 <= y1.")
    height, width = size
    if values[0] < 0 or values[1] < 0 or values[2] >= width or values[3] >= height:
        raise cam_core.ParameterError(f"Ground-truth box {box_text!r} leaves the {width}x{height} photo.")
    return np.asarray(values, dtype=np.int64)


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
    """``"x0, y0, x1, y1"``: the ground-truth field's format (see :func:`parse_box`)."""
    return ", ".join(str(int(v)) for v in box)


# ---------------------------------------------------------------- analysis resolution


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

DEFAULT_PRESET = "sharp (448 px)"
"""The preset the page starts from: every threshold default and the default resolution are read from it.

Its 448 px / stride 16 (a 28 x 28 map) is the best trade-off measured on 120 full-resolution ImageNet photos
(``docs/resolution.md``): MaxBoxAccV2 55.6 for plain CAM (48.3 at 224 / 32, 55.8 best at 336 / 16) and 60.0
for NWC + PaS (48.6 at 224 / 32; 60.8 at 512 / 16 costs 1.65x more and 1.7 points of top-1), top-1 unchanged
(70.0), for a forward 3.7x the 224 / 32 one (156 vs 42 ms, one thread). The cheaper choice is 336 / 16.
"""
_START = cam_core.PRESETS[DEFAULT_PRESET]
DEFAULT_RESOLUTION = Resolution(_START.input_size, _START.output_stride)
"""The resolution a page and an ``/explain`` call start from: :data:`DEFAULT_PRESET`'s (448 px, stride 16)."""


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


# ---------------------------------------------------------------- typed objects built where values enter


@dataclass(frozen=True)
class Controls:
    """The slider and toggle values shared by every view; the defaults are :data:`DEFAULT_PRESET`'s.

    Attributes:
        theta_mas: θ of the plain panel's MaS rule (threshold = θ · max), in ``[0, 1]``.
        theta_pas: θ of the PaS rule (threshold = θ · P_p), in ``[0, 1]``.
        percentile: p of P_p, in ``(0, 100]``.
        tap: the improved panel uses the TAP-trained partner model.
        nwc: the improved panel clamps negative class weights.
        pas: the improved panel thresholds by PaS (else MaS with ``theta_mas``).
    """

    theta_mas: float = _START.theta_mas
    theta_pas: float = _START.theta_pas
    percentile: float = _START.percentile
    tap: bool = False
    nwc: bool = True
    pas: bool = True

    @classmethod
    def of(cls, theta_mas: Any, theta_pas: Any, percentile: Any, tap: Any, nwc: Any, pas: Any) -> Controls:
        """From raw request values, checked strictly (every event is reachable over HTTP).

        Raises:
            ParameterError: naming the parameter: not a number in range, or not exactly true / false.
        """
        return cls(
            number(theta_mas, "theta_mas", 0.0, 1.0),
            number(theta_pas, "theta_pas", 0.0, 1.0),
            number(percentile, "percentile", 0.0, 100.0, low_open=True),
            flag(tap, "tap"),
            flag(nwc, "nwc"),
            flag(pas, "pas"),
        )

    @property
    def plain_config(self) -> LocalizationConfig:
        """The plain panel's rule: plain CAM, MaS at :attr:`theta_mas`."""
        return LocalizationConfig(nwc=False, rule="mas", theta=self.theta_mas)

    @property
    def ours_config(self) -> LocalizationConfig:
        """The improved panel's rule: NWC if on, PaS at :attr:`theta_pas` if on, else MaS at :attr:`theta_mas`."""
        if self.pas:
            return LocalizationConfig(self.nwc, "pas", self.theta_pas, self.percentile)
        return LocalizationConfig(self.nwc, "mas", self.theta_mas, self.percentile)

    @property
    def modules(self) -> list[str]:
        """The improved panel's active modules, in the paper's order (``["TAP", "NWC", "PaS"]`` at most)."""
        return [name for name, on in (("TAP", self.tap), ("NWC", self.nwc), ("PaS", self.pas)) if on]

    @property
    def name(self) -> str:
        """``TAP+NWC+PaS``-style name of the improved panel (``CAM`` when no module is on)."""
        return "+".join(self.modules) or "CAM"


CONTROL_FIELDS = tuple(field.name for field in fields(Controls))
"""``theta_mas, theta_pas, percentile, tap, nwc, pas``: also the order of ``/explain``'s control parameters."""


@dataclass(frozen=True)
class ViewRequest:
    """Everything a localisation view is computed from, checked: one object from the event to the library.

    Attributes:
        session: the browser session's photo (``None`` before the first upload).
        class_ref: the class as given: ``None`` (top-1), an index, or a name (see :func:`class_reference`).
        controls: the sliders and toggles.
        gt: int64 (4,) ground-truth box in original pixels, inclusive, or ``None``.
    """

    session: Session | None
    class_ref: int | str | None = None
    controls: Controls = Controls()
    gt: np.ndarray | None = None

    def need_session(self) -> Session:
        """The session, or the "upload first" message (``InvalidImageError``)."""
        return need_session(self.session)


def need_session(session: Session | None) -> Session:
    """``session`` itself, or ``InvalidImageError`` asking for a photo first."""
    if session is None:
        raise cam_core.InvalidImageError("Upload a photo first (or pick an example).")
    return session


def view_request(
    session: Session | None,
    class_choice: Any,
    theta_mas: Any,
    theta_pas: Any,
    percentile: Any,
    tap: Any,
    nwc: Any,
    pas: Any,
    gt_text: Any = "",
) -> ViewRequest:
    """The one conversion of a view event's raw inputs; its parameters are the order the layout gathers them in.

    Raises:
        ParameterError: a control, the class or the ground-truth box, naming it.
    """
    controls = Controls.of(theta_mas, theta_pas, percentile, tap, nwc, pas)
    reference = class_reference(class_choice)
    gt = parse_box(gt_text, session.size) if session is not None else None  # no photo: the handler says so
    return ViewRequest(session, reference, controls, gt)


def crf_params(
    gaussian_sxy: Any,
    gaussian_compat: Any,
    bilateral_sxy: Any,
    bilateral_srgb: Any,
    bilateral_compat: Any,
    iterations: Any,
) -> CrfParams:
    """The CRF sliders' raw values as :class:`~cam_core.crf.CrfParams` (which checks the ranges itself).

    Raises:
        ParameterError: not a number in ``[0, 1000]``, or ``iterations`` not a whole number in ``[1, 100]``.
    """
    value = lambda raw, name: number(raw, name, 0.0, 1000.0)  # noqa: E731
    return CrfParams(
        value(gaussian_sxy, "gaussian_sxy"),
        value(gaussian_compat, "gaussian_compat"),
        value(bilateral_sxy, "bilateral_sxy"),
        value(bilateral_srgb, "bilateral_srgb"),
        value(bilateral_compat, "bilateral_compat"),
        integer(iterations, "iterations", 1, 100),
    )


@dataclass(frozen=True)
class Entrance(Generic[T]):
    """Several raw event inputs that become one typed argument: ``build``'s parameters name them, in order.

    Attributes:
        build: the conversion (:func:`view_request`, :func:`crf_params`).
        omit: trailing parameters with defaults that this event does not send (a drag replaces the
            ground-truth field, so it does not read the field's old text).
    """

    build: Callable[..., T]
    omit: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        """The raw inputs' names, in the order the event sends them."""
        return tuple(name for name in inspect.signature(self.build).parameters if name not in self.omit)


VIEW: Entrance[ViewRequest] = Entrance(view_request)
"""Session, class, the six controls, the ground-truth field: every localisation view's inputs."""
DRAG: Entrance[ViewRequest] = Entrance(view_request, omit=("gt_text",))
""":data:`VIEW` without the ground-truth field (a dragged box replaces it)."""
CRF: Entrance[CrfParams] = Entrance(crf_params)
"""The six CRF sliders."""
