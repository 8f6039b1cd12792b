"""A deep link's query (see :mod:`app.link.deeplink`): the keys it may hold, each with the check its text passes,
and the reading of a whole query into checked values and notices.

Every value goes through the checks of :mod:`app.inputs` (hostile-input proof); :func:`parse_query` never raises
for what a query holds: a bad value, a repeated or an unknown key becomes a notice and is otherwise ignored. The
controls' keys are the :class:`~app.inputs.Controls` fields (a slider's value checked against its range in
:data:`app.inputs.THRESHOLD_SLIDERS`, a toggle's as ``true`` / ``false``, the method as a key of
:data:`app.inputs.METHODS`); ``tab`` is one of the page's tab ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cam_core
from app import inputs
from app.errors import inert_markdown
from app.inputs import CONTROL_FIELDS, EXAMPLE_FILES, THRESHOLD_SLIDERS
from app.models import model_choices

MAX_PAIRS = 40
"""Query pairs read at most; the rest are ignored (and said)."""
IGNORED = ("view",)
"""Keys that belong to Gradio itself (``?view=api``), ignored without a word, as are ``__``-prefixed ones."""


def _text(raw: str, key: str) -> str:
    return inputs.text(raw, key, max_length=100).strip()


def _number(key: str) -> Callable[[str], float]:
    """A slider's value: a decimal number inside the slider's range (:data:`app.inputs.THRESHOLD_SLIDERS`)."""
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


def _method(raw: str) -> str:
    """A key of the method menu (:data:`app.inputs.METHODS`: ``cam``, ``gradcam``, ...)."""
    return inputs.choice(_text(raw, "method"), "method", inputs.METHODS)


def _control(name: str) -> Callable[[str], Any]:
    """A control's reader: a slider's number, the method menu's key, else a toggle's ``true`` / ``false``."""
    if name in THRESHOLD_SLIDERS:
        return _number(name)
    return _method if name == "method" else _flag(name)


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
    """A tab id as written (which ids the page has is checked by :func:`parse_query`)."""
    return _text(raw, "tab")


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
    **{name: LinkKey(name, _control(name)) for name in CONTROL_FIELDS},
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


def parse_query(pairs: Iterable[tuple[Any, Any]], tabs: Sequence[str] = ()) -> LinkState:
    """The checked values of a URL query's ``(key, value)`` pairs (as ``QueryParams.multi_items()`` gives them).

    ``tabs``: the page's tab ids, the values ``tab`` may take (none: every ``tab`` is ignored, and said).

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
                value = spec.read(raw)
                values[key] = inputs.choice(value, key, tabs) if key == "tab" else value
            except cam_core.CamError as exc:
                notices.append(f"`{name}={inputs.shown(raw, 30)}` ignored: {str(exc).rstrip('.')}")
    if unknown:
        notices.append(f"unknown {'keys' if len(unknown) > 1 else 'key'} {', '.join(unknown[:5])} ignored "
                       f"(known: {', '.join(LINK_KEYS)})")  # fmt: skip
    return LinkState(values, tuple(notices))


def notice_text(notices: Iterable[str]) -> str:
    """The link notice: ``""`` when nothing was ignored, else one Markdown line.

    The notices repeat what the link holds (a shared link is anyone's text): each is made inert
    (:func:`app.errors.inert_markdown`), so a value such as ``<img src=//host/x>`` or ``[log in](http://host)``
    is shown as those characters, never as a picture, a link or a form (issue #22 item 5).
    """
    lines = [inert_markdown(line) for line in notices]
    return "" if not lines else "⚠️ **Link:** " + "; ".join(lines) + "."
