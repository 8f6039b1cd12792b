"""Pure, top-level callbacks of the app: (inputs, session) -> outputs. No layout here.

The forward pass runs only in :func:`on_image` / :func:`on_model` / :func:`explain` (once per image and
model, then cached). Everything a slider, toggle or class change triggers is array work on the cached
analysis plus drawing at display size.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import gradio as gr
import numpy as np

import cam_core
from app import files, html_views, inputs, plots, render
from app.models import tap_partner
from app.state import ANALYSES, Session, SmallLRU, get_analysis, get_model, image_hash
from cam_core.cam import Analysis
from cam_core.localize import Localization, LocalizationConfig, localize

LOGGER = logging.getLogger("cam_explainer")
P = ParamSpec("P")
R = TypeVar("R")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"`:,;()]+/)+[^\s/'\"`:,;()]*")


def without_paths(message: str) -> str:
    """``message`` with every absolute server path (two components or more) replaced by ``<path>``.

    The last line of defence for item 9 of the security review: messages shown to users never reveal
    where the server keeps its files (upload cache, temporary folders, checkpoints).
    """
    return _ABSOLUTE_PATH.sub("<path>", message)


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn library errors into ``gr.Error`` with their message; log anything unexpected and say so plainly."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except cam_core.CamError as exc:
            raise gr.Error(without_paths(str(exc)), print_exception=False) from exc
        except Exception as exc:
            LOGGER.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                f"Internal error ({type(exc).__name__}); the server keeps running. Please try again."
            ) from exc

    return wrapper


def with_notice(fn: Callable[..., tuple[Any, ...]], outputs: int) -> Callable[..., tuple[Any, ...]]:
    """For unqueued (``queue=False``) events: their errors reach no toast in Gradio 6, so say them inline.

    The wrapped callback returns one more output, a notice: ``""`` on success; on a ``gr.Error`` (see
    :func:`user_errors`) the message, with every other output left as it was (``gr.skip()``).
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        try:
            return (*fn(*args, **kwargs), "")
        except gr.Error as exc:
            return (*[gr.skip()] * outputs, f"⚠️ {exc.message}")

    return wrapper


@dataclass(frozen=True)
class Controls:
    """Slider and toggle values shared by every view."""

    theta_mas: float = 0.2
    theta_pas: float = 0.35
    percentile: float = 90.0
    tap: bool = False
    nwc: bool = True
    pas: bool = True

    @classmethod
    def of(cls, theta_mas: Any, theta_pas: Any, percentile: Any, tap: Any, nwc: Any, pas: Any) -> Controls:
        """From raw request values, checked strictly (see :mod:`app.inputs`): every event is reachable over HTTP.

        Raises:
            ParameterError: naming the parameter: not a number in range, or not exactly true / false.
        """
        return cls(
            inputs.number(theta_mas, "theta_mas", 0.0, 1.0),
            inputs.number(theta_pas, "theta_pas", 0.0, 1.0),
            inputs.number(percentile, "percentile", 0.0, 100.0, low_open=True),
            inputs.flag(tap, "tap"),
            inputs.flag(nwc, "nwc"),
            inputs.flag(pas, "pas"),
        )


# ---------------------------------------------------------------- inputs -> session


def start_session(payload: Any, model: Any) -> Session:
    """Decode an upload (raw Gradio file payload), analyse it once under ``model``, return its session.

    The only place a file is decoded (queued events only). ``payload`` is checked by
    :func:`app.inputs.upload_path`, ``model`` against the menu, before anything is read or loaded.
    """
    path = inputs.upload_path(payload)
    loaded = get_model(model)
    image = cam_core.load_image(path)
    size = (int(image.shape[0]), int(image.shape[1]))
    session = Session(image_hash(image), path, model, render.resize(image, render.display_size(*size)), size)
    if ANALYSES.get(model, session.image_hash) is None:
        ANALYSES.put(model, session.image_hash, cam_core.analyze(loaded, image))
    return session


def short_name(description: str) -> str:
    """The first synonym of an ImageNet class description (``"tabby, tabby cat"`` -> ``"tabby"``)."""
    return description.split(",")[0].strip()


def class_choices(analysis: Analysis, extra: int | None = None) -> list[tuple[str, str]]:
    """Class picker choices: the top-5 with probabilities, plus ``extra`` (a class picked by search) if not in them."""
    top = [(f"{short_name(name)} ({100 * p:.1f} %)", str(i)) for i, name, p in analysis.top_k(5)]
    if extra is not None and str(extra) not in {value for _, value in top}:
        name, p = short_name(analysis.class_names[extra]), float(analysis.probabilities[extra])
        top.append((f"{extra}: {name} ({f'{100 * p:.2f}' if p >= 5e-5 else '< 0.01'} %)", str(extra)))
    return top


def search_choices() -> list[tuple[str, str]]:
    """The search box's choices: every ImageNet class by index. Fixed, so they never travel with an update."""
    return [(f"{i}: {name}", str(i)) for i, name in enumerate(cam_core.imagenet_classes())]


def resolve_class(choice: Any, analysis: Analysis) -> int:
    """Class index from a picker value, an index, a class name, or empty (= top-1)."""
    reference = inputs.class_reference(choice)
    if reference is None:
        return analysis.top_k(1)[0][0]
    if isinstance(reference, int):
        return analysis.check_class(reference)
    text = reference
    lowered = text.lower()
    for i, name in enumerate(analysis.class_names):
        if lowered in (name.lower(), short_name(name).lower()):
            return i
    raise cam_core.ClassIndexError(
        f"Unknown class {text!r}: give an index 0-{analysis.num_classes - 1} or an ImageNet class name."
    )


@user_errors
def on_image(payload: Any, model: str) -> tuple[Session, Any, str]:
    """A new photo: one forward pass; returns the session, the class picker (top-1 chosen) and a status line."""
    session = start_session(payload, model)
    analysis = get_analysis(session, model)
    top = analysis.top_k(1)[0]
    loaded = get_model(model)
    status = f"**{loaded.name}** ({loaded.weights}): top-1 **{short_name(top[1])}** ({100 * top[2]:.1f} %)."
    return session, gr.update(choices=class_choices(analysis), value=str(top[0])), status


@user_errors
def pick_class(choice: Any, session: Session | None) -> Any:
    """A class found with the search box: select it in the class picker (added after the top-5 if needed)."""
    session = _need(session)
    analysis = get_analysis(session, session.model)
    index = resolve_class(choice, analysis)
    return gr.update(choices=class_choices(analysis, extra=index), value=str(index))


@user_errors
def on_model(model: str, session: Session | None) -> tuple[Session | None, Any, str, Any]:
    """A new model for the current photo (one forward pass), plus the TAP toggle's availability."""
    partner = tap_partner(model)
    # TAP stays as the user set it where a TAP-trained partner exists; it is switched off where none does
    tap_update = gr.update(interactive=True) if partner is not None else gr.update(interactive=False, value=False)
    if session is None:
        get_model(model)  # load now so that errors show at once
        return None, gr.update(), f"Model **{model}** ready: upload a photo.", tap_update
    try:
        new_session, classes, status = on_image({"path": session.source}, model)
    except gr.Error as exc:
        if exc.message != inputs.NOT_A_FILE:
            raise
        raise gr.Error("This photo is no longer on the server (uploads expire): upload it again.") from exc
    return new_session, classes, status, tap_update


# ---------------------------------------------------------------- localisation views


def _need(session: Session | None) -> Session:
    if session is None:
        raise gr.Error("Upload a photo first (or pick an example).", print_exception=False)
    return session


def parse_box(text: str | None, size: tuple[int, int]) -> np.ndarray | None:
    """``"x0, y0, x1, y1"`` in original pixels -> int64 (4,), or ``None`` for an empty field."""
    text = inputs.text(text, "ground-truth box")
    if not text.strip():
        return None
    try:
        values = [round(float(v)) for v in text.replace(";", ",").split(",")]
    except (ValueError, OverflowError) as exc:
        raise cam_core.ParameterError(f"Ground-truth box {text!r}: write four numbers `x0, y0, x1, y1`.") from exc
    if len(values) != 4 or values[2] < values[0] or values[3] < values[1]:
        raise cam_core.ParameterError(f"Ground-truth box {text!r}: need four numbers with x0 <= x1 and y0 <= y1.")
    height, width = size
    if values[0] < 0 or values[1] < 0 or values[2] >= width or values[3] >= height:
        raise cam_core.ParameterError(f"Ground-truth box {text!r} leaves the {width}x{height} photo.")
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


@dataclass(frozen=True)
class Explanation:
    """Both panels' localisations at display size, plus what the captions and JSON need."""

    plain_analysis: Analysis
    ours_analysis: Analysis
    class_index: int
    controls: Controls
    plain: Localization
    ours: Localization
    percentile_value: float
    display: tuple[int, int]
    size: tuple[int, int]
    photo: np.ndarray

    def to_original(self, box: np.ndarray) -> np.ndarray:
        """A display-pixel box in original-image pixels."""
        return cam_core.scale_boxes(box, self.display, self.size)[0]


def explain_arrays(session: Session, class_choice: Any, controls: Controls) -> Explanation:
    """Compute both panels from the cache: plain CAM + MaS vs the active modules (TAP / NWC / PaS)."""
    plain_analysis = get_analysis(session, session.model)
    partner = tap_partner(session.model)
    if controls.tap and partner is None:
        raise cam_core.ParameterError("TAP needs a TAP-trained model; none is available for this model.")
    ours_analysis = get_analysis(session, partner) if controls.tap and partner else plain_analysis
    class_index = resolve_class(class_choice, plain_analysis)
    display = session.size_on_screen
    plain = localize(plain_analysis, class_index, LocalizationConfig(False, "mas", controls.theta_mas), display)
    rule = "pas" if controls.pas else "mas"
    theta = controls.theta_pas if controls.pas else controls.theta_mas
    ours_config = LocalizationConfig(controls.nwc, rule, theta, controls.percentile)
    ours = localize(ours_analysis, class_index, ours_config, display)
    percentile_value = float(np.percentile(ours.heatmap, controls.percentile))
    return Explanation(plain_analysis, ours_analysis, class_index, controls, plain, ours, percentile_value, display,
                       session.size, session.display)  # fmt: skip


def ours_name(controls: Controls) -> str:
    """``TAP+NWC+PaS``-style name of the active modules (``CAM`` when none)."""
    parts = [n for n, on in (("TAP", controls.tap), ("NWC", controls.nwc), ("PaS", controls.pas)) if on]
    return "+".join(parts) or "CAM"


def _panel(ex: Explanation, which: str, gt: np.ndarray | None) -> np.ndarray:
    loc = ex.plain if which == "plain" else ex.ours
    picture = render.overlay(ex.photo, loc.heatmap)
    if gt is not None:
        render.draw_box(picture, cam_core.scale_boxes(gt, ex.size, ex.display)[0], render.GT_COLOUR, "GT")
    colour = render.PLAIN_COLOUR if which == "plain" else render.OURS_COLOUR
    label = "CAM, MaS" if which == "plain" else ours_name(ex.controls)
    return render.draw_box(picture, loc.box, colour, label)


def explanation_json(ex: Explanation, gt: np.ndarray | None) -> dict[str, Any]:
    """The JSON payload: predictions, both boxes in original pixels, thresholds, modules."""
    a, c = ex.plain_analysis, ex.class_index
    plain_box, ours_box = ex.to_original(ex.plain.box), ex.to_original(ex.ours.box)
    result: dict[str, Any] = {
        "model": a.model_name,
        "image_size": {"height": ex.size[0], "width": ex.size[1]},
        "class": {"index": c, "name": a.class_names[c], "probability": round(float(a.probabilities[c]), 6)},
        "predictions": [{"index": i, "name": n, "probability": round(p, 6)} for i, n, p in a.top_k(5)],
        "plain": {"modules": [], "rule": "mas", "theta": ex.controls.theta_mas,
                  "threshold": round(ex.plain.threshold, 6),
                  "box": plain_box.tolist(), "foreground_fraction": round(ex.plain.foreground_fraction, 6)},
        "ours": {"modules": ours_name(ex.controls).split("+") if ours_name(ex.controls) != "CAM" else [],
                 "model": ex.ours_analysis.model_name, "rule": "pas" if ex.controls.pas else "mas",
                 "theta": ex.controls.theta_pas if ex.controls.pas else ex.controls.theta_mas,
                 "percentile": ex.controls.percentile, "percentile_value": round(ex.percentile_value, 6),
                 "threshold": round(ex.ours.threshold, 6), "box": ours_box.tolist(),
                 "foreground_fraction": round(ex.ours.foreground_fraction, 6)},
        "box_convention": "x0, y0, x1, y1 in original-image pixels, inclusive corners",
    }  # fmt: skip
    if gt is not None:
        result["ground_truth"] = {
            "box": gt.tolist(),
            "iou_plain": round(float(cam_core.box_iou(plain_box, gt)[0, 0]), 6),
            "iou_ours": round(float(cam_core.box_iou(ours_box, gt)[0, 0]), 6),
        }
    return result


def _caption(ex: Explanation, payload: dict[str, Any]) -> str:
    c = ex.controls
    plain, ours = payload["plain"], payload["ours"]
    negative = ex.ours_analysis.cam(ex.class_index, "negative")
    neg_map = np.clip(cam_core.upsample(negative, ex.display), 0, None)  # bicubic overshoot below 0 clipped
    x0, y0, x1, y1 = ex.ours.box
    share = float(neg_map[y0 : y1 + 1, x0 : x1 + 1].sum() / max(neg_map.sum(), 1e-12))
    tap_note = "on (TAP-trained head)" if c.tap else "off: TAP changes training, and this model was trained with GAP"
    rule = (f"PaS: threshold θ·P{c.percentile:g} = {c.theta_pas:.2f} × {ex.percentile_value:.3f} "
            f"= {ex.ours.threshold:.3f}"
            if c.pas else f"MaS: threshold θ·max = {ex.ours.threshold:.3f}")  # fmt: skip
    lines = [
        f"**Plain CAM (blue box)**: MaS threshold θ·max = {c.theta_mas:.2f} keeps "
        f"{100 * plain['foreground_fraction']:.1f} % of pixels; box {plain['box']}.",
        f"**{ours_name(c)} (green box)**: NWC {'on' if c.nwc else 'off'}, TAP {tap_note}; {rule} keeps "
        f"{100 * ours['foreground_fraction']:.1f} % of pixels; box {ours['box']}.",
        f"Box IoU plain vs {ours_name(c)}: {cam_core.box_iou(plain['box'], ours['box'])[0, 0]:.2f}. "
        f"Share of the negative map M- inside the green box: {100 * share:.0f} %.",
    ]
    if "ground_truth" in payload:
        gt = payload["ground_truth"]
        lines.append(f"**Ground truth (gold)**: IoU plain {gt['iou_plain']:.2f}, {ours_name(c)} {gt['iou_ours']:.2f}.")
    return "\n\n".join(lines)


def _histogram(ex: Explanation) -> np.ndarray:
    """Histogram with burnt-in threshold lines (exports and the swipe view)."""
    base = plots.histogram_base(ex.ours.heatmap)
    return plots.histogram_with_thresholds(base, ex.controls.theta_mas, ex.percentile_value, ex.ours.threshold)


@dataclass(frozen=True)
class Statics:
    """Pictures that do not depend on the thresholds, written once per (photo, models, class, NWC)."""

    plain_url: str
    ours_url: str
    photo_url: str
    histogram_url: str
    histogram: plots.HistogramBase

    def delete(self) -> None:
        """Remove the files (called when evicted from the cache)."""
        for url in (self.plain_url, self.ours_url, self.photo_url, self.histogram_url):
            files.delete_static(url)


STATICS: SmallLRU = SmallLRU(48, on_evict=lambda statics: statics.delete())


def _statics(session: Session, ex: Explanation) -> Statics:
    key = (
        session.image_hash,
        ex.plain_analysis.model_name,
        ex.ours_analysis.model_name,
        ex.class_index,
        ex.controls.nwc,
    )

    def make() -> Statics:
        photo = ex.photo
        histogram = plots.histogram_base(ex.ours.heatmap)
        return Statics(
            files.static_url(render.overlay(photo, ex.plain.heatmap)),
            files.static_url(render.overlay(photo, ex.ours.heatmap)),
            files.static_url(photo),
            files.static_url(histogram.picture, "png"),
            histogram,
        )

    return STATICS.get_or_make(key, make)


@dataclass(frozen=True)
class LocalizationViews:
    """The threshold-dependent pictures (RGB uint8) and texts of one update."""

    plain: np.ndarray
    ours: np.ndarray
    histogram: np.ndarray
    masks: np.ndarray
    caption: str
    payload: dict[str, Any]


def localization_views(
    session: Session, class_choice: Any, controls: Controls, gt_text: str | None
) -> LocalizationViews:
    """Compute and draw everything that depends on the thresholds, from the cached analysis."""
    ex = explain_arrays(session, class_choice, controls)
    gt = parse_box(gt_text, ex.size)
    base = ex.photo
    masks = render.side_by_side(
        render.mask_picture(base, ex.plain.mask, render.PLAIN_COLOUR),
        render.mask_picture(base, ex.ours.mask, render.OURS_COLOUR),
    )
    payload = explanation_json(ex, gt)
    return LocalizationViews(_panel(ex, "plain", gt), _panel(ex, "ours", gt), _histogram(ex), masks,
                             _caption(ex, payload), payload)  # fmt: skip


def _explained(
    session: Session, class_choice: Any, theta_mas: float, theta_pas: float, percentile: float,
    tap: bool, nwc: bool, pas: bool, gt_text: str | None,
) -> tuple[Explanation, np.ndarray | None]:  # fmt: skip
    """Raw control values -> the explanation (from the cached analysis) and the parsed ground truth."""
    ex = explain_arrays(session, class_choice, Controls.of(theta_mas, theta_pas, percentile, tap, nwc, pas))
    return ex, parse_box(gt_text, ex.size)


def _views_html(session: Session, ex: Explanation, gt: np.ndarray | None) -> tuple[str, str, str, str, str, dict]:
    """Both panels, histogram, masks (HTML over cached pictures), caption, JSON."""
    statics = _statics(session, ex)
    gt_boxes = [] if gt is None else [(cam_core.scale_boxes(gt, ex.size, ex.display)[0], render.GT_COLOUR, "GT")]
    name = ours_name(ex.controls)
    target = short_name(ex.plain_analysis.class_names[ex.class_index])
    payload = explanation_json(ex, gt)
    lines = [(ex.controls.theta_mas, (50, 50, 50), False), (ex.percentile_value, (140, 0, 204), True),
             (ex.ours.threshold, (0, 153, 0), False)]  # fmt: skip
    return (
        html_views.panel_html(f"Plain CAM for “{target}”, MaS box (blue)", statics.plain_url, ex.display,
                              [*gt_boxes, (ex.plain.box, render.PLAIN_COLOUR, "CAM, MaS")]),
        html_views.panel_html(f"{name} for “{target}”, green box", statics.ours_url, ex.display,
                              [*gt_boxes, (ex.ours.box, render.OURS_COLOUR, name)]),
        html_views.histogram_html(statics.histogram_url, statics.histogram, lines),
        html_views.masks_html(statics.photo_url, ex.display, [(ex.plain.mask, render.PLAIN_COLOUR, "plain CAM, MaS"),
                                                              (ex.ours.mask, render.OURS_COLOUR, name)]),
        _caption(ex, payload),
        payload,
    )  # fmt: skip


def _swipe_pictures(ex: Explanation, gt: np.ndarray | None) -> tuple[str, str]:
    """The swipe view's two pictures (the panels with boxes burnt in), as JPEG files."""
    return files.save_jpeg(_panel(ex, "plain", gt)), files.save_jpeg(_panel(ex, "ours", gt))


@user_errors
def render_localization(
    session: Session | None, class_choice: Any, theta_mas: float, theta_pas: float, percentile: float,
    tap: bool, nwc: bool, pas: bool, gt_text: str | None,
) -> tuple[str, str, str, str, str, dict[str, Any]]:  # fmt: skip
    """Slider / toggle update: both panels, histogram, masks (HTML over cached pictures), caption, JSON."""
    session = _need(session)
    ex, gt = _explained(session, class_choice, theta_mas, theta_pas, percentile, tap, nwc, pas, gt_text)
    return _views_html(session, ex, gt)


# ---------------------------------------------------------------- presets, API, export


@user_errors
def swipe_pair(
    session: Session | None, class_choice: Any, theta_mas: float, theta_pas: float, percentile: float,
    tap: bool, nwc: bool, pas: bool, gt_text: str | None,
) -> tuple[str, str] | None:  # fmt: skip
    """The swipe view's two pictures, drawn when its tab is opened."""
    if session is None:
        return None
    return _swipe_pictures(*_explained(session, class_choice, theta_mas, theta_pas, percentile, tap, nwc, pas,
                                       gt_text))  # fmt: skip


SWIPE_TAB = "Swipe"


def selected_tab(event: gr.SelectData) -> str:
    """The label of the tab just opened (kept in a per-session state for :func:`render_linked`)."""
    return str(event.value)[:40]


@user_errors
def render_linked(
    session: Session | None, class_choice: Any, theta_mas: float, theta_pas: float, percentile: float,
    tap: bool, nwc: bool, pas: bool, gt_text: str | None, tab: str | None,
) -> tuple[Any, ...]:  # fmt: skip
    """:func:`render_localization` plus the swipe pictures (only while their tab is open), from one localisation.

    The swipe view needs two encoded pictures, so it is redrawn only where someone can see it; opening
    its tab draws it for the current controls (``swipe_tab.select``).
    """
    session = _need(session)
    ex, gt = _explained(session, class_choice, theta_mas, theta_pas, percentile, tap, nwc, pas, gt_text)
    return (*_views_html(session, ex, gt), _swipe_pictures(ex, gt) if tab == SWIPE_TAB else gr.skip())


def apply_preset(name: str) -> tuple[Any, Any, Any, Any]:
    """Slider values of a named preset (no change for "custom")."""
    preset = cam_core.PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        return gr.update(), gr.update(), gr.update(), gr.update()
    return preset.theta_mas, preset.theta_pas, preset.percentile, preset.tau_tap


@user_errors
def draw_gt(
    session: Session | None, class_choice: Any, theta_mas: float, theta_pas: float, percentile: float,
    tap: bool, nwc: bool, pas: bool, event: gr.SelectData,
) -> tuple[Any, ...]:  # fmt: skip
    """A box dragged on either panel (``event.index`` = corner fractions): fill the ground-truth field, re-render."""
    session = _need(session)
    text = format_box(box_from_fractions(event.index, session.size))
    return (text, *render_localization(session, class_choice, theta_mas, theta_pas, percentile, tap, nwc, pas, text))


@user_errors
def explain(
    image: Any, model: str = cam_core.DEFAULT_MODEL, class_name: str = "", theta_mas: float = 0.2,
    theta_pas: float = 0.35, percentile: float = 90.0, tap: bool = False, nwc: bool = True, pas: bool = True,
) -> tuple[dict[str, Any], str, str]:  # fmt: skip
    """Public API: explain one photo. Returns (JSON, plain overlay PNG, improved overlay PNG).

    Repeated images reuse their cached forward pass. Boxes are in original-image pixels, inclusive.
    """
    session = start_session(image, model or cam_core.DEFAULT_MODEL)
    controls = Controls.of(theta_mas, theta_pas, percentile, tap, nwc, pas)
    ex = explain_arrays(session, class_name, controls)
    return (
        explanation_json(ex, None),
        files.save_png(_panel(ex, "plain", None)),
        files.save_png(_panel(ex, "ours", None)),
    )


@user_errors
def export_zip(
    session: Session | None, class_choice: Any, theta_mas: float, theta_pas: float, percentile: float,
    tap: bool, nwc: bool, pas: bool, gt_text: str | None,
) -> str:  # fmt: skip
    """Bundle the JSON and the current pictures (PNG) into one zip for download."""
    controls = Controls.of(theta_mas, theta_pas, percentile, tap, nwc, pas)
    views = localization_views(_need(session), class_choice, controls, gt_text)
    path = files.new_path(".zip")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("explanation.json", json.dumps(views.payload, indent=2))
        for name, picture in (("plain_cam", views.plain), ("improved_cam", views.ours), ("histogram", views.histogram),
                              ("masks", views.masks)):  # fmt: skip
            archive.write(files.save_png(picture), f"{name}.png")
    return path
