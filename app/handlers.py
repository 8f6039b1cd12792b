"""The event handlers of the main views: thin functions from checked inputs to named outputs.

Each handler takes what :mod:`app.inputs` built from the event's raw values (a
:class:`~app.inputs.ViewRequest` for every localisation view), asks :mod:`app.explanation` for the
explanation and :mod:`app.views` for its views, and returns a ``NamedTuple`` whose fields name the
output components (:mod:`app.wiring` gathers the components by those names). The forward pass runs
only in :func:`on_image`, :func:`on_model`, :func:`on_resolution` and :func:`explain`; everything else works
on the cache.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from typing import Any, NamedTuple

import gradio as gr
import numpy as np

import cam_core
from app import files, inputs, views
from app.errors import LoadingNotice, user_errors
from app.explanation import (
    Explanation,
    explain_arrays,
    explain_request,
    explanation_json,
    percent,
    resolve_class,
    short_name,
    start_session,
)
from app.inputs import DEFAULT_RESOLUTION, Controls, ViewRequest
from app.models import Resolution, member, pair_note, tap_partner, tap_toggle, trained_with
from app.state import Session, analysis_model, get_analysis, get_model

SWIPE_TAB = "Swipe"
EXPORT_TAB = "JSON & export"
_DEFAULT = Controls()


class Photo(NamedTuple):
    """After an upload: the session (``None`` after a refused file), the class picker (top-1 chosen), the status."""

    session: Session | None
    class_pick: Any
    status: str


class ModelSwitch(NamedTuple):
    """After a model change: the Model field (put back after a failed load), :class:`Photo`'s outputs for the
    current photo, plus the TAP toggle's availability."""

    model: Any
    session: Session | None
    class_pick: Any
    status: str
    tap: Any


class ResolutionSwitch(NamedTuple):
    """After a resolution change: the Resolution field (put back after a failure), the session re-analysed at the
    new resolution, the class picker (same class, new probabilities), the status, the TAP toggle's info."""

    resolution: Any
    session: Any
    class_pick: Any
    status: str
    tap: Any


class LinkedViews(NamedTuple):
    """:class:`~app.views.LocalizationViews` plus the swipe pictures (``None`` while their tab is hidden; so is
    ``payload``, the export tab's JSON). The export zip is made on request only (:func:`export_zip`).

    ``None``, not ``gr.skip()``: Gradio answers a skip by building a new component and updating the session's
    config (~1.5 ms each on the slider path, ``bench/bench_browser.py``); a hidden tab's view is redrawn when the
    tab opens anyway."""

    plain: str
    ours: str
    histogram: str
    masks: str
    caption: str
    payload: dict[str, Any] | None
    swipe: Any


class DrawnBox(NamedTuple):
    """After a box was dragged on a panel: the ground-truth field's new text, then the views."""

    gt_text: str
    plain: str
    ours: str
    histogram: str
    masks: str
    caption: str
    payload: dict[str, Any]


class PresetValues(NamedTuple):
    """The sliders and the resolution a preset sets (``gr.update()`` each for "custom")."""

    theta_mas: Any
    theta_pas: Any
    percentile: Any
    tau: Any
    resolution: Any


class ApiResult(NamedTuple):
    """``/explain``'s outputs: the JSON payload and both overlays as PNG files."""

    payload: dict[str, Any]
    plain_png: str
    ours_png: str


def _photo(payload: Any, model: str, resolution: Any) -> Photo:
    return _analysed_photo(start_session(payload, model, inputs.resolution_choice(resolution)))


def _analysed_photo(session: Session) -> Photo:
    """The session, the class picker (top-1 chosen) and the status line of a photo under ``session.model``."""
    analysis = get_analysis(session, session.model)
    top = analysis.top_k(1)[0]
    status = f"{_analysed(session)}: top-1 **{short_name(top[1])}** ({percent(top[2])})."
    return Photo(session, gr.update(choices=views.class_choices(analysis), value=str(top[0]), visible=True), status)


def _analysed(session: Session) -> str:
    """``**name** (weights) at 448 px, stride 16 -> 28x28 map``, plus which trained head a checkpoint stands for."""
    loaded = _loaded(session.model, session)
    analysis = get_analysis(session, session.model)
    note = pair_note(session.model, session.resolution)
    return f"**{loaded.name}** ({loaded.weights}{'; ' + note if note else ''}) at {analysis.resolution}"


@user_errors
def on_image(payload: Any, model: str, resolution: Any = DEFAULT_RESOLUTION.value) -> Photo:
    """A new photo: one forward pass at ``resolution`` (a Resolution menu value); returns the session, the class
    picker (top-1 chosen) and a status line.

    Raises ``gr.Error`` for anything wrong (the API contract; the page's own event is :func:`on_photo`).
    """
    return _photo(payload, model, resolution)


@user_errors
def on_photo(payload: Any, model: str, resolution: Any = DEFAULT_RESOLUTION.value) -> Photo:
    """The page's photo event: :func:`on_image`, but a photo that cannot be read (or none) empties the session, the
    class picker and, through :func:`render_photo`, every view, and is said once in the status line (no toast:
    the browser sends a refused file's change event twice). A payload that is no upload is refused as ever."""
    try:
        return _photo(payload, model, resolution)
    except cam_core.InvalidImageError as exc:
        if str(exc) == inputs.NOT_A_FILE:
            raise
        status = f"⚠️ {exc}" if payload is not None else "Upload a photo or pick an example."
        # hidden, not emptied: an event still in flight sends the old class, which must stay a valid choice
        return Photo(None, gr.update(value=None, visible=False), status)


@user_errors
def pick_class(choice: Any, session: Session | None) -> Any:
    """A class found with the search box: select it in the class picker (added after the top-5 if needed)."""
    session = inputs.need_session(session)
    analysis = get_analysis(session, session.model)
    index = resolve_class(choice, analysis)
    return gr.update(choices=views.class_choices(analysis, extra=index), value=str(index))


@user_errors
def on_model(model: str, session: Session | None, resolution: Any = DEFAULT_RESOLUTION.value) -> ModelSwitch:
    """A new model for the current photo (one forward pass), plus the TAP toggle's availability.

    The photo is re-analysed from the session's display copy, as on a resolution change (the upload file is never
    read again: other visitors' uploads may prune it). The photo keeps its resolution; without a photo,
    ``resolution`` (the Resolution menu's value) is the one the model is loaded for. A model that cannot be loaded
    (offline hub, bad checkpoint, a stride it cannot be built with) or a photo that expired is said once, in the
    status line, and the Model field goes back to the model the panels still show (no toast, no half switch).
    """
    shown = session.model if session is not None else cam_core.DEFAULT_MODEL
    try:
        return _switch_model(model, session, resolution)
    except LoadingNotice:  # said by the page's own status line, which then finishes the switch (app.model_loading)
        raise
    except gr.Error as exc:
        status = f"⚠️ {exc.message} The panels still show **{_loaded(shown, session).name}**."
        return ModelSwitch(gr.update(value=shown), gr.skip(), gr.skip(), status, gr.skip())


def _loaded(model: Any, session: Session | None) -> cam_core.LoadedModel:
    """The model the panels show for menu value ``model`` (a checkpoint family's member at the photo's resolution)."""
    resolution = session.resolution if session is not None else DEFAULT_RESOLUTION
    return get_model(member(model, resolution), resolution.output_stride)


@user_errors  # library errors become gr.Error here, so that on_model can say them
def _switch_model(model: str, session: Session | None, resolution: Any) -> ModelSwitch:
    chosen = session.resolution if session is not None else inputs.resolution_choice(resolution)
    # TAP stays as the user set it where a TAP-trained partner exists; on for a TAP-trained model, off where none
    tap_update = gr.update(**tap_toggle(model, chosen))
    get_model(member(model, chosen), chosen.output_stride)  # the menu check and the load first: errors show at once
    if session is None:
        return ModelSwitch(gr.update(), None, gr.update(), f"Model **{model}** ready: upload a photo.", tap_update)
    # from the session's display copy, as a resolution change (never the upload file: other uploads may prune it)
    switched = dataclasses.replace(session, model=model)
    return ModelSwitch(gr.update(), *_analysed_photo(switched), tap_update)


@user_errors
def on_resolution(choice: Any, class_choice: Any, model: Any, session: Session | None) -> ResolutionSwitch:
    """A new analysis resolution (a Resolution menu value) for the current photo, keeping the class picked.

    The photo is re-analysed from the session's display copy (:func:`app.state.get_analysis`; the upload is
    not decoded again); the class picker keeps the class with the new probabilities. A resolution the model
    cannot be built at (a stride DenseNet does not have) is said once, in the status line, and the field goes
    back to the photo's resolution.

    A photo already analysed at ``choice`` is left as it is (every output skipped): a deep link sets the
    resolution and the photo at once, and the photo's own event may have analysed it at that resolution and
    picked the link's class before this event runs, with the class picker's value from before.
    """
    try:
        return _switch_resolution(choice, class_choice, model, session)
    except LoadingNotice:  # as in on_model
        raise
    except gr.Error as exc:
        back = gr.update(value=session.resolution.value) if session is not None else gr.update()
        return ResolutionSwitch(back, gr.skip(), gr.skip(), f"⚠️ {exc.message}", gr.skip())


@user_errors
def _switch_resolution(choice: Any, class_choice: Any, model: Any, session: Session | None) -> ResolutionSwitch:
    resolution = inputs.resolution_choice(choice)
    shown = session.model if session is not None else model
    tap_update = gr.update(**tap_toggle(shown, resolution))
    if session is None:
        get_model(member(shown, resolution), resolution.output_stride)  # errors show at once
        status = f"Resolution **{resolution.label}** ready: upload a photo."
        return ResolutionSwitch(gr.update(), gr.skip(), gr.update(), status, tap_update)  # never clobber a new photo
    if session.resolution == resolution:
        return ResolutionSwitch(gr.update(), gr.skip(), gr.skip(), gr.skip(), tap_update)
    moved = dataclasses.replace(session, resolution=resolution)
    analysis = get_analysis(moved, moved.model)  # one forward pass of the display copy, then cached
    reference = inputs.class_reference(class_choice)
    index = analysis.top_k(1)[0][0] if reference is None else resolve_class(reference, analysis)
    name, p = short_name(analysis.class_names[index]), float(analysis.probabilities[index])
    status = f"{_analysed(moved)}: **{name}** ({percent(p)}){_tap_note(moved)}."
    picker = gr.update(choices=views.class_choices(analysis, extra=index), value=str(index), visible=True)
    return ResolutionSwitch(gr.update(), moved, picker, status, tap_update)


def _tap_note(session: Session) -> str:
    """``; TAP panel: ... trained at ...`` where a separate TAP-trained head is shipped for this model."""
    partner = tap_partner(session.model) if trained_with(session.model) == "GAP" else None
    if partner is None:
        return ""
    return f"; TAP panel: {analysis_model(session, partner)}, {pair_note(partner, session.resolution)}"


@user_errors
def render_localization(request: ViewRequest) -> views.LocalizationViews:
    """Slider / toggle update: both panels, histogram, masks (HTML over cached pictures), caption, JSON."""
    return views.localization_views(explain_request(request), request.gt)


@user_errors
def render_linked(request: ViewRequest, tab: str | None) -> LinkedViews:
    """:func:`render_localization` plus the swipe pictures and the export tab's JSON, each only while its tab is open.

    The swipe view needs two encoded pictures, so it is redrawn only where someone can see it; opening its tab
    draws it for the current controls (:func:`swipe_pair`). The export tab's JSON is sent only while that tab is
    open too: rendering its tree in the page cost every slider move time the user could see
    (``bench/bench_browser.py``). No zip here: a slider move never writes one (:func:`export_zip`, on request).
    """
    ex = explain_request(request)
    swipe = views.swipe_pictures(ex, request.gt) if tab == SWIPE_TAB else None
    shown = views.localization_views(ex, request.gt)
    payload = shown.payload if tab == EXPORT_TAB else None
    return LinkedViews(shown.plain, shown.ours, shown.histogram, shown.masks, shown.caption, payload, swipe)


CLEARED = LinkedViews("", "", "", "", "", {}, None)
"""Every linked view emptied (no photo, or a refused one)."""


@user_errors
def render_photo(request: ViewRequest, tab: str | None) -> LinkedViews:
    """After a new photo, model or class: :func:`render_linked`, or every view emptied when there is no photo
    (a refused upload, a model picked first): the status line has said why, so no second message."""
    return CLEARED if request.session is None else render_linked(request, tab)


@user_errors
def swipe_pair(request: ViewRequest) -> tuple[str, str] | None:
    """The swipe view's two pictures, drawn when its tab is opened (nothing before the first photo)."""
    if request.session is None:
        return None
    return views.swipe_pictures(explain_request(request), request.gt)


def selected_tab(event: gr.SelectData) -> str:
    """The label of the tab just opened (kept in a per-session state for :func:`render_linked`)."""
    return str(event.value)[:40]


ADD_BOX = "add"
"""``event.value`` of a drag that adds a box (Shift held, or the "add boxes" checkbox); any other replaces them."""


@user_errors
def draw_gt(request: ViewRequest, gt_text: Any, event: gr.SelectData) -> DrawnBox:
    """A box dragged on either panel (``event.index`` = corner fractions): fill the ground-truth field, re-render.

    A plain drag replaces the boxes; an adding drag (``event.value == "add"``, see ``app/draw_box.js``) appends
    the box to those in ``gt_text`` (the field's raw text, checked here), up to :data:`app.inputs.MAX_GT_BOXES`.
    """
    size = request.need_session().size
    box = inputs.box_from_fractions(event.index, size)[None, :]  # (1, 4)
    if event.value == ADD_BOX:
        try:
            before = inputs.parse_boxes(gt_text, size)
        except cam_core.ParameterError as exc:
            raise cam_core.ParameterError(
                f"{exc} Fix or clear the field, or drag without Shift to replace it."
            ) from exc
        if before is not None and len(before) >= inputs.MAX_GT_BOXES:
            raise cam_core.ParameterError(f"At most {inputs.MAX_GT_BOXES} ground-truth boxes: clear some first.")
        box = box if before is None else np.concatenate([before, box])
    drawn = dataclasses.replace(request, gt=box)
    return DrawnBox(inputs.format_boxes(box), *render_localization(drawn))


def apply_preset(name: str) -> PresetValues:
    """Slider values and resolution (a Resolution menu value) of a named preset (no change for "custom")."""
    preset = cam_core.PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        return PresetValues(gr.update(), gr.update(), gr.update(), gr.update(), gr.update())
    resolution = Resolution(preset.input_size, preset.output_stride).value
    return PresetValues(preset.theta_mas, preset.theta_pas, preset.percentile, preset.tau_tap, resolution)


@user_errors
def explain(
    image: Any,
    model: str = cam_core.DEFAULT_MODEL,
    class_name: str = "",
    theta_mas: float = _DEFAULT.theta_mas,
    theta_pas: float = _DEFAULT.theta_pas,
    percentile: float = _DEFAULT.percentile,
    tap: bool = _DEFAULT.tap,
    nwc: bool = _DEFAULT.nwc,
    pas: bool = _DEFAULT.pas,
    input_size: int = DEFAULT_RESOLUTION.input_size,
    output_stride: int = DEFAULT_RESOLUTION.output_stride,
) -> ApiResult:
    """Public API: explain one photo. Returns (JSON, plain overlay PNG, improved overlay PNG).

    Repeated images reuse their cached forward pass. Boxes are in original-image pixels, inclusive.
    The parameters after ``class_name`` are :data:`app.inputs.CONTROL_FIELDS`, defaults from :class:`Controls`,
    then the analysis resolution (one of :data:`app.inputs.RESOLUTIONS`, default
    :data:`app.inputs.DEFAULT_RESOLUTION`), appended last so that older positional calls keep working.
    """
    resolution = inputs.resolution(input_size, output_stride)
    session = start_session(image, model or cam_core.DEFAULT_MODEL, resolution)
    ex = explain_arrays(session, class_name, Controls.of(theta_mas, theta_pas, percentile, tap, nwc, pas))
    return ApiResult(
        explanation_json(ex, None),
        files.save_png(views.panel_picture(ex, "plain", None)),
        files.save_png(views.panel_picture(ex, "ours", None)),
    )


def zip_file(ex: Explanation, gt: np.ndarray | None) -> str:
    """Bundle the JSON and the pictures (PNG) of ``ex`` into one zip file; returns its path."""
    path = files.new_path(".zip")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("explanation.json", json.dumps(explanation_json(ex, gt), indent=2))
        for name, picture in views.export_pictures(ex, gt)._asdict().items():
            archive.write(files.save_png(picture), f"{name}.png")
    return path


@user_errors
def export_json(request: ViewRequest) -> dict[str, Any]:
    """The export tab's JSON for the current controls, drawn when the tab opens (``{}`` before a photo)."""
    if request.session is None:
        return {}
    ex = explain_request(request)
    return views.explanation_json(ex, request.gt)


@user_errors
def export_zip(request: ViewRequest) -> str:
    """The zip of the JSON and the pictures for the controls at the click (fast lane; the browser then downloads it:
    :meth:`app.wiring.Wiring.prepared_download`).

    Raises:
        InvalidImageError: no photo yet.
    """
    return zip_file(explain_request(request), request.gt)
