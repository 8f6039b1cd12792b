"""A photo's analysis: the handlers of a new photo, model or resolution, the only events with a forward pass
(besides ``/explain``).

Each takes the raw values of its event (checked here through :mod:`app.inputs`), asks :mod:`app.explanation` for the
session and :mod:`app.state` for the analysis, and returns a ``NamedTuple`` whose fields name the output components
(the sidebar wires them: :mod:`app.sidebar`). A model that is still loading is said at once and the event runs again
when it is ready (:mod:`app.model_loading`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import gradio as gr

import cam_core
from app import inputs, views
from app.errors import LoadingNotice, user_errors
from app.explanation import calibration_note, percent, resolve_class, short_name, start_session
from app.inputs import DEFAULT_RESOLUTION, EXAMPLES, OPENING_EXAMPLE
from app.models import member, pair_note, tap_partner, tap_toggle, trained_with
from app.state import ANALYSES, DISPLAYS, Session, analysis_model, get_analysis, get_model


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


def _photo(payload: Any, model: str, resolution: Any) -> Photo:
    return _analysed_photo(start_session(payload, model, inputs.resolution_choice(resolution)))


def _analysed_photo(session: Session) -> Photo:
    """The session, the class picker (top-1 chosen) and the status line of a photo under ``session.model``."""
    analysis = get_analysis(session, session.model)
    top = analysis.top_k(1)[0]
    status = f"{_analysed(session)}: top-1 **{short_name(top[1])}** ({percent(top[2])}); {calibration_note(analysis)}."
    return Photo(session, gr.update(choices=views.class_choices(analysis), value=str(top[0]), visible=True), status)


def _analysed(session: Session) -> str:
    """``**name** (weights) at 448 px, stride 16 -> 28x28 map``, plus which trained head a checkpoint stands for."""
    loaded = _loaded(session.model, session)
    analysis = get_analysis(session, session.model)
    note = pair_note(session.model, session.resolution)
    return f"**{loaded.name}** ({loaded.weights}{'; ' + note if note else ''}) at {analysis.resolution}"


def pin_opening_example() -> Session:
    """Analyse the page's opening example (:data:`app.inputs.OPENING_EXAMPLE`) with the default model at the default
    resolution, once, and pin its analysis and display copy in the caches: every page load shows it, and none then
    costs a forward pass however many photos were uploaded since (the load's photo event decodes the small example
    and finds its analysis). Called at start-up (:func:`app.ui.build_demo`).
    """
    session = start_session({"path": str(EXAMPLES / OPENING_EXAMPLE)}, cam_core.DEFAULT_MODEL, DEFAULT_RESOLUTION)
    analysis = get_analysis(session, session.model)
    ANALYSES.pin(analysis_model(session, session.model), session.resolution, session.image_hash, analysis)
    DISPLAYS.pin(session.image_hash, session.display)
    return session


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
    status = f"{_analysed(moved)}: **{name}** ({percent(p)}); {calibration_note(analysis)}{_tap_note(moved)}."
    picker = gr.update(choices=views.class_choices(analysis, extra=index), value=str(index), visible=True)
    return ResolutionSwitch(gr.update(), moved, picker, status, tap_update)


def _tap_note(session: Session) -> str:
    """``; TAP panel: ... trained at ...`` where a separate TAP-trained head is shipped for this model."""
    partner = tap_partner(session.model) if trained_with(session.model) == "GAP" else None
    if partner is None:
        return ""
    return f"; TAP panel: {analysis_model(session, partner)}, {pair_note(partner, session.resolution)}"
