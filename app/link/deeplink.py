"""Deep links (issue #14 item 6): the page's state lives in the URL query, so a teacher can link a view.

**Keys.** The ``/explain`` parameter names (``model``, ``class``, ``theta_mas``, ``theta_pas``,
``percentile``, ``tap``, ``nwc``, ``pas``, ``input_size``, ``output_stride``), plus ``example`` (a bundled
example's file name, one of :data:`app.inputs.EXAMPLE_FILES`) and ``tab`` (a tab id, :data:`app.page.TABS`). Uploaded
photos are not linkable. :data:`~app.link.query.LINK_KEYS` is the one table of them: key -> the component it restores
and the check its text passes.

**Restore (server).** ``demo.load`` reads ``gr.Request.query_params`` (:func:`~app.link.query.parse_query`): every
value goes through the checks of :mod:`app.inputs` (hostile-input proof); a bad value, a repeated or an
unknown key is ignored and said in one notice, never an error page. The model, the resolution (the pair
``input_size`` / ``output_stride``, one of the menu's) and the tab are set at once; the photo is set too (the linked
example, else :data:`app.inputs.OPENING_EXAMPLE`: the page never opens blank; its upload event runs as for a click on
the example); with a linked example, the class and the controls wait in a ``gr.State`` until that photo is analysed
(:func:`after_photo`, then :func:`apply_linked_controls`).

**Write (browser).** On every change of a linked control (for a slider, a step of its view update, run in the
browser before the request) a browser-only step (:func:`~app.link.writer.writer_js`) queues its key;
:data:`~app.link.writer.LINK_WRITE_DELAY_MS` after the last change the state is written with ``history.replaceState``
(no reload) and shown in a copyable field (:class:`LinkRow`). A photo with the pixels of a bundled example is linked as
that example (:func:`example_name`); any other photo leaves only the settings in the link.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr
from gradio.components import Component
from gradio.context import Context

import cam_core
from app import inputs, views
from app.errors import user_errors
from app.events import Events
from app.explanation import resolve_class
from app.inputs import CONTROL_FIELDS, EXAMPLE_FILES
from app.link.query import CONTROL_KEYS, DEFAULT_AT, LINK_KEYS, notice_text, parse_query
from app.link.writer import writer_js
from app.models import Resolution, tap_toggle
from app.state import Session, get_analysis, image_hash


@dataclass(frozen=True)
class LinkRow:
    """The deep link's part of the sidebar: the link field, its notice, and three hidden helpers.

    Attributes:
        box: the link to this view, written by the browser.
        copy: copies the page's URL (the link) to the clipboard, in the browser.
        notice: what a link's restore ignored.
        example: hidden: the bundled example the photo is (``""`` for an upload), for the link.
        pending: ``gr.State`` of what a link restores once its example is analysed.
        tab: hidden: the id of the tab a link opens (a browser-only step selects it: :data:`SELECT_TAB_JS`).
    """

    box: gr.Textbox
    copy: gr.Button
    notice: gr.Markdown
    example: gr.Textbox
    pending: gr.State
    tab: gr.Textbox


def build() -> LinkRow:
    """The "link to this view" field: filled by the browser from the page state."""
    box = gr.Textbox(
        label="Link to this view",
        info="Restores an example photo, the model, class, sliders, toggles and tab. Uploaded photos are not "
        "linkable: the link then keeps only the settings.",
        interactive=False,
        max_lines=3,
        elem_id="link",
    )  # its text is written by the browser (writer_js), not by an event output: so is the copy
    copy = gr.Button("Copy the link", size="sm", variant="secondary", elem_id="link-copy")
    # shown when a link ignores something; plain text (its values are made inert), never maths
    notice = gr.Markdown(elem_id="link-notice", visible=False, latex_delimiters=[])
    example = gr.Textbox("", visible=False, elem_id="link-example")
    tab = gr.Textbox("", visible=False, elem_id="link-tab")
    return LinkRow(box, copy, notice, example, gr.State(None), tab)


def tap_update(model: str, linked: bool | None, notices: list[str], resolution: Resolution) -> Any:
    """The TAP toggle for ``model`` (its availability, :func:`app.models.tap_toggle`) with the linked value
    where the model allows it; a value the model forbids is said in ``notices`` and dropped."""
    props = tap_toggle(model, resolution)
    if linked is not None and "value" in props and props["value"] != linked:
        notices.append(f"`tap={str(linked).lower()}` ignored: {props['info']}")
    elif linked is not None:
        props = {**props, "value": linked}
    return gr.update(**props)


# ---------------------------------------------------------------- restoring on load

SELECT_TAB_JS = """(id) => (id === null || id === undefined || id === "" ? undefined
  : {__type__: "update", selected: id})"""
"""Browser-only step after the restore: select the linked tab (its id, from the hidden :attr:`LinkRow.tab`; nothing
when the link names none). In the browser, not as an output of the restore: every output of a server event stays in
Gradio's loading-status bookkeeping, which then re-reads a ``gr.Tabs`` and all its children (~80 components) on
every later request of the page, slider moves included (``bench/bench_browser.py``)."""


@dataclass(frozen=True)
class Pending:
    """What waits for the linked example's analysis: the class and the control values, by key."""

    values: dict[str, Any]


class Restored(NamedTuple):
    """``demo.load``'s outputs: photo, model, resolution, tab (its ``gr.Tab`` id, which a browser-only step then
    selects: :data:`SELECT_TAB_JS`, and the open-tab state), what waits, the notice, then one value per
    :data:`CONTROL_KEYS` key and the preset (``gr.skip()`` where the link says nothing)."""

    image: Any
    model: Any
    resolution: Any
    tab_id: Any
    open_tab: Any
    link_pending: Any
    link_notice: Any
    controls: tuple[Any, ...]


def example_copy(name: str) -> str:
    """A bundled example copied into Gradio's upload folder (where a page may show files from), each time: the
    copy is reused while it exists, and made again after the upload folder's clean-up removed it."""
    from gradio.processing_utils import save_file_to_cache
    from gradio.utils import get_upload_folder

    return save_file_to_cache(inputs.EXAMPLES / name, get_upload_folder())


def shown_notice(notices: list[str]) -> Any:
    """The link notice, shown (it is hidden until a link ignores something: a hidden component costs the page
    nothing on a slider move, a shown one a share of Gradio's per-request bookkeeping); ``gr.skip()`` for none."""
    return gr.update(value=notice_text(notices), visible=True) if notices else gr.skip()


def restore(pairs: Iterable[tuple[Any, Any]], tabs: Sequence[str], model_now: str) -> Restored:
    """The page's state from a query: what to set now, and what waits for the photo (:class:`Pending`).

    Args:
        pairs: the query's ``(key, value)`` pairs (hostile).
        tabs: the page's tab ids (``gr.Tab(id=...)``, what ``Tabs(selected=...)`` and ``tab`` take).
        model_now: the model the page starts with (the TAP toggle follows the linked model or this one).
    """
    state = parse_query(pairs, tabs)
    values, notices = dict(state.values), list(state.notices)
    example = values.pop("example", None)
    if example is None and "class" in values:
        notices.append("`class` ignored: it needs an `example` photo (uploaded photos are not linkable)")
        values.pop("class")
    model = values.pop("model", None)
    resolution = _linked_resolution(values.pop("input_size", None), values.pop("output_stride", None), notices)
    tab = values.pop("tab", None)
    skip = gr.skip()
    if example is not None and values:
        now: dict[str, Any] = {}
        pending: Any = Pending(values)
    else:
        now, pending = values, skip
    if model is not None or "tap" in now:
        at = inputs.resolution_choice(resolution) if resolution is not None else DEFAULT_AT
        now["tap"] = tap_update(model or model_now, now.get("tap"), notices, at)
    controls = tuple(now.get(key, skip) for key in CONTROL_KEYS)
    return Restored(
        example_copy(example if example is not None else inputs.OPENING_EXAMPLE),  # never a blank first screen
        model if model is not None else skip,
        resolution if resolution is not None else skip,
        tab if tab is not None else skip,
        tab if tab is not None else skip,
        pending,
        shown_notice(notices),
        (*controls, _preset(now) if resolution in (None, inputs.DEFAULT_RESOLUTION.value) else "custom"),
    )


def _linked_resolution(size: int | None, stride: int | None, notices: list[str]) -> str | None:
    """The Resolution menu's value for a link's ``input_size`` / ``output_stride`` (a missing one keeps the
    default's), or ``None`` when the link names neither or names a pair the menu does not offer (said)."""
    if size is None and stride is None:
        return None
    default = inputs.DEFAULT_RESOLUTION
    pair = (default.input_size if size is None else size, default.output_stride if stride is None else stride)
    try:
        return inputs.resolution(*pair).value
    except cam_core.ParameterError as exc:
        notices.append(f"`input_size={pair[0]}&output_stride={pair[1]}` ignored: {str(exc).rstrip('.')}")
        return None


def _preset(values: Mapping[str, Any]) -> Any:
    """The preset radio after a restore: ``custom`` once a linked threshold leaves the default preset."""
    start = inputs.Controls()
    moved = any(values.get(key, getattr(start, key)) != getattr(start, key) for key in ("theta_mas", "theta_pas",
                                                                                          "percentile"))  # fmt: skip
    return "custom" if moved else gr.skip()


def restore_event(tabs: Sequence[str], model_now: str) -> Callable[..., tuple[Any, ...]]:
    """The ``demo.load`` callback of one page: :func:`restore` of the request's query, flattened to outputs."""

    @user_errors
    def restore_link(request: gr.Request) -> tuple[Any, ...]:
        params: Any = getattr(request, "query_params", None) or {}  # starlette QueryParams (a multi-dict)
        pairs = params.multi_items() if hasattr(params, "multi_items") else dict(params).items()
        restored = restore(pairs, tabs, model_now)
        return (*restored[:-1], *restored.controls)

    restore_link.__annotations__ = {"request": gr.Request, "return": tuple}
    return restore_link


# ---------------------------------------------------------------- after the photo


@functools.lru_cache(maxsize=1)
def example_hashes() -> dict[str, str]:
    """The pixel hash of each bundled example (:func:`app.state.image_hash`) -> its file name."""
    hashes = {}
    for name in EXAMPLE_FILES:
        try:
            hashes[image_hash(cam_core.load_image(inputs.EXAMPLES / name))] = name
        except (cam_core.CamError, OSError):  # a missing example is simply never linked
            continue
    return hashes


def example_name(session: Session | None) -> str:
    """The bundled example the session's photo is (same pixels), else ``""`` (an upload: not linkable)."""
    return "" if session is None else example_hashes().get(session.image_hash, "")


PLAIN_KEYS = tuple(key for key in CONTROL_KEYS if key != "tap")
"""The controls a link sets with plain values (sliders, NWC, PaS), in the second step after the photo."""


@user_errors
def after_photo(pending: Pending | None, session: Session | None) -> tuple[Any, ...]:
    """Apply a linked class (and TAP toggle) once their example is analysed; always say which example is shown.

    Runs after every photo event (a few ms): without a waiting link it only updates the example name. The other
    controls wait for :func:`apply_linked_controls`, the next step: set in one response with the class, a
    slider's own redraw could read the class from before it (the browser sets a plain value at once, an update's
    value only after its other properties), and a redraw read that way may be answered last.

    Returns:
        The class picker, the TAP toggle, what still waits (the other controls; ``None``: nothing), the photo's
        example name (``""`` for an upload), the link notice (``gr.skip()`` each for "as is").
    """
    skip = gr.skip()
    if not isinstance(pending, Pending):
        return (skip, skip, skip, example_name(session), skip)
    values, notices = dict(pending.values), []
    class_pick: Any = skip
    if session is None:
        notices.append("the linked example could not be shown")
        values = {}
    elif "class" in values:
        try:  # a failure here must not stop the views' redraw that follows this step
            analysis = get_analysis(session, session.model)
            index = resolve_class(values.pop("class"), analysis)
            class_pick = gr.update(choices=views.class_choices(analysis, extra=index), value=str(index))
        except cam_core.CamError as exc:
            notices.append(f"`class` ignored: {str(exc).rstrip('.')}")
    tap: Any = skip
    if "tap" in values:
        model, at = (
            (session.model, session.resolution) if session else (cam_core.DEFAULT_MODEL, inputs.DEFAULT_RESOLUTION)
        )
        tap = tap_update(model, values.pop("tap"), notices, at)
    waiting = Pending(values) if values else None
    return (class_pick, tap, waiting, example_name(session), shown_notice(notices))


@user_errors
def apply_linked_controls(pending: Pending | None) -> tuple[Any, ...]:
    """The second step after a photo: the linked sliders and module toggles (:data:`PLAIN_KEYS`) and the preset, once
    the class is on the page; nothing waits any more.

    Returns:
        What waits (``None``), then one value per :data:`PLAIN_KEYS` key and the preset (``gr.skip()`` for "as is").
    """
    skip = gr.skip()
    if not isinstance(pending, Pending):
        return (skip, *(skip,) * len(PLAIN_KEYS), skip)
    values = dict(pending.values)
    return (None, *(values.get(key, skip) for key in PLAIN_KEYS), _preset(values))


# ---------------------------------------------------------------- wiring the restore and the writer


def link_targets(named: Mapping[str, Component]) -> dict[str, Any]:
    """The components the link keys restore, by :attr:`~app.link.query.LinkKey.target` name, from the page's shared
    components (:attr:`app.events.Events.named`)."""
    return {"model": named["model"], "class_pick": named["class_pick"], **{k: named[k] for k in CONTROL_FIELDS}}


def wire(events: Events, link: LinkRow, tabs: Sequence[str]) -> None:
    """Restore the page from its URL on load; write the URL after every change of what it records.

    Args:
        events: the page's events (shared components by name).
        link: the sidebar's link row.
        tabs: the page's tab ids, in screen order (the first is open at load: a link to it names no tab).
    """
    named = events.named
    targets = link_targets(named)
    controls = [targets[key] for key in CONTROL_KEYS] + [named["preset"]]
    image, model, resolution = named["image"], named["model"], named["resolution"]
    restored = [image, model, resolution, link.tab, named["open_tab"], link.pending, link.notice, *controls]
    demo = Context.root_block  # the gr.Blocks being built (wiring runs inside it)
    if demo is None:
        raise RuntimeError("the deep link must be wired inside the gr.Blocks of the page")
    restore_link = restore_event(tabs, cam_core.DEFAULT_MODEL)
    loaded = demo.load(restore_link, None, restored, api_visibility="private", queue=False)
    loaded.then(None, [link.tab], [named["tabs"]], js=SELECT_TAB_JS)
    written: dict[str, Any] = {"example": link.example, "resolution": resolution}
    written |= {key: targets[spec.target] for key, spec in LINK_KEYS.items() if spec.target}
    for key, component in written.items():
        if key in CONTROL_FIELDS:  # a step of the control's view update: no dependency of its own
            events.in_browser_with_update(key, writer_js(key))
        else:
            component.change(None, [component], None, js=writer_js(key))
    named["tabs"].select(None, None, None, js=writer_js("tab", wait_ms=30, first_tab=tabs[0]))
    link.copy.click(None, None, None, js="() => navigator.clipboard.writeText(location.href)")


def after_photo_step(events: Events, link: LinkRow, photo: Any) -> Any:
    """Chain :func:`after_photo` and :func:`apply_linked_controls` onto a photo event; the views' redraw follows them
    (:mod:`app.sidebar`)."""
    named = events.named
    targets = link_targets(named)
    first = [named["class_pick"], targets["tap"], link.pending, link.example, link.notice]
    then = [link.pending, *(targets[key] for key in PLAIN_KEYS), named["preset"]]
    class_set = photo.success(after_photo, [link.pending, named["session"]], first, **events.instant)
    return class_set.success(apply_linked_controls, [link.pending], then, **events.instant)
