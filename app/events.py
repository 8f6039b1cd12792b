"""The Gradio adapter below every area of the page: how an event reaches a typed handler, and what the areas'
wirings share (lane options, components by name, the redraw of the views).

A handler takes typed objects (:class:`~app.inputs.ViewRequest`, :class:`~cam_core.crf.CrfParams`); Gradio calls
functions with one raw value per input component. :func:`event` joins the two: the event's first values are
converted by the :class:`~app.inputs.Entrance` objects (in order), the rest pass through. :func:`components`
gathers the input components by the same parameter names, and :func:`outputs` the output components by the field
names of a handler's ``NamedTuple`` result, so the order the page sends values in and the order the conversion reads
them in are one list.

:class:`Events` is what each area's ``wire`` function receives (:mod:`app.page` makes one per page): the options of
the two lanes (:mod:`app.lanes`) and of unqueued events, every shared component by the name the entrances and
results use (``session``, ``class_choice``, ``theta_mas``, ``plain``, ``payload``...: each area shares its own,
:meth:`Events.share`), the views' update (the compare tab's, :class:`ViewsUpdate`) and the redraws chained after a new
photo or class (:meth:`Events.redraw_after_class`), and the browser steps that ride on each control's update.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import gradio as gr
from gradio.components import Component

from app.errors import user_errors
from app.inputs import CONTROL_FIELDS, VIEW, Entrance
from app.lanes import FAST, SLOW, lane_options

R = TypeVar("R")
DOWNLOAD_JS = """async (file) => {
  if (!file || !file.url) return;
  const name = file.orig_name || "";
  const response = await fetch(file.url);
  if (!response.ok) return;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name.includes("--") ? name.slice(name.indexOf("--") + 2) : name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}"""
"""Browser-only step: download a file component's new value (see :meth:`Events.prepared_download`), named without
the unguessable prefix :func:`app.files.new_path` gives it (up to :data:`app.files.DOWNLOAD_SEPARATOR`). Through a
``blob:`` URL: the server's ``Content-Disposition`` names a direct download after the file on disk."""


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
            typed.append(entrance.convert(*values[start : start + width]))
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


def steps_js(steps: Sequence[str], index: int) -> str:
    """The ``js`` of a view update: each browser step on input ``index`` (the control's value), in order, then the
    inputs unchanged for the request. A failing step is logged, never in the way of the update."""
    listed = ",\n    ".join(f"({step})" for step in steps)
    return f"""async (...inputs) => {{
  for (const step of [{listed}]) {{
    try {{ await step(inputs[{index}]); }} catch (error) {{ console.error("browser step of a view update:", error); }}
  }}
  return inputs;
}}"""


class Area(Protocol):
    """An area of the page (the sidebar, the control bar, a tab...): a dataclass of its components."""

    def shares(self) -> Mapping[str, Component]:
        """The components other areas read or write, by the name their entrances and results use."""
        ...


@dataclass(frozen=True)
class ViewsUpdate:
    """The update of the views that follow the controls (the compare tab's, with the views riding on it).

    Attributes:
        now: the update of a control or class change (unqueued; errors said in the notice).
        after_photo: the same after a new photo, model or resolution (every view emptied without a photo).
        result: the ``NamedTuple`` both return, whose fields name the output components.
    """

    now: Callable[..., tuple[Any, ...]]
    after_photo: Callable[..., tuple[Any, ...]]
    result: type[tuple[Any, ...]]


@dataclass(frozen=True)
class Redraw:
    """A view redrawn (queued, quietly) after the views' update when the photo or the class changed."""

    fn: Callable[..., Any]
    inputs: list[Component]
    outputs: list[Component]


@dataclass
class Events:
    """What every area's wiring shares: event options, components by name, the views' update and redraws.

    Attributes:
        fast: options of the fast lane (:mod:`app.lanes`): a photo's analysis, class search, short views.
        slow: options of the slow lane: Evaluate, CRF, Segmentation CRF and zip (one per visitor at a time).
        quiet: options of UI-only queued events (hidden progress, only the latest of a burst runs; fast lane).
        instant: ``quiet`` without the queue, for slider-speed events (a few ms of work over the caches): one
            HTTP request instead of join + status stream, each of which costs the browser a round of
            Gradio's state bookkeeping. Such an event never runs a forward pass, loads a model or writes
            a zip: on a cache miss it fails quietly and :meth:`instant_views` runs it again in the fast lane.
        named: the shared components by name (:meth:`share`).
        views: the views' update, set by the compare tab's wiring (:mod:`app.tabs.compare`).
        redraws: what :meth:`render_rest` chains after the views, in the order the areas registered them.
    """

    fast: dict[str, Any]
    slow: dict[str, Any]
    quiet: dict[str, Any]
    instant: dict[str, Any]
    named: dict[str, Any] = field(default_factory=dict)
    views: ViewsUpdate | None = None
    redraws: list[Redraw] = field(default_factory=list)
    wired_controls: set[str] = field(default_factory=set)
    """The controls whose view update :mod:`app.controls` has registered (a browser step added after that would
    never run, so :meth:`in_browser_with_update` refuses it)."""
    with_update: dict[str, list[str]] = field(default_factory=dict)
    """Browser-only steps of each control's view update (``name -> [JavaScript function of the control's value]``),
    collected by :meth:`in_browser_with_update`: the control bar runs them in the update's own ``js``, in the browser
    just before its request, so a move is **one** Gradio dependency (a chained ``.then`` step cost the page a round of
    Gradio's bookkeeping right after the answer, before the moved box was drawn: ``bench/bench_browser.py``, 0.94x
    without it)."""

    @classmethod
    def for_page(cls, ui_visibility: Literal["private", "undocumented"]) -> Events:
        """The options of one page; ``ui_visibility``: ``"private"`` (the app) or ``"undocumented"`` (benchmarks
        and tests call the UI events)."""
        quiet = {"show_progress": "hidden", "api_visibility": ui_visibility, "trigger_mode": "always_last"}
        fast, slow = lane_options(FAST), lane_options(SLOW)
        return cls(fast, slow, {**quiet, **fast}, {**quiet, "queue": False})

    def share(self, shared: Mapping[str, Any]) -> None:
        """Make ``shared`` reachable by name; a name shared twice by two components is a bug (``KeyError``)."""
        for name, component in shared.items():
            if self.named.setdefault(name, component) is not component:
                raise KeyError(f"{name!r} is shared by two components")

    def inputs(self, *entrances: Entrance[Any]) -> list[Component]:
        """The shared components the ``entrances`` convert, in their order (:func:`components`)."""
        return components(self.named, *entrances)

    def outputs(self, result: type[tuple[Any, ...]]) -> list[Component]:
        """The shared components a handler returning ``result`` fills (:func:`outputs`)."""
        return outputs(self.named, result)

    def instant_views(self, triggers: Any, fn: Callable[..., Any], inputs: Any, outputs: Any, **options: Any) -> Any:
        """``fn`` unqueued (:attr:`instant`) on ``triggers`` (one listener, or a list of them: one ``gr.on``), and the
        same ``fn`` again through the fast lane when the unqueued run missed the caches (:class:`app.state.NotCached`:
        the first TAP toggle, an analysis dropped from memory). Returns the unqueued dependency."""
        if isinstance(triggers, list):
            dependency = gr.on(triggers, fn, inputs, outputs, **self.instant, **options)
        else:
            dependency = triggers(fn, inputs, outputs, **self.instant, **options)
        queued = {**options, "js": None}
        if options.get("api_name"):
            queued["api_name"] = f"{options['api_name']}_queued"
        dependency.failure(fn, inputs, outputs, **{**self.quiet, "show_progress": "minimal"}, **queued)
        return dependency

    def prepared_download(self, button: Any, fn: Callable[..., Any], inputs: Any, outputs: list[Any],
                          lane: dict[str, Any], **options: Any) -> Any:  # fmt: skip
        """A click on ``button`` makes a file with ``fn`` (queued in ``lane``) into the hidden file component
        ``outputs[0]``; each new file there is then downloaded by the browser (:data:`DOWNLOAD_JS`), so the first
        click downloads what is on screen at the click. (A ``gr.DownloadButton`` downloads the value it holds
        when clicked: a file made by that click would arrive one click late.) An error leaves the holder as it
        was: nothing is downloaded."""
        made = button.click(fn, inputs, outputs, **lane, **options)
        outputs[0].change(None, [outputs[0]], None, js=DOWNLOAD_JS)
        return made

    def in_browser_with_update(self, name: str, js: str) -> None:
        """Run the JavaScript function ``js`` on control ``name``'s new value whenever that control updates the views
        (before the control bar is wired, which composes the steps)."""
        if name in self.wired_controls:
            raise RuntimeError("the controls' updates are wired already: register browser steps before the controls")
        if name not in CONTROL_FIELDS:
            raise KeyError(f"{name!r} is not a control (one of {sorted(CONTROL_FIELDS)})")
        self.with_update.setdefault(name, []).append(js)

    def redraw_after_class(self, fn: Callable[..., Any], inputs: list[Component], outputs: list[Component]) -> None:
        """Redraw ``outputs`` with ``fn`` (queued, quietly) after the views whenever the photo or the class changes."""
        self.redraws.append(Redraw(fn, inputs, outputs))

    @property
    def update(self) -> ViewsUpdate:
        """The views' update (the compare tab registers it first: ``RuntimeError`` before that)."""
        if self.views is None:
            raise RuntimeError("the compare tab is not wired yet: it registers the views' update")
        return self.views

    @property
    def view_inputs(self) -> list[Component]:
        """:data:`~app.inputs.VIEW`'s components, then the open tab (the views' update's inputs)."""
        return [*self.inputs(VIEW), self.named["open_tab"]]

    @property
    def view_outputs(self) -> list[Component]:
        """The views' update's components, then the notice."""
        return [*self.outputs(self.update.result), self.named["notice"]]

    @property
    def render_now(self) -> Callable[..., tuple[Any, ...]]:
        """The slider-driven update: errors go to the notice; views of closed tabs are not drawn."""
        return self.update.now

    def render_rest(self, dependency: Any) -> None:
        """After ``dependency`` succeeds, run the registered redraws (queued, one after the other)."""
        for redraw in self.redraws:
            dependency = dependency.success(redraw.fn, redraw.inputs, redraw.outputs, **self.quiet)

    def render_all(self, dependency: Any, then_js: str | None = None) -> Any:
        """After ``dependency`` succeeds, redraw every view of the photo (or empty them all: no photo), unqueued and,
        after a cache miss, again through the fast lane; ``then_js`` runs in the browser once either has drawn the
        panels. Returns the unqueued views' update, which the slower redraws follow."""
        views = dependency.success(self.update.after_photo, self.view_inputs, self.view_outputs, **self.instant)
        self.render_rest(views)
        # a miss of the caches (a CAM-family method's map of the new photo: app.explanation.method_maps) is run
        # again through the fast lane, and the other views follow it
        queued = {**self.quiet, "show_progress": "minimal"}
        again = views.failure(self.update.after_photo, self.view_inputs, self.view_outputs, **queued)
        self.render_rest(again)
        if then_js is not None:  # a browser step once the panels are drawn, by either route
            for drawn in (views, again):
                drawn.success(None, None, None, js=then_js)
        return views
