"""The left column: photo and examples, model and resolution menus, class picker and search, ground-truth boxes,
status line, and the deep link's row (:mod:`app.link.deeplink`).

A new photo, model or resolution is one forward pass each (fast lane, :mod:`app.analyses`), then the link's steps
and every view redrawn (:meth:`app.events.Events.render_all`); a class picked or searched, a ground truth typed or
cleared redraw the views from the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from unittest import mock

import gradio as gr
from gradio import component_meta
from gradio.components import Component

import cam_core
from app import analyses, inputs, views
from app.errors import user_errors
from app.events import Events
from app.explanation import resolve_class
from app.inputs import DEFAULT_RESOLUTION, EXAMPLE_FILES, EXAMPLES, MAX_GT_BOXES, resolution_choices, resolution_info
from app.link import deeplink
from app.link.deeplink import LinkRow
from app.model_loading import answering_at_once, build_load_watch, wire_model_loads
from app.models import model_choices
from app.state import Session, get_analysis

SHOW_RESULT_JS = """() => {
  const wanted = window.camShowResult === true;
  window.camShowResult = false;
  const result = document.querySelector('#tabs');
  if (!wanted || !result) return;
  const top = result.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight / 2) result.scrollIntoView({block: 'start'});
}"""
"""Browser-only, after a photo's panels are drawn: bring the tabs and their panels into view when the visitor chose
the photo (upload or example: :data:`WANT_RESULT_JS`) and they are out of sight (on a phone they sit ~2,600 px
below the upload). The photo a page opens on, or a deep link's, never scrolls the page."""
WANT_RESULT_JS = "() => { window.camShowResult = true; }"
"""Browser-only, on an upload or an example's click: the next drawn photo is brought into view."""

GT_APPLIED_JS = "(value) => { window.camGtApplied = value; }"
"""Browser-only, on Enter in the ground-truth field: the text the views now follow."""
GT_ON_BLUR_JS = """(value) => {
  if (value === (window.camGtApplied ?? "")) return;
  const field = document.querySelector('#gt-box textarea, #gt-box input');
  if (field) field.dispatchEvent(new KeyboardEvent('keypress', {key: 'Enter', bubbles: true, cancelable: true}));
}"""
"""Browser-only, on leaving the ground-truth field: a text typed since the last Enter is applied as Enter applies it
(Gradio's field submits on an Enter ``keypress``); an unchanged one sends nothing."""

EXAMPLES_LABEL = (  # in EXAMPLE_FILES' order, one label per photo
    "Examples, left to right: cat (fills the photo), espresso (large), rocket (small), "
    "coins (several objects), astronaut (no ImageNet class fits)"
)


@dataclass(frozen=True)
class Sidebar:
    """The left column: photo, model, resolution, class, ground truth, status, deep link."""

    image: gr.Image
    model: gr.Dropdown
    resolution: gr.Dropdown
    class_pick: gr.Radio
    class_search: gr.Dropdown
    status: gr.Markdown
    gt_box: gr.Textbox
    gt_clear: gr.Button
    gt_add: gr.Checkbox
    link: LinkRow
    examples: gr.Dataset

    def shares(self) -> dict[str, Component]:
        """By the names of the entrances (``class_choice``, ``gt_text``) and of the handlers' results."""
        return {"image": self.image, "model": self.model, "resolution": self.resolution, "status": self.status,
                "class_pick": self.class_pick, "class_choice": self.class_pick, "gt_text": self.gt_box}  # fmt: skip


with mock.patch.object(component_meta, "create_or_modify_pyi", lambda *_: None):  # no stub written into app/

    class ClassPicker(gr.Radio):
        """The class picker, drawn as Gradio's Radio: a value that is not among this session's choices fails the
        event quietly. Such a value comes from a request made for an earlier photo, such as the opening photo's
        redraws still in flight when a visitor uploads at once; Gradio's Radio answered it with a red toast
        ("Value: '285' ... is not in the list of choices") on a page that is fine, and the newer photo's own events
        draw it anyway.

        A subclass, not a patched instance: Gradio rebuilds a session's own picker with ``block.__class__(...)``
        whenever its choices change, so only the class carries the check to every session. Gradio's component
        metaclass writes a ``.pyi`` stub next to a subclass's module; that step is switched off while the class is
        made (it only serves editors of custom components)."""

        def get_block_name(self) -> str:
            """The browser draws it with Gradio's own Radio."""
            return "radio"

        def preprocess(self, payload: str | int | float | None) -> str | int | float | None:
            """``payload`` as ``gr.Radio`` gives it; a value outside the current choices fails quietly."""
            if payload is not None and payload not in [value for _, value in self.choices]:
                raise gr.Error(f"stale class {payload!r}: dropped", visible=False, print_exception=False)
            return super().preprocess(payload)


def build() -> Sidebar:
    """Photo upload with examples, model and resolution menus, class picker and search, ground-truth field,
    deep link."""
    image = gr.Image(label="Photo", sources=["upload", "clipboard", "webcam"], type="filepath", height=240)
    examples = gr.Examples([[str(EXAMPLES / name)] for name in EXAMPLE_FILES], inputs=[image], label=EXAMPLES_LABEL)
    model = gr.Dropdown(model_choices(), value=cam_core.DEFAULT_MODEL, label="Model")
    resolution = gr.Dropdown(
        resolution_choices(),
        value=DEFAULT_RESOLUTION.value,
        label="Resolution",
        info=resolution_info(),
        elem_id="resolution",
    )
    class_pick = ClassPicker([], label="Class: the model's top-5 (probability)", elem_id="class-pick")
    # all 1000 classes: fixed choices, never an event output (Gradio copies every output's props on each
    # status update, so a 1000-choice output would slow every slider move several-fold)
    class_search = gr.Dropdown(
        views.search_choices(),
        value=None,
        label="Any other ImageNet class (type to search)",
        filterable=True,
        elem_id="class-search",
    )
    status = gr.Markdown("Upload a photo or pick an example.", elem_id="status")
    gt_box = gr.Textbox(
        label=f"Ground-truth boxes (optional, up to {MAX_GT_BOXES}): drag on a photo, or type them",
        placeholder="x0, y0, x1, y1; x0, y0, x1, y1 (photo pixels)",
        info="A drag replaces the boxes; Shift+drag (or tick “add boxes”) adds one. IoU: the best-matching box.",
        elem_id="gt-box",
    )
    with gr.Row(equal_height=True):
        gt_add = gr.Checkbox(False, label="add boxes", info="drags add a box (touch screens)", elem_id="gt-add")
        gt_clear = gr.Button("Clear the ground-truth boxes", size="sm", variant="secondary")
    link = deeplink.build()
    return Sidebar(
        image, model, resolution, class_pick, class_search, status, gt_box, gt_clear, gt_add, link, examples.dataset
    )


@user_errors
def pick_class(choice: Any, session: Session | None) -> Any:
    """A class found with the search box: select it in the class picker (added after the top-5 if needed)."""
    session = inputs.need_session(session)
    analysis = get_analysis(session, session.model)
    index = resolve_class(choice, analysis)
    return gr.update(choices=views.class_choices(analysis, extra=index), value=str(index))


def wire_analyses(events: Events, side: Sidebar) -> None:
    """A new photo, model or resolution: one forward pass each (fast lane), then every view redrawn. A model still
    loading is said at once and the event runs again when it is ready (:mod:`app.model_loading`): the same event on
    both triggers (``gr.on``)."""
    named = events.named
    visibility = events.quiet["api_visibility"]
    loads = build_load_watch()
    side.image.change(None, None, side.gt_box, js="() => ''")  # browser-only: a new photo drops the old ground truth
    photo = gr.on(
        [side.image.change, loads.done["photo"].change],
        answering_at_once(analyses.on_photo, "photo", analyses.Photo),
        [side.image, side.model, side.resolution],
        [*events.outputs(analyses.Photo), *loads.outputs],
        preprocess=False,
        api_visibility=visibility,
        api_name="on_image",  # the name benchmarks and tests call it by
        **events.fast,
    )
    # a deep link's class and controls first; then the panels into view, when the visitor chose the photo
    events.render_all(deeplink.after_photo_step(events, side.link, photo), then_js=SHOW_RESULT_JS)
    side.image.upload(None, None, None, js=WANT_RESULT_JS)
    side.examples.click(None, None, None, js=WANT_RESULT_JS)
    # the user's pick only: a failed load puts the old value back without a new event
    events.render_all(gr.on(
        [side.model.input, loads.done["model"].change],
        answering_at_once(analyses.on_model, "model", analyses.ModelSwitch),
        [side.model, named["session"], side.resolution],
        [*events.outputs(analyses.ModelSwitch), *loads.outputs],
        api_visibility="private",
        api_name="on_model",
        trigger_mode="always_last",  # the last pick wins (the pick's own `.input` would drop one made meanwhile)
        **events.fast,
    ))  # fmt: skip
    # `.change`, not `.input`: a preset sets the resolution too; a failed change puts the old value back, whose
    # own change event then finds its analysis in the cache
    events.render_all(gr.on(
        [side.resolution.change, loads.done["resolution"].change],
        answering_at_once(analyses.on_resolution, "resolution", analyses.ResolutionSwitch),
        [side.resolution, side.class_pick, side.model, named["session"]],
        [*events.outputs(analyses.ResolutionSwitch), *loads.outputs],
        api_visibility=visibility,
        api_name="on_resolution",
        **events.fast,
    ))  # fmt: skip
    wire_model_loads(events, loads)


def wire(events: Events, side: Sidebar) -> None:
    """The analyses (:func:`wire_analyses`); a class picked or searched, a typed or cleared ground truth, the preset
    left by hand."""
    wire_analyses(events, side)
    side.resolution.input(None, None, events.named["preset"], js="() => 'custom'")  # by hand: the preset is left
    update, inputs, outputs = events.render_now, events.view_inputs, events.view_outputs
    events.render_rest(events.instant_views(side.class_pick.input, update, inputs, outputs))
    searched = side.class_search.input(
        pick_class, [side.class_search, events.named["session"]], [side.class_pick], api_visibility="private",
        **events.fast,
    )  # fmt: skip
    events.render_all(searched)
    searched.then(None, None, [side.class_search], js="() => null")  # browser-only: emptied for the next search
    events.instant_views(side.gt_box.submit, update, inputs, outputs)
    # leaving the field applies a typed box as Enter does (issue #23); only a changed one: no redraw on every blur
    side.gt_box.submit(None, [side.gt_box], None, js=GT_APPLIED_JS)
    side.gt_box.blur(None, [side.gt_box], None, js=GT_ON_BLUR_JS)
    cleared = side.gt_clear.click(lambda: "", None, side.gt_box, queue=False, api_visibility="private")
    events.instant_views(cleared.success, update, inputs, outputs)
