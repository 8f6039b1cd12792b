"""The page's events, one wiring function per area, and how events reach the typed handlers.

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
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import gradio as gr
from gradio.components import Component

from app import analysis_views as av
from app import evaluation, handlers
from app.deeplink import after_photo_step, wire_links
from app.errors import user_errors, with_notice
from app.inputs import CRF, DRAG, VIEW, Entrance
from app.lanes import FAST, SLOW, lane_options
from app.layout import Page
from app.model_loading import answering_at_once, build_load_watch, wire_model_loads
from app.segmentation_tab import wire_segmentation

R = TypeVar("R")
DOWNLOAD_JS = """(file) => {
  if (!file || !file.url) return;
  const link = document.createElement("a");
  link.href = file.url;
  link.download = file.orig_name || "";
  document.body.append(link);
  link.click();
  link.remove();
}"""
"""Browser-only step: download a file component's new value (see :meth:`Wiring.prepared_download`)."""


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


# ---------------------------------------------------------------- the page's events, one function per area


@dataclass(frozen=True)
class Wiring:
    """What every area's wiring shares: the page, event options, and the chained redraw of the views.

    Attributes:
        page: the laid-out components.
        fast: options of the fast lane (:mod:`app.lanes`): a photo's analysis, class search, short views.
        slow: options of the slow lane: Evaluate, CRF, Segmentation CRF and zip (one per visitor at a time).
        quiet: options of UI-only queued events (hidden progress, only the latest of a burst runs; fast lane).
        instant: ``quiet`` without the queue, for slider-speed events (a few ms of work over the caches): one
            HTTP request instead of join + status stream, each of which costs the browser a round of
            Gradio's state bookkeeping. Such an event never runs a forward pass, loads a model or writes
            a zip: on a cache miss it fails quietly and :meth:`instant_views` runs it again in the fast lane.
    """

    page: Page
    fast: dict[str, Any]
    slow: dict[str, Any]
    quiet: dict[str, Any]
    instant: dict[str, Any]
    wired_controls: set[str] = field(default_factory=set)
    """The controls whose view update :func:`wire_controls` has registered (a browser step added after that would
    never run, so :meth:`in_browser_with_update` refuses it)."""
    with_update: dict[str, list[str]] = field(default_factory=dict)
    """Browser-only steps of each control's view update (``name -> [JavaScript function of the control's value]``),
    collected by :meth:`in_browser_with_update`: :func:`wire_controls` runs them in the update's own ``js``, in the
    browser just before its request, so a move is **one** Gradio dependency (a chained ``.then`` step cost the page a
    round of Gradio's bookkeeping right after the answer, before the moved box was drawn: ``bench/bench_browser.py``,
    0.94x without it)."""

    @property
    def heavy(self) -> dict[str, Any]:
        """The slow lane's options (this field's name before the lanes)."""
        return self.slow

    def instant_views(self, listener: Callable[..., Any], fn: Callable[..., Any], inputs: Any, outputs: Any,
                      **options: Any) -> Any:  # fmt: skip
        """``listener(fn, ...)`` unqueued (:attr:`instant`), and the same ``fn`` again through the fast lane when
        the unqueued run missed the caches (:class:`app.state.NotCached`: the first TAP toggle, an analysis dropped
        from memory). Returns the unqueued dependency."""
        dependency = listener(fn, inputs, outputs, **self.instant, **options)
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
        (before :func:`wire_controls`, which composes the steps)."""
        if name in self.wired_controls:
            raise RuntimeError("the controls' updates are wired already: register browser steps before wire_controls")
        if name not in self.page.controls.by_field():
            raise KeyError(f"{name!r} is not a control (one of {sorted(self.page.controls.by_field())})")
        self.with_update.setdefault(name, []).append(js)

    @property
    def view_inputs(self) -> list[Component]:
        """:data:`~app.inputs.VIEW`'s components, then the open tab (``render_linked``'s inputs)."""
        return [*components(self.page.view_inputs(), VIEW), self.page.open_tab]

    @property
    def view_outputs(self) -> list[Component]:
        """:class:`~app.handlers.LinkedViews`' components, then the notice."""
        return [*outputs(self.page.view_outputs(), handlers.LinkedViews), self.page.notice]

    @property
    def render_now(self) -> Callable[..., tuple[Any, ...]]:
        """The slider-driven update: errors go to the notice; the swipe pictures only while their tab is open."""
        return with_notice(event(handlers.render_linked, VIEW), len(handlers.LinkedViews._fields))

    def render_rest(self, dependency: Any) -> None:
        """After ``dependency`` succeeds, redraw the M+ / M- and the P1 tabs (queued, one after the other)."""
        page, weights, why = self.page, self.page.weights, self.page.why_tap
        dependency.success(
            av.render_weights,
            [page.session, page.sidebar.class_pick, weights.scale],
            weights.outputs,
            **self.quiet,
        ).success(
            av.render_p1,
            [page.session, page.sidebar.class_pick, page.controls.tau, why.channel],
            [why.plot, why.channel_map, why.channel, why.caption],
            **self.quiet,
        )

    def render_all(self, dependency: Any) -> None:
        """After ``dependency`` succeeds, redraw every view of the photo (or empty them all: no photo)."""
        photo_now = with_notice(event(handlers.render_photo, VIEW), len(handlers.LinkedViews._fields))
        self.render_rest(dependency.success(photo_now, self.view_inputs, self.view_outputs, **self.instant))


def wire_analyses(w: Wiring) -> None:
    """A new photo, model or resolution: one forward pass each (fast lane), then every view redrawn. A model still
    loading is said at once and the event runs again when it is ready (:mod:`app.model_loading`)."""
    page, side = w.page, w.page.sidebar
    named = {"session": page.session, "class_pick": side.class_pick, "status": side.status, "tap": page.controls.tap,
             "model": side.model, "resolution": side.resolution}  # fmt: skip
    visibility = w.quiet["api_visibility"]
    loads = build_load_watch()
    side.image.change(None, None, side.gt_box, js="() => ''")  # browser-only: a new photo drops the old ground truth
    photo = answering_at_once(handlers.on_photo, "photo", handlers.Photo)
    for trigger, api_name in ((side.image.change, "on_image"), (loads.done["photo"].change, "on_image_loaded")):
        dependency = trigger(
            photo,
            [side.image, side.model, side.resolution],
            [*outputs(named, handlers.Photo), *loads.outputs],
            preprocess=False,
            api_visibility=visibility,
            api_name=api_name,  # the name benchmarks and tests call it by
            **w.fast,
        )
        w.render_all(after_photo_step(w, dependency))  # a deep link's class and controls first (app/deeplink.py)
    model = answering_at_once(handlers.on_model, "model", handlers.ModelSwitch)
    # the user's pick only: a failed load puts the old value back without a new event
    for trigger, api_name in ((side.model.input, "on_model"), (loads.done["model"].change, "on_model_loaded")):
        w.render_all(trigger(
            model,
            [side.model, page.session, side.resolution],
            [*outputs(named, handlers.ModelSwitch), *loads.outputs],
            api_visibility="private",
            api_name=api_name,
            **w.fast,
        ))  # fmt: skip
    # `.change`, not `.input`: a preset sets the resolution too; a failed change puts the old value back, whose
    # own change event then finds its analysis in the cache
    resolution = answering_at_once(handlers.on_resolution, "resolution", handlers.ResolutionSwitch)
    done = loads.done["resolution"].change
    for trigger, api_name in ((side.resolution.change, "on_resolution"), (done, "on_resolution_loaded")):
        w.render_all(trigger(
            resolution,
            [side.resolution, side.class_pick, side.model, page.session],
            [*outputs(named, handlers.ResolutionSwitch), *loads.outputs],
            api_visibility=visibility,
            api_name=api_name,
            **w.fast,
        ))  # fmt: skip
    wire_model_loads(w, loads)


def wire_sidebar(w: Wiring) -> None:
    """A class picked or searched, a typed or cleared ground truth, the preset left by hand (the analyses:
    :func:`wire_analyses`)."""
    page, side = w.page, w.page.sidebar
    side.resolution.input(None, None, page.controls.preset, js="() => 'custom'")  # by hand: the preset is left
    w.render_rest(w.instant_views(side.class_pick.input, w.render_now, w.view_inputs, w.view_outputs))
    searched = side.class_search.input(
        handlers.pick_class, [side.class_search, page.session], [side.class_pick], api_visibility="private", **w.fast
    )
    w.render_all(searched)
    searched.then(None, None, [side.class_search], js="() => null")  # browser-only: emptied for the next search
    w.instant_views(side.gt_box.submit, w.render_now, w.view_inputs, w.view_outputs)
    cleared = side.gt_clear.click(lambda: "", None, side.gt_box, queue=False, api_visibility="private")
    w.instant_views(cleared.success, w.render_now, w.view_inputs, w.view_outputs)


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


def wire_controls(w: Wiring) -> None:
    """Every control redraws the views (with its browser steps: :attr:`Wiring.with_update`); a hand-moved slider
    leaves the preset; a preset sets the sliders."""
    controls, inputs = w.page.controls, w.view_inputs
    for name, component in controls.by_field().items():
        steps = w.with_update.get(name)
        js = steps_js(steps, inputs.index(component)) if steps else None
        w.instant_views(component.change, w.render_now, inputs, w.view_outputs, api_name=f"update_{name}", js=js)
        w.wired_controls.add(name)
    for slider in controls.sliders:
        slider.input(None, None, controls.preset, js="() => 'custom'")  # browser-only, no round trip
    controls.preset.change(
        handlers.apply_preset,
        [controls.preset],
        [*controls.sliders, w.page.sidebar.resolution],
        api_visibility="private",
        **w.fast,
    )


def wire_compare(w: Wiring) -> None:
    """A box dragged on either panel (see ``app/draw_box.js``) replaces the ground truth, or joins it (Shift)."""
    draw_now = with_notice(event(handlers.draw_gt, DRAG), len(handlers.DrawnBox._fields))
    drawn = [*outputs(w.page.view_outputs(), handlers.DrawnBox), w.page.notice]
    sent = [*components(w.page.view_inputs(), DRAG), w.page.sidebar.gt_box]  # the old boxes, for an adding drag
    for panel in (w.page.compare.plain, w.page.compare.ours):
        panel.select(draw_now, sent, drawn, **w.instant)


def wire_tabs(w: Wiring) -> None:
    """The open tab is remembered; opening the swipe tab draws it for the current controls."""
    page = w.page
    page.tabs.select(handlers.selected_tab, None, page.open_tab, queue=False, api_visibility="private")
    page.swipe.tab.select(
        event(handlers.swipe_pair, VIEW),
        components(page.view_inputs(), VIEW),
        [page.swipe.view],
        api_visibility="private",
        **w.fast,
    )


def wire_analysis_tabs(w: Wiring) -> None:
    """The M+ / M- colour scale, the P1 tab's τ and channel, and the CRF button."""
    page, weights, why, crf_tab = w.page, w.page.weights, w.page.why_tap, w.page.crf
    weights.scale.change(
        av.render_weights,
        [page.session, page.sidebar.class_pick, weights.scale],
        weights.outputs,
        **w.quiet,
    )
    p1_inputs = [page.session, page.sidebar.class_pick, page.controls.tau, why.channel]
    p1_outputs = [why.plot, why.channel_map, why.channel, why.caption]
    page.controls.tau.change(av.render_p1, p1_inputs, p1_outputs, **w.quiet)
    why.channel.input(av.render_p1, p1_inputs, p1_outputs, **w.quiet)
    crf_tab.button.click(
        event(av.render_crf, VIEW, CRF),
        components(page.view_inputs(), VIEW, CRF),
        [crf_tab.view, crf_tab.caption],
        api_visibility="private",
        **w.slow,
    )


def wire_evaluate(w: Wiring) -> None:
    """The uploaded set or the bundled examples, evaluated with the current model at the current resolution."""
    tab, model, resolution = w.page.evaluate, w.page.sidebar.model, w.page.sidebar.resolution
    tab.run.click(
        evaluation.run_evaluation,
        [tab.images, tab.boxes_csv, gr.State(False), model, resolution],
        tab.outputs,
        api_visibility="private",
        **w.slow,
    )
    tab.run_examples.click(
        evaluation.run_examples, [model, resolution], tab.outputs, api_visibility="private", **w.slow
    )


def wire_export(w: Wiring) -> None:
    """Opening the export tab shows the JSON (while it stays open the slider updates redraw it); the download button
    makes the zip of what is on screen at the click, in the fast lane, and the browser downloads it."""
    export, inputs = w.page.export, components(w.page.view_inputs(), VIEW)
    export.tab.select(event(handlers.export_json, VIEW), inputs, [export.json], api_visibility="private", **w.fast)
    w.prepared_download(export.download, event(handlers.export_zip, VIEW), inputs, [export.zip_file], w.fast,
                        api_name="export_zip", api_visibility=w.quiet["api_visibility"])  # fmt: skip


def wire_api(w: Wiring) -> None:
    """``/explain``, the only public endpoint: photo, model, class, the controls in :class:`Controls` order, then
    ``input_size`` and ``output_stride`` (appended last: older positional calls keep working)."""
    page, api = w.page, w.page.api
    inputs = [page.sidebar.image, page.sidebar.model, api.class_name, *page.controls.by_field().values()]
    inputs += [api.input_size, api.output_stride]
    api.button.click(
        handlers.explain,
        inputs,
        [page.export.json, api.plain, api.ours],
        api_name="explain",
        preprocess=False,
        **w.fast,
    )


def wire_page(page: Page, ui_visibility: Literal["private", "undocumented"]) -> None:
    """Register every event of ``page`` (inside its ``gr.Blocks``); each queued one in a lane (:mod:`app.lanes`).

    Args:
        page: the laid-out components (:func:`app.layout.build_page`).
        ui_visibility: ``"private"`` (the app) or ``"undocumented"`` (benchmarks and tests call UI events).
    """
    quiet = {"show_progress": "hidden", "api_visibility": ui_visibility, "trigger_mode": "always_last"}
    fast, slow = lane_options(FAST), lane_options(SLOW)
    w = Wiring(page, fast, slow, {**quiet, **fast}, {**quiet, "queue": False})
    for wire in (
        wire_analyses,
        wire_sidebar,
        wire_compare,
        wire_tabs,
        wire_analysis_tabs,
        wire_evaluate,
        wire_export,
        wire_api,
        wire_segmentation,
        wire_links,
        wire_controls,  # last: with the browser steps the others registered (Wiring.in_browser_with_update)
    ):
        wire(w)
