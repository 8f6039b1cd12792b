"""What an explanation is, without Gradio: from a session and a :class:`~app.inputs.ViewRequest` to both
panels' localisations, and the ``/explain`` JSON payload built from them.

The forward pass runs only in :func:`start_session` (an upload or a model change; once per photo, model and
resolution, then cached in :mod:`app.state`) and on a cache miss of :func:`app.state.get_analysis` (a
resolution change, the first TAP toggle). Everything else here is array work on the cached analysis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

import cam_core
from app import inputs, render
from app.inputs import DEFAULT_RESOLUTION, Controls, ViewRequest
from app.model_cache import CACHE_ONLY_FLAG, NotCached
from app.models import Resolution, member, tap_partner, trained_at, trained_with
from app.state import (
    ANALYSES,
    Session,
    SmallLRU,
    analysis_key,
    analysis_model,
    get_analysis,
    get_model,
    image_hash,
    keep_display,
)
from cam_core.cam import Analysis
from cam_core.family import IDENTITIES, FamilyMaps, family_maps, identity_gap
from cam_core.localize import Localization, LocalizationConfig, localize, localize_map

BOX_CONVENTION = "x0, y0, x1, y1 in original-image pixels, inclusive corners"


def start_session(payload: Any, model: Any, resolution: Resolution = DEFAULT_RESOLUTION) -> Session:
    """Decode an upload (raw Gradio file payload), analyse it once under ``model`` at ``resolution``, return its
    session.

    The only place a file is decoded (queued events only). ``payload`` is checked by
    :func:`app.inputs.upload_path`, ``model`` against the menu, before anything is read or loaded;
    ``resolution`` is an offered one (:func:`app.inputs.resolution`).
    """
    path = inputs.upload_path(payload)
    name = member(model, resolution)  # a checkpoint family's member trained at (or nearest) the resolution
    loaded = get_model(name, resolution.output_stride)  # the menu check and the load, before the file is read
    image, size = cam_core.load_image_with_size(path)  # size: the photo as given (above 4 MP it is analysed smaller)
    display = render.resize(image, render.display_size(*image.shape[:2]))
    key = image_hash(image)
    keep_display(key, display)  # by content: one copy per photo, whoever uploaded it
    session = Session(key, os.path.basename(path), model, size, (display.shape[0], display.shape[1]), resolution)
    if ANALYSES.get(name, resolution, session.image_hash) is None:
        ANALYSES.put(
            name, resolution, session.image_hash, cam_core.analyze(loaded, image, input_size=resolution.input_size)
        )
    return session


def percent(probability: float) -> str:
    """A probability in [0, 1] for people: ``"79.9 %"``, ``"0.04 %"``, or ``"< 0.01 %"`` (never ``"0.0 %"``)."""
    value = 100 * float(probability)
    if value >= 0.1:
        return f"{value:.1f} %"
    return f"{value:.2f} %" if value >= 0.01 else "< 0.01 %"


def calibration_note(analysis: Analysis) -> str:
    """How the shown probabilities are scaled: ``"probabilities calibrated at this resolution (T = 0.31)"``, or
    that they are not (no temperature fitted for this model at this resolution: :mod:`cam_core.calibration`)."""
    t = analysis.temperature
    if t is None:
        return "probabilities uncalibrated (no temperature fitted for this model at this resolution)"
    return f"probabilities calibrated at this resolution (temperature scaling, T = {t:.2f})"


def calibration_json(analysis: Analysis) -> dict[str, Any]:
    """``/explain``'s ``"calibration"``: the temperature every probability of the payload was divided by."""
    return {
        "calibrated": analysis.temperature is not None,
        "temperature": analysis.temperature,
        "method": "softmax(logits / T), T fitted by NLL per model and resolution (temperature scaling)",
    }


def short_name(description: str) -> str:
    """The first synonym of an ImageNet class description (``"tabby, tabby cat"`` -> ``"tabby"``)."""
    return description.split(",")[0].strip()


def resolve_class(choice: Any, analysis: Analysis) -> int:
    """Class index from a picker value, an index, a class name, or empty (= top-1).

    Raises:
        ClassIndexError: an index out of range, or a name that is no ImageNet class.
    """
    reference = inputs.class_reference(choice)
    if reference is None:
        return analysis.top_k(1)[0][0]
    if isinstance(reference, int):
        return analysis.check_class(reference)
    lowered = reference.lower()
    for i, name in enumerate(analysis.class_names):
        if lowered in (name.lower(), short_name(name).lower()):
            return i
    raise cam_core.ClassIndexError(
        f"Unknown class {reference!r}: give an index 0-{analysis.num_classes - 1} or an ImageNet class name."
    )


@dataclass(frozen=True)
class Explanation:
    """Both panels' localisations at display size, and what the captions and the JSON need.

    Attributes:
        image_hash: the photo's key in the caches (see :class:`app.state.Session`).
        plain_analysis, ours_analysis: the cached forward passes (``ours`` is the TAP partner's with TAP on).
        class_index: c in ``[0, K)``.
        controls: the checked controls.
        plain_config, ours_config: the rules each panel was localised with (the JSON reports these).
        plain, ours: the localisations at display size ``(h, w)``.
        percentile_value: P_p of the improved panel's normalised map, in ``[0, 1]``.
        display: ``(h, w)`` of :attr:`photo` and of both localisations.
        size: ``(H, W)`` of the original photo: the frame of every reported box.
        photo: uint8 (h, w, 3), the photo at display size.
        trained_with: ``("GAP" | "TAP", "GAP" | "TAP")``: the pooling each panel's weights were trained with.
        trained_at: the resolution each panel's checkpoint was trained at (``None``: a registry model).
        identity_gap: for a CAM-family method with an identity to CAM on a GAP + linear head
            (:data:`cam_core.family.IDENTITIES`), the measured ``max |h w · map - ReLU(CAM)| / max |CAM|`` of the
            plain panel's map on this photo and class (:func:`cam_core.family.identity_gap`); else ``None``.
    """

    image_hash: str
    plain_analysis: Analysis
    ours_analysis: Analysis
    class_index: int
    controls: Controls
    plain_config: LocalizationConfig
    ours_config: LocalizationConfig
    plain: Localization
    ours: Localization
    percentile_value: float
    display: tuple[int, int]
    size: tuple[int, int]
    photo: np.ndarray
    trained_with: tuple[str, str] = ("GAP", "GAP")
    trained_at: tuple[Resolution | None, Resolution | None] = (None, None)
    identity_gap: float | None = None

    @property
    def resolution(self) -> Resolution:
        """The resolution both panels were analysed at."""
        a = self.plain_analysis
        return Resolution(a.input_size[0], a.output_stride)

    def to_original(self, box: np.ndarray) -> np.ndarray:
        """A display-pixel box (int (4,)) in original-image pixels."""
        return cam_core.scale_boxes(box, self.display, self.size)[0]

    def to_display(self, boxes: np.ndarray | None) -> np.ndarray:
        """Original-pixel boxes (int (M, 4) or one (4,)), e.g. the ground truth, as int64 (M, 4) display
        pixels; ``None`` gives (0, 4)."""
        if boxes is None:
            return np.zeros((0, 4), dtype=np.int64)
        return cam_core.scale_boxes(np.asarray(boxes).reshape(-1, 4), self.size, self.display)

    @property
    def class_name(self) -> str:
        """The explained class's short name (``"Egyptian cat"``)."""
        return short_name(self.plain_analysis.class_names[self.class_index])


LOCALIZED: SmallLRU = SmallLRU(16)
"""Each panel's :class:`Localization` per (photo, analysis, class, rule, display size), read-only: a slider moves
one panel's rule, so the other panel is read from here (~1 MB an entry at 512 px)."""


def localized(
    image_hash: str,
    analysis: Analysis,
    class_index: int,
    config: LocalizationConfig,
    size: tuple[int, int],
    family: FamilyMaps | None = None,
    method: str = "cam",
) -> Localization:
    """:func:`~cam_core.localize.localize` through :data:`LOCALIZED`; its arrays are made read-only, as callers share
    them. With ``family`` (``method``'s maps of this analysis and class, :func:`method_maps`), the map thresholded
    is that method's (its NWC map under ``config.nwc``) through the same pipeline (:func:`cam_core.localize_map`)."""

    def make() -> Localization:
        if family is None:
            result = localize(analysis, class_index, config, size)
        else:
            raw = family.nwc if config.nwc else family.plain
            if raw is None:
                raise cam_core.ParameterError(f"NWC is undefined for {method}")
            result = localize_map(raw, config, size)
        for array in (result.heatmap, result.mask, result.box, result.boxes):
            array.setflags(write=False)
        return result

    key = (image_hash, analysis_key(analysis), class_index, config, size, method if family is not None else "cam")
    return LOCALIZED.get_or_make(key, make)


class MethodMaps(NamedTuple):
    """A CAM-family method's maps of one analysis and class, and their identity gap with CAM (``None``: the method
    has none, :data:`cam_core.family.IDENTITIES`), measured once with them."""

    maps: FamilyMaps
    identity_gap: float | None


FAMILY_MAPS: SmallLRU = SmallLRU(64)
"""Each CAM-family method's maps per (photo, analysis, class, method), read-only: 2 x (h, w) float32 an entry (6 kB at
448 / 16). Computed once in the queue (:func:`method_maps`); a slider move only reads them."""


def method_maps(session: Session, model: str, analysis: Analysis, class_index: int, method: str) -> MethodMaps:
    """``method``'s maps (with and without NWC) of ``analysis`` (the session's photo under menu value ``model``) for
    one class: the model's head alone, forward and backward, on the analysis's cached final features
    (:func:`cam_core.family.family_maps`; no backbone pass), and their identity gap with CAM
    (:func:`cam_core.family.identity_gap`), then cached in :data:`FAMILY_MAPS`.

    Raises:
        NotCached: in an unqueued event (:func:`app.state.cache_only`): the queue computes them.
    """

    def make() -> MethodMaps:
        if CACHE_ONLY_FLAG.get():
            raise NotCached(f"no {method} map of this photo and class yet")
        loaded = get_model(analysis_model(session, model), session.resolution.output_stride)
        maps = family_maps(loaded, analysis.feature_maps, class_index, method)
        for array in (maps.plain, maps.nwc):
            if array is not None:
                array.setflags(write=False)
        gap = identity_gap(analysis, maps.plain, class_index, method) if method in IDENTITIES else None
        return MethodMaps(maps, gap)

    return FAMILY_MAPS.get_or_make((session.image_hash, analysis_key(analysis), class_index, method), make)


def explain_arrays(session: Session, class_choice: Any, controls: Controls) -> Explanation:
    """Both panels from the cache: the method's map (plain CAM by default) + MaS vs the active modules (TAP / NWC /
    PaS) on the same method's map; a CAM-family method's maps come from :func:`method_maps`.

    Raises:
        ParameterError: TAP asked for a model without a TAP-trained partner.
        ClassIndexError: see :func:`resolve_class`.
        NotCached: a CAM-family method's maps are not made yet and the event is unqueued (the queue makes them).
    """
    plain_analysis = get_analysis(session, session.model)
    partner = tap_partner(session.model)
    if controls.tap and partner is None:
        raise cam_core.ParameterError("TAP needs a TAP-trained model; none is available for this model.")
    ours_model = partner if controls.tap and partner else session.model
    ours_analysis = get_analysis(session, ours_model) if ours_model != session.model else plain_analysis
    class_index = resolve_class(class_choice, plain_analysis)
    display = session.size_on_screen
    plain_config, ours_config = controls.plain_config, controls.ours_config
    method, gap = controls.method, None
    plain_maps = ours_maps = None
    if method != "cam":  # both panels threshold the method's map (one head pass per analysis and class, cached)
        plain_maps, gap = method_maps(session, session.model, plain_analysis, class_index, method)
        ours_maps = method_maps(session, ours_model, ours_analysis, class_index, method).maps
    plain = localized(session.image_hash, plain_analysis, class_index, plain_config, display, plain_maps, method)
    ours = localized(session.image_hash, ours_analysis, class_index, ours_config, display, ours_maps, method)
    # PaS: the P_p its threshold used (8-bit map, as the threshold); MaS: the histogram still marks P_p
    percentile_value = (
        ours.reference if ours_config.rule == "pas" else float(np.percentile(ours.heatmap, controls.percentile))
    )
    return Explanation(
        session.image_hash,
        plain_analysis,
        ours_analysis,
        class_index,
        controls,
        plain_config,
        ours_config,
        plain,
        ours,
        percentile_value,
        display,
        session.size,
        session.display,
        (trained_with(session.model), trained_with(ours_model)),
        (trained_at(analysis_model(session, session.model)), trained_at(analysis_model(session, ours_model))),
        gap,
    )


def explain_request(request: ViewRequest) -> Explanation:
    """:func:`explain_arrays` of a checked request (``InvalidImageError`` without a photo)."""
    return explain_arrays(request.need_session(), request.class_ref, request.controls)


def _panel_json(ex: Explanation, which: str) -> dict[str, Any]:
    config, loc = (ex.plain_config, ex.plain) if which == "plain" else (ex.ours_config, ex.ours)
    trained = {"model": ex.plain_analysis.model_name, "trained_with": ex.trained_with[0]}
    head: dict[str, Any] = {"method": ex.controls.method, "modules": [], **trained, **_trained_at(ex.trained_at[0])}
    head["rule"] = config.rule
    head["theta"] = config.theta
    if which == "ours":
        head = {
            "method": ex.controls.method,
            "modules": ex.controls.modules,
            "model": ex.ours_analysis.model_name,
            "trained_with": ex.trained_with[1],
            **_trained_at(ex.trained_at[1]),
            "rule": config.rule,
            "theta": config.theta,
            "percentile": config.percentile,
            "percentile_value": round(ex.percentile_value, 6),
        }
    return {
        **head,
        "threshold": round(loc.threshold, 6),
        "box": ex.to_original(loc.box).tolist(),
        "foreground_fraction": round(loc.foreground_fraction, 6),
    }


def _trained_at(resolution: Resolution | None) -> dict[str, Any]:
    """A checkpoint panel's ``"trained_at"`` entry (nothing for a registry model)."""
    return {} if resolution is None else {"trained_at": {**resolution.as_dict(), "label": resolution.label}}


def explanation_json(ex: Explanation, gt: np.ndarray | None) -> dict[str, Any]:
    """The JSON payload of ``/explain`` and of the JSON tab: predictions, both boxes, thresholds, modules, and the
    analysis resolution with the map size it gave.

    Each panel reports the rule it was localised with (and, for a checkpoint, the resolution it was trained at);
    boxes are in original pixels (:data:`BOX_CONVENTION`).
    """
    a, c = ex.plain_analysis, ex.class_index
    result: dict[str, Any] = {
        "model": a.model_name,
        "image_size": {"height": ex.size[0], "width": ex.size[1]},
        "resolution": {**ex.resolution.as_dict(), "feature_size": list(a.feature_size), "label": a.resolution},
        "class": {"index": c, "name": a.class_names[c], "probability": round(float(a.probabilities[c]), 6)},
        "predictions": [{"index": i, "name": n, "probability": round(p, 6)} for i, n, p in a.top_k(5)],
        "calibration": calibration_json(a),
        "method": method_json(ex),
        "plain": _panel_json(ex, "plain"),
        "ours": _panel_json(ex, "ours"),
        "box_convention": BOX_CONVENTION,
    }
    if gt is not None:
        result["ground_truth"] = ground_truth_json(result["plain"]["box"], result["ours"]["box"], gt)
    return result


METHOD_SOURCE = {
    "cam": "exact: the classifier's weights on the final features of the cached forward pass",
    "family": "torchcam 0.5.0 channel weights from one backward pass through the head (at the final features), "
    "combined as ReLU(sum_k w_k F_k); then the same upsampling, thresholds and boxes as plain CAM",
}


def method_json(ex: Explanation) -> dict[str, Any]:
    """``/explain``'s ``"method"``: which map both panels threshold, whether NWC is defined for it, and its identity
    with CAM measured on this photo and class (``max_relative_gap``; :func:`cam_core.family.identity_gap`)."""
    c = ex.controls
    result: dict[str, Any] = {
        "name": c.method,
        "label": c.method_label,
        "source": METHOD_SOURCE["cam" if c.method == "cam" else "family"],
        "nwc_defined": c.nwc_defined,
    }
    if c.method in IDENTITIES:
        result["identity"] = {
            "equals_on_a_gap_linear_head": IDENTITIES[c.method][1],
            "max_relative_gap": None if ex.identity_gap is None else float(f"{ex.identity_gap:.3g}"),
        }
    return result


GT_SCORING = "IoU with the best-matching ground-truth box (wsolevaluation's GT-known rule)"


def ground_truth_json(plain_box: list[int], ours_box: list[int], gt: np.ndarray) -> dict[str, Any]:
    """Both boxes scored against several ground-truth boxes, as WSOL does: the IoU with the best-matching one.

    Args:
        plain_box, ours_box: ``[x0, y0, x1, y1]`` in original pixels, inclusive.
        gt: int (M, 4) ground-truth boxes (or (4,) for one) in the same pixels.

    Returns:
        ``boxes`` (all M), ``iou_plain`` / ``iou_ours`` (the best, in ``[0, 1]``), ``best_box_plain`` /
        ``best_box_ours`` (its position in ``boxes``, the first on ties) and ``ious_plain`` / ``ious_ours``
        (one per box), rounded to 6 digits.
    """
    boxes = np.asarray(gt).reshape(-1, 4)
    scored: dict[str, Any] = {"boxes": boxes.tolist(), "scoring": GT_SCORING}
    for key, box in (("plain", plain_box), ("ours", ours_box)):
        ious = cam_core.box_iou(np.asarray(box), boxes)[0]  # (M,): the same IoU the Evaluator takes the max of
        best = int(np.argmax(ious))
        scored[f"iou_{key}"] = round(float(ious[best]), 6)
        scored[f"best_box_{key}"] = best
        scored[f"ious_{key}"] = [round(float(v), 6) for v in ious]
    return scored
