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
* **boxes**: ``"x0, y0, x1, y1; x0, y0, x1, y1"`` typed (at most :data:`MAX_GT_BOXES`), or a drag's corner
  fractions, inside the photo (see :func:`parse_boxes`).

Each message names the parameter (```theta_pas` must be ...``). Errors are the library's typed
:class:`~cam_core.errors.CamError` subclasses; :func:`app.errors.user_errors` shows them to the user.

The values that travel together become one typed object here, built by one function whose parameters
*are* the order of the event's inputs: :func:`view_request` (session, class, :class:`Controls`, ground
truth) and :func:`crf_params`. The layout gathers its components by those parameter names
(:data:`VIEW`, :data:`CRF`, see :mod:`app.events`), so the two orders cannot drift apart.

The checks live beside this module and are re-exported here, so every caller imports them from
:mod:`app.inputs`: the scalar ones in :mod:`app.checks`, the ground-truth boxes in :mod:`app.gt_boxes`, the
Resolution menu in :mod:`app.resolutions`.
"""

from __future__ import annotations

import inspect
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

import cam_core
from app.checks import choice as choice
from app.checks import class_reference, flag, integer, number
from app.checks import shown as shown
from app.checks import text as text
from app.gt_boxes import MAX_GT_BOXES as MAX_GT_BOXES
from app.gt_boxes import MAX_GT_CHARS as MAX_GT_CHARS
from app.gt_boxes import box_from_fractions as box_from_fractions
from app.gt_boxes import format_box as format_box
from app.gt_boxes import format_boxes as format_boxes
from app.gt_boxes import parse_boxes
from app.resolutions import RESOLUTIONS as RESOLUTIONS
from app.resolutions import ResolutionChoice as ResolutionChoice
from app.resolutions import resolution as resolution
from app.resolutions import resolution_choice as resolution_choice
from app.resolutions import resolution_choices as resolution_choices
from app.resolutions import resolution_info as resolution_info
from app.state import Resolution, Session
from cam_core.crf import CrfParams
from cam_core.family import METHOD_LABELS, NWC_DEFINED
from cam_core.localize import LocalizationConfig

T = TypeVar("T")

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
EXAMPLE_FILES = ("cat.jpg", "coffee.jpg", "rocket.jpg", "coins.jpg", "astronaut.jpg")
"""The bundled examples, in the order the page shows them (a deep link's ``example`` is one of them)."""
OPENING_EXAMPLE = "cat.jpg"
"""The example the page opens on, analysed (a link naming no ``example`` shows it too): its analysis at the default
model and resolution is made once at start-up and pinned in the caches (:func:`app.analyses.pin_opening_example`)."""
MAX_UPLOAD_MB = 20
NOT_A_FILE = "The upload did not arrive as a file; upload it again."
MAX_CRF_ITERATIONS = 20
"""Mean-field iterations a CRF event may ask for: the CRF tab's slider range, also over raw HTTP."""


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


# ---------------------------------------------------------------- the starting preset


DEFAULT_PRESET = "sharp (448 px)"
"""The preset the page starts from: every threshold default and the default resolution are read from it.

Its 448 px / stride 16 (a 28 x 28 map) is the best trade-off measured on 120 full-resolution ImageNet photos
(``docs/resolution.md``): MaxBoxAccV2 55.6 for plain CAM (48.3 at 224 / 32, 55.8 best at 336 / 16) and 60.0
for NWC + PaS (48.6 at 224 / 32; 60.8 at 512 / 16 costs 1.65x more and 1.7 points of top-1), top-1 unchanged
(70.0), for a forward 3.7x the 224 / 32 one (156 vs 42 ms, one thread). The cheaper choice is 336 / 16.
"""
_START = cam_core.PRESETS[DEFAULT_PRESET]
METHODS: dict[str, str] = {"cam": "CAM", **METHOD_LABELS}
"""The method menu (value -> label): plain CAM (exact, the default) and the gradient CAM-family methods of
:mod:`cam_core.family` (Score-CAM is not offered: minutes per photo here, ``docs/methods.md``)."""
DEFAULT_RESOLUTION = Resolution(_START.input_size, _START.output_stride)
"""The resolution a page and an ``/explain`` call start from: :data:`DEFAULT_PRESET`'s (448 px, stride 16)."""


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
        method: whose map both panels threshold: ``"cam"`` (exact, from the cached forward pass) or a gradient
            CAM-family method of :data:`METHODS` (Grad-CAM, ...; :mod:`cam_core.family`).
    """

    theta_mas: float = _START.theta_mas
    theta_pas: float = _START.theta_pas
    percentile: float = _START.percentile
    tap: bool = False
    nwc: bool = True
    pas: bool = True
    method: str = "cam"

    @classmethod
    def of(
        cls, theta_mas: Any, theta_pas: Any, percentile: Any, tap: Any, nwc: Any, pas: Any, method: Any = "cam"
    ) -> Controls:
        """From raw request values, checked strictly (every event is reachable over HTTP).

        Raises:
            ParameterError: naming the parameter: not a number in range, not exactly true / false, or not a method
                of the menu (:data:`METHODS`).
        """
        return cls(
            number(theta_mas, "theta_mas", 0.0, 1.0),
            number(theta_pas, "theta_pas", 0.0, 1.0),
            number(percentile, "percentile", 0.0, 100.0, low_open=True),
            flag(tap, "tap"),
            flag(nwc, "nwc"),
            flag(pas, "pas"),
            choice(method, "method", METHODS),
        )

    @property
    def nwc_defined(self) -> bool:
        """Whether NWC means anything for :attr:`method`: plain CAM, Grad-CAM and XGrad-CAM weigh channels with
        signed weights; LayerCAM's and Grad-CAM++'s weights are never negative (:data:`cam_core.family.NWC_DEFINED`)."""
        return self.method == "cam" or self.method in NWC_DEFINED

    @property
    def nwc_applied(self) -> bool:
        """NWC as the improved panel applies it: on, and defined for the method (else the toggle does nothing)."""
        return self.nwc and self.nwc_defined

    @property
    def plain_config(self) -> LocalizationConfig:
        """The plain panel's rule: the method's map (plain CAM by default), MaS at :attr:`theta_mas`."""
        return LocalizationConfig(nwc=False, rule="mas", theta=self.theta_mas)

    @property
    def ours_config(self) -> LocalizationConfig:
        """The improved panel's rule: NWC if on (and defined), PaS at :attr:`theta_pas` if on, else MaS at
        :attr:`theta_mas`."""
        if self.pas:
            return LocalizationConfig(self.nwc_applied, "pas", self.theta_pas, self.percentile)
        return LocalizationConfig(self.nwc_applied, "mas", self.theta_mas, self.percentile)

    @property
    def modules(self) -> list[str]:
        """The improved panel's active modules, in the paper's order (``["TAP", "NWC", "PaS"]`` at most; NWC only
        where the method defines it)."""
        return [name for name, on in (("TAP", self.tap), ("NWC", self.nwc_applied), ("PaS", self.pas)) if on]

    @property
    def as_cam(self) -> Controls:
        """These controls with plain CAM's map: for the views that are CAM's own (Segmentation, Why TAP), whatever
        the method menu says."""
        return replace(self, method="cam")

    @property
    def method_label(self) -> str:
        """The method as people write it: ``"CAM"``, ``"Grad-CAM"``, ``"LayerCAM"``..."""
        return METHODS[self.method]

    @property
    def baseline(self) -> str:
        """The blue panel's map: ``"plain CAM"``, or the method's (``"Grad-CAM"``)."""
        return "plain CAM" if self.method == "cam" else self.method_label

    @property
    def baseline_rule(self) -> str:
        """The blue panel's rule: ``"plain CAM, MaS"``, ``"Grad-CAM, MaS"``."""
        return f"{self.baseline}, MaS"

    @property
    def name(self) -> str:
        """``TAP+NWC+PaS``-style name of the improved panel (``CAM`` when no module is on), the method first when it
        is not plain CAM (``Grad-CAM+NWC+PaS``)."""
        if self.method == "cam":
            return "+".join(self.modules) or "CAM"
        return "+".join([self.method_label, *self.modules])


CONTROL_FIELDS = tuple(field.name for field in fields(Controls))
"""``theta_mas, theta_pas, percentile, tap, nwc, pas, method``: the controls every view follows (``/explain`` declares
its own parameters, append-only: :data:`app.api.API_PARAMETERS`)."""

# name: (minimum, maximum, step, label); the values come from Controls() and the preset. The control bar lays the
# sliders out from it (app.controls; τ: the Why TAP tab, app.tabs.why_tap) and a deep link's value is checked against
# its range (app.link.query).
THRESHOLD_SLIDERS: dict[str, tuple[float, float, float, str]] = {
    "theta_mas":  (0.0,  1.0,   0.01, "θ for MaS: threshold = θ · max"),
    "theta_pas":  (0.0,  1.0,   0.01, "θ for PaS: threshold = θ · P_p"),
    "percentile": (50.0, 100.0, 1.0,  "percentile p for PaS"),
    "tau":        (0.0,  0.5,   0.01, "τ for TAP: a channel is active where F_k > τ · max F_k"),
}  # fmt: skip


@dataclass(frozen=True)
class ViewRequest:
    """Everything a localisation view is computed from, checked: one object from the event to the library.

    Attributes:
        session: the browser session's photo (``None`` before the first upload).
        class_ref: the class as given: ``None`` (top-1), an index, or a name (see :func:`class_reference`).
        controls: the sliders and toggles.
        gt: int64 (M, 4) ground-truth boxes in original pixels, inclusive, 1 <= M <= :data:`MAX_GT_BOXES`,
            or ``None``; each rule is scored by its IoU with the best-matching one (WSOL's GT-known rule).
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


def view_request(session: Session | None, class_choice: Any, controls: Controls, gt_text: Any = "") -> ViewRequest:
    """The one conversion of a view event's inputs (:data:`VIEW`: the raw controls arrive as one checked
    :class:`Controls`); its parameters are the order the layout gathers them in.

    Raises:
        ParameterError: the class or the ground-truth box, naming it.
    """
    reference = class_reference(class_choice)
    gt = parse_boxes(gt_text, session.size) if session is not None else None  # no photo: the handler says so
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
        ParameterError: not a number in ``[0, 1000]``, or ``iterations`` not a whole number in
            ``[1, MAX_CRF_ITERATIONS]`` (the slider's range: a CRF's time grows with it, and it runs in the slow lane).
    """
    value = lambda raw, name: number(raw, name, 0.0, 1000.0)  # noqa: E731
    return CrfParams(
        value(gaussian_sxy, "gaussian_sxy"),
        value(gaussian_compat, "gaussian_compat"),
        value(bilateral_sxy, "bilateral_sxy"),
        value(bilateral_srgb, "bilateral_srgb"),
        value(bilateral_compat, "bilateral_compat"),
        integer(iterations, "iterations", 1, MAX_CRF_ITERATIONS),
    )


@dataclass(frozen=True)
class Entrance(Generic[T]):
    """Several raw event inputs that become one typed argument: ``build``'s parameters name them, in order; a
    parameter named ``controls`` stands for every control (:data:`CONTROL_FIELDS`), checked into one
    :class:`Controls`, so a new control reaches every view event without touching their entrances.

    Attributes:
        build: the conversion (:func:`view_request`, :func:`crf_params`).
        omit: trailing parameters with defaults that this event does not convert (a drag replaces the
            ground-truth field, so the field's old text is not parsed here; an adding drag gets it raw).
    """

    build: Callable[..., T]
    omit: tuple[str, ...] = ()

    @property
    def parameters(self) -> tuple[str, ...]:
        """``build``'s parameters that this entrance fills, in order."""
        return tuple(name for name in inspect.signature(self.build).parameters if name not in self.omit)

    @property
    def fields(self) -> tuple[str, ...]:
        """The raw inputs' names, in the order the event sends them (``controls`` expanded)."""
        return tuple(field for name in self.parameters for field in (CONTROL_FIELDS if name == "controls" else (name,)))

    def convert(self, *values: Any) -> T:
        """``build`` from one raw value per :attr:`fields`, the controls' values checked into one :class:`Controls`.

        Raises:
            ParameterError: naming the parameter (a control, or one of ``build``'s own).
            TypeError: not one value per field (a caller's mistake, never a request's: Gradio sends every input).
        """
        if len(values) != len(self.fields):
            raise TypeError(f"expected {len(self.fields)} values ({', '.join(self.fields)}), got {len(values)}")
        arguments, start = [], 0
        for name in self.parameters:
            if name == "controls":
                arguments.append(Controls.of(*values[start : start + len(CONTROL_FIELDS)]))
                start += len(CONTROL_FIELDS)
            else:
                arguments.append(values[start])
                start += 1
        return self.build(*arguments)


VIEW: Entrance[ViewRequest] = Entrance(view_request)
"""Session, class, the controls (:data:`CONTROL_FIELDS`), the ground-truth field: every localisation view's inputs."""
DRAG: Entrance[ViewRequest] = Entrance(view_request, omit=("gt_text",))
""":data:`VIEW` without the ground-truth field's conversion (a dragged box replaces it, or joins it: see
:func:`app.tabs.compare.draw_gt`, which gets the field's raw text after these)."""
CRF: Entrance[CrfParams] = Entrance(crf_params)
"""The six CRF sliders."""
