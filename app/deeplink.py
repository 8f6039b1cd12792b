"""Deep links (issue #14 item 6): the page's state lives in the URL query, so a teacher can link a view.

**Keys.** The ``/explain`` parameter names (``model``, ``class``, ``theta_mas``, ``theta_pas``,
``percentile``, ``tap``, ``nwc``, ``pas``, ``input_size``, ``output_stride``), plus ``example`` (a bundled
example's file name, one of :data:`app.layout.EXAMPLE_FILES`) and ``tab`` (:data:`LINK_TABS`). Uploaded photos are not
linkable. :data:`LINK_KEYS` is the one table of them: key -> the component it restores and the check its text passes.

**Restore (server).** ``demo.load`` reads ``gr.Request.query_params`` (:func:`parse_query`): every value
goes through the checks of :mod:`app.inputs` (hostile-input proof); a bad value, a repeated or an
unknown key is ignored and said in one notice, never an error page. The model, the resolution (the pair
``input_size`` / ``output_stride``, one of the menu's) and the tab are set at once; with an example, the
photo is set too (its upload event runs as for a click on the example) and
the class and the controls wait in a ``gr.State`` until that photo is analysed (:func:`after_photo`).

**Write (browser).** After every change of a linked control (after a slider's view update, never beside
it) a browser-only step (:func:`writer_js`) queues its key; :data:`LINK_WRITE_DELAY_MS` after the last
change the state is written with ``history.replaceState`` (no reload) and shown in a copyable field.
A photo with the pixels of a bundled example is linked as that example (:func:`example_name`); any other
photo leaves only the settings in the link.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import gradio as gr
from gradio.context import Context

import cam_core
from app import inputs, views
from app.errors import user_errors
from app.explanation import resolve_class
from app.handlers import EXPORT_TAB, SWIPE_TAB
from app.layout import COMPARE_TAB, EXAMPLE_FILES, THRESHOLD_SLIDERS
from app.models import Resolution, model_choices, tap_toggle
from app.segmentation import SEG_TAB
from app.state import Session, get_analysis, image_hash

if TYPE_CHECKING:  # app.wiring imports this module
    from app.layout import Page
    from app.wiring import Wiring

LINK_TABS: dict[str, str] = {
    "compare": COMPARE_TAB,
    "swipe": SWIPE_TAB,
    "weights": "M+ / M−",
    "why-tap": "Why TAP (P1)",
    "crf": "CRF masks",
    "evaluate": "Evaluate",
    "export": EXPORT_TAB,
    "segmentation": SEG_TAB,
}
"""``tab`` values -> the tab labels of :mod:`app.layout` (a test checks each label is on the page)."""
MAX_PAIRS = 40
"""Query pairs read at most; the rest are ignored (and said)."""
IGNORED = ("view",)
"""Keys that belong to Gradio itself (``?view=api``), ignored without a word, as are ``__``-prefixed ones."""


def _text(raw: str, key: str) -> str:
    return inputs.text(raw, key, max_length=100).strip()


def _number(key: str) -> Callable[[str], float]:
    """A slider's value: a decimal number inside the slider's range (:data:`app.layout.THRESHOLD_SLIDERS`)."""
    low, high = THRESHOLD_SLIDERS[key][:2]

    def read(raw: str) -> float:
        text = _text(raw, key)
        try:
            value = float(text) if len(text) <= 32 else None
        except ValueError:
            value = None
        if value is None:
            shown = inputs.shown(text, 30)
            raise cam_core.ParameterError(f"`{key}` must be a number in [{low:g}, {high:g}], got {shown!r}.")
        return inputs.number(value, key, low, high)

    return read


def _flag(key: str) -> Callable[[str], bool]:
    """``true`` or ``false`` (any case); anything else is refused, never read as true."""

    def read(raw: str) -> bool:
        text = _text(raw, key).lower()
        if text not in ("true", "false"):
            raise cam_core.ParameterError(f"`{key}` must be true or false, got {inputs.shown(text)!r}.")
        return inputs.flag(text == "true", key)

    return read


def _example(raw: str) -> str:
    return inputs.choice(_text(raw, "example"), "example", EXAMPLE_FILES)


def _model(raw: str) -> str:
    return inputs.choice(_text(raw, "model"), "model", [value for _, value in model_choices()])


def _class(raw: str) -> int | str:
    reference = inputs.class_reference(_text(raw, "class"))
    if reference is None:
        raise cam_core.ParameterError("`class` is empty.")
    return reference


def _resolution_part(key: str) -> Callable[[str], int]:
    """``input_size`` or ``output_stride``: a whole number the Resolution menu offers for that parameter
    (whether the pair is offered together is checked once both are read, in :func:`restore`)."""
    offered = sorted({getattr(c.resolution, key) for c in inputs.RESOLUTIONS})

    def read(raw: str) -> int:
        text = _text(raw, key)
        if not (text.isascii() and text.isdigit() and len(text) <= 4) or int(text) not in offered:
            raise cam_core.ParameterError(f"`{key}` must be one of {offered}, got {inputs.shown(text, 30)!r}.")
        return int(text)

    return read


def _tab(raw: str) -> str:
    return LINK_TABS[inputs.choice(_text(raw, "tab"), "tab", LINK_TABS)]


@dataclass(frozen=True)
class LinkKey:
    """One query key.

    Attributes:
        target: the component it restores, by its name in :func:`link_targets` (``""``: handled apart).
        read: the query text -> the checked value; raises ``CamError`` (``ParameterError``) naming the key.
        after_photo: applied once a linked example is analysed (the class, the controls); else at once.
    """

    target: str
    read: Callable[[str], Any]
    after_photo: bool = True


LINK_KEYS: dict[str, LinkKey] = {
    "example": LinkKey("", _example, after_photo=False),
    "model": LinkKey("model", _model, after_photo=False),
    "class": LinkKey("class_pick", _class),
    "theta_mas": LinkKey("theta_mas", _number("theta_mas")),
    "theta_pas": LinkKey("theta_pas", _number("theta_pas")),
    "percentile": LinkKey("percentile", _number("percentile")),
    "tap": LinkKey("tap", _flag("tap")),
    "nwc": LinkKey("nwc", _flag("nwc")),
    "pas": LinkKey("pas", _flag("pas")),
    "input_size": LinkKey("", _resolution_part("input_size"), after_photo=False),  # the Resolution menu, as a pair
    "output_stride": LinkKey("", _resolution_part("output_stride"), after_photo=False),
    "tab": LinkKey("", _tab, after_photo=False),
}
"""Every linkable key, in the order the link writes them."""
DEFAULT_AT = inputs.DEFAULT_RESOLUTION
"""The resolution a link without ``input_size`` / ``output_stride`` is restored at (the page's default)."""
CONTROL_KEYS = tuple(key for key, spec in LINK_KEYS.items() if spec.target and spec.after_photo and key != "class")
"""The keys of controls restored as plain values (sliders, toggles): one output each."""


# ---------------------------------------------------------------- reading a query


@dataclass(frozen=True)
class LinkState:
    """A parsed query: the checked values by key, and one line per value that was ignored."""

    values: dict[str, Any] = field(default_factory=dict)
    notices: tuple[str, ...] = ()


def parse_query(pairs: Iterable[tuple[Any, Any]]) -> LinkState:
    """The checked values of a URL query's ``(key, value)`` pairs (as ``QueryParams.multi_items()`` gives them).

    Never raises for what the pairs hold: a bad value, an unknown or repeated key, more than
    :data:`MAX_PAIRS` pairs each become a notice and are otherwise ignored.
    """
    values: dict[str, Any] = {}
    notices: list[str] = []
    unknown: list[str] = []
    for count, (key, raw) in enumerate(pairs):
        if count >= MAX_PAIRS:
            notices.append(f"only the first {MAX_PAIRS} query parameters were read")
            break
        name = inputs.shown(str(key), 30)
        if not isinstance(key, str) or not isinstance(raw, str) or key.startswith("__") or key in IGNORED:
            continue
        spec = LINK_KEYS.get(key)
        if spec is None:
            unknown.append(f"`{name}`")
        elif key in values:
            notices.append(f"`{name}` was given twice: the first value is used")
        else:
            try:
                values[key] = spec.read(raw)
            except cam_core.CamError as exc:
                notices.append(f"`{name}={inputs.shown(raw, 30)}` ignored: {str(exc).rstrip('.')}")
    if unknown:
        notices.append(f"unknown {'keys' if len(unknown) > 1 else 'key'} {', '.join(unknown[:5])} ignored "
                       f"(known: {', '.join(LINK_KEYS)})")  # fmt: skip
    return LinkState(values, tuple(notices))


def notice_text(notices: Iterable[str]) -> str:
    """The link notice: ``""`` when nothing was ignored, else one Markdown line."""
    lines = list(notices)
    return "" if not lines else "⚠️ **Link:** " + "; ".join(lines) + "."


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


@dataclass(frozen=True)
class Pending:
    """What waits for the linked example's analysis: the class and the control values, by key."""

    values: dict[str, Any]


class Restored(NamedTuple):
    """``demo.load``'s outputs: photo, model, resolution, tab (selected id and the open-tab state), what waits,
    the notice, then one value per :data:`CONTROL_KEYS` key and the preset (``gr.skip()`` where the link says
    nothing)."""

    image: Any
    model: Any
    resolution: Any
    tabs: Any
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


def restore(pairs: Iterable[tuple[Any, Any]], tab_ids: Mapping[str, int], model_now: str) -> Restored:
    """The page's state from a query: what to set now, and what waits for the photo (:class:`Pending`).

    Args:
        pairs: the query's ``(key, value)`` pairs (hostile).
        tab_ids: tab label -> the ``gr.Tab``'s id (``Tabs(selected=...)``).
        model_now: the model the page starts with (the TAP toggle follows the linked model or this one).
    """
    state = parse_query(pairs)
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
        example_copy(example) if example is not None else skip,
        model if model is not None else skip,
        resolution if resolution is not None else skip,
        gr.update(selected=tab_ids[tab]) if tab is not None else skip,
        tab if tab is not None else skip,
        pending,
        notice_text(notices) if notices else skip,
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


def restore_event(tab_ids: Mapping[str, int], model_now: str) -> Callable[..., tuple[Any, ...]]:
    """The ``demo.load`` callback of one page: :func:`restore` of the request's query, flattened to outputs."""

    @user_errors
    def restore_link(request: gr.Request) -> tuple[Any, ...]:
        params: Any = getattr(request, "query_params", None) or {}  # starlette QueryParams (a multi-dict)
        pairs = params.multi_items() if hasattr(params, "multi_items") else dict(params).items()
        restored = restore(pairs, tab_ids, model_now)
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


@user_errors
def after_photo(pending: Pending | None, session: Session | None) -> tuple[Any, ...]:
    """Apply a linked class and controls once their example is analysed; always say which example is shown.

    Runs after every photo event (a few ms): without a waiting link it only updates the example name.

    Returns:
        The class picker, what waited (``None``: cleared), the photo's example name (``""`` for an upload),
        the link notice, then one value per :data:`CONTROL_KEYS` key and the preset (``gr.skip()`` for "as is").
    """
    skip = gr.skip()
    if not isinstance(pending, Pending):
        return (skip, skip, example_name(session), skip, *(skip,) * (len(CONTROL_KEYS) + 1))
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
    if "tap" in values:
        model, at = (
            (session.model, session.resolution) if session else (cam_core.DEFAULT_MODEL, inputs.DEFAULT_RESOLUTION)
        )
        values["tap"] = tap_update(model, values["tap"], notices, at)
    controls = (*(values.get(key, skip) for key in CONTROL_KEYS), _preset(values))
    notice = notice_text(notices) if notices else skip
    return (class_pick, None, example_name(session), notice, *controls)


# ---------------------------------------------------------------- writing the URL (browser only)


WRITE_URL_JS = """(query) => {
  const url = location.pathname + (query.toString() ? "?" + query.toString() : "") + location.hash;
  history.replaceState(history.state, "", url);
  const box = document.querySelector("#link textarea");
  if (box) box.value = location.href;
}"""
"""Browser: put a ``URLSearchParams`` into the address bar (no reload) and into the "Link to this view" field."""


LINK_WRITE_DELAY_MS = 200
"""How long the browser waits, after the last change, before it writes the URL: one write after a burst of slider
moves, and none while the moved box is being drawn (``bench/bench_browser.py`` measured ~25 ms per write on that
path when every move wrote at once)."""


def writer_js(key: str, wait_ms: int = 0) -> str:
    """The browser-only step that writes one key of the page state into the URL (the others stay as they are).

    Args:
        key: ``"example"`` (its input is the hidden example name; ``""`` for an upload, which also drops
            ``class``), ``"resolution"`` (the menu's ``"448/16"``: written as ``input_size`` and ``output_stride``),
            ``"tab"`` (no input: the selected tab button of the first tab list, read ``wait_ms`` after the event,
            as a tab click marks its button a moment after the event fires), or a :data:`LINK_KEYS` key with a
            target (its component's value; ``class`` only while the photo is an example).

    One input per step, not the whole state: gathering ten inputs after every slider move cost the page
    ~50 ms before the moved box was drawn (``bench/bench_browser.py``, measured). The step only queues its
    edit of the query (``window.__camLink``); the edits are applied, in order, and the URL written once
    :data:`LINK_WRITE_DELAY_MS` after the last of them.
    """
    prelude, edit = {
        "example": ("", 'if (value) query.set("example", value);\n'
                        '    else { query.delete("example"); query.delete("class"); }'),
        "resolution": ('const [size, stride] = String(value || "").split("/");',
                       'if (size && stride) { query.set("input_size", size); query.set("output_stride", stride); }'),
        "tab": (f"""await new Promise((done) => setTimeout(done, {int(wait_ms)}));
  const tabs = {json.dumps({label: name for name, label in LINK_TABS.items()}, ensure_ascii=False)};
  const selected = document.querySelector('[role="tablist"] [role="tab"][aria-selected="true"]');
  const tab = selected ? tabs[selected.textContent.trim()] : undefined;""",
                'if (tab && tab !== "compare") query.set("tab", tab); else query.delete("tab");'),
        "class": ("", 'if (value && query.has("example")) query.set("class", String(value));\n'
                      '    else query.delete("class");'),
    }.get(
        key,
        ("", f'if (value === null || value === undefined || value === "") query.delete("{key}"); '
             f'else query.set("{key}", String(value));'),
    )  # fmt: skip
    return f"""async (value) => {{
  {prelude}
  const link = window.__camLink || (window.__camLink = {{edits: [], timer: 0}});
  link.edits.push((query) => {{ {edit} }});
  clearTimeout(link.timer);
  link.timer = setTimeout(() => {{
    const query = new URLSearchParams(location.search);
    for (const apply of link.edits.splice(0)) apply(query);
    ({WRITE_URL_JS})(query);
  }}, {LINK_WRITE_DELAY_MS});
}}"""


def link_targets(page: Page) -> dict[str, Any]:
    """The components the link keys restore, by :attr:`LinkKey.target` name."""
    return {"model": page.sidebar.model, "class_pick": page.sidebar.class_pick, **page.controls.by_field()}


def wire_links(w: Wiring) -> None:
    """Restore the page from its URL on load; write the URL after every change of what it records."""
    page, link = w.page, w.page.sidebar.link
    targets = link_targets(page)
    controls = [targets[key] for key in CONTROL_KEYS] + [page.controls.preset]
    tab_ids = {str(tab.label): tab._id for tab in page.tabs.children if isinstance(tab, gr.Tab)}
    side = page.sidebar
    restored = [side.image, side.model, side.resolution, page.tabs, page.open_tab, link.pending, link.notice, *controls]
    demo = Context.root_block  # the gr.Blocks being built (wiring runs inside it)
    if demo is None:
        raise RuntimeError("wire_links must run inside the gr.Blocks of the page")
    demo.load(restore_event(tab_ids, cam_core.DEFAULT_MODEL), None, restored, api_visibility="private", queue=False)
    written: dict[str, Any] = {"example": link.example, "resolution": side.resolution}
    written |= {key: targets[spec.target] for key, spec in LINK_KEYS.items() if spec.target}
    for key, component in written.items():
        update = w.control_updates.get(key)  # a slider's view update: the URL is written after it, never before
        (update.then if update is not None else component.change)(None, [component], None, js=writer_js(key))
    page.tabs.select(None, None, None, js=writer_js("tab", wait_ms=30))
    link.copy.click(None, None, None, js="() => navigator.clipboard.writeText(location.href)")


def after_photo_step(w: Wiring, photo: Any) -> Any:
    """Chain :func:`after_photo` onto a photo event; the views' redraw follows it (see ``wire_sidebar``)."""
    page, link = w.page, w.page.sidebar.link
    targets = link_targets(page)
    controls = [targets[key] for key in CONTROL_KEYS] + [page.controls.preset]
    outputs = [page.sidebar.class_pick, link.pending, link.example, link.notice, *controls]
    return photo.success(after_photo, [link.pending, page.session], outputs, **w.instant)
