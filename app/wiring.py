"""How events reach the handlers: the functions Gradio calls, built from typed handlers.

A handler takes typed objects (:class:`~app.inputs.ViewRequest`, :class:`~cam_core.crf.CrfParams`);
Gradio calls functions with one raw value per input component. :func:`event` joins the two: the
event's first values are converted by the :class:`~app.inputs.Entrance` objects (in order), the rest
pass through. :func:`components` gathers the input components by the same parameter names, so the
order the layout sends values in and the order the conversion reads them in are one list.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from gradio.components import Component

from app.errors import user_errors
from app.inputs import Entrance

R = TypeVar("R")


def event(handler: Callable[..., R], *entrances: Entrance[Any]) -> Callable[..., R]:
    """The function Gradio calls for ``handler``: raw values in, ``handler(typed..., *rest)`` out.

    Its signature lists the entrances' fields, then ``handler``'s own remaining parameters (with their
    annotations, so Gradio still injects ``gr.SelectData``). Conversion errors become ``gr.Error``.
    """
    widths = [len(entrance.fields) for entrance in entrances]
    rest = list(inspect.signature(handler).parameters.values())[len(entrances) :]
    hints = typing.get_type_hints(handler)

    def raw(*values: Any) -> R:
        typed, start = [], 0
        for entrance, width in zip(entrances, widths, strict=True):
            typed.append(entrance.build(*values[start : start + width]))
            start += width
        return handler(*typed, *values[start:])

    names = [name for entrance in entrances for name in entrance.fields]
    parameters = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
    raw.__signature__ = inspect.Signature([*parameters, *rest])  # type: ignore[attr-defined]
    raw.__annotations__ = {p.name: hints[p.name] for p in rest if p.name in hints}
    raw.__name__ = raw.__qualname__ = handler.__name__
    raw.__doc__ = handler.__doc__
    return user_errors(raw)


def components(named: Mapping[str, Component], *entrances: Entrance[Any]) -> list[Component]:
    """The input components of an :func:`event`, in its order: ``named[field]`` for each entrance's fields."""
    return [named[name] for entrance in entrances for name in entrance.fields]


def outputs(named: Mapping[str, Component], result: type[tuple[Any, ...]]) -> list[Component]:
    """The output components of a handler returning the ``NamedTuple`` ``result``, by its field names."""
    fields: Sequence[str] = result._fields  # type: ignore[attr-defined]
    return [named[name] for name in fields]
