"""What ``bench.bench_hostile`` attacks: the page's events, read from the app's own ``/config``, and the worst input
of each, built from its components' types.

Nothing here names an event: :func:`discover` lists every dependency of the config (an event added later is
attacked without editing the harness) and :func:`worst_inputs` fills each input from its component's type and
props (the largest accepted photo, every slider at its costliest end, every toggle on, the most classes a
multi-select takes, a hub model from the model menu, the largest resolution). The few rules that read a label
(:data:`MINIMUM_IS_WORST`, :data:`TEXT_WORST`) are data, in one place.

The files (made at run time in a temporary folder, never committed): :func:`make_photos` writes the largest
accepted photo (a 12000 x 12000 PNG of the bundled cat, upscaled: 0.85 MB), the Evaluate photos (4000 x 4000) with
their boxes CSV, and small distinct photos for the victim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

CAT = Path(__file__).resolve().parent.parent / "assets" / "examples" / "cat.jpg"
MULTISELECT_MAX = 20
"""Values a multi-select is sent at most: the most this app's pickers accept (``app.label_maps.MAX_PICKED``)."""
MINIMUM_IS_WORST = ("floor",)
"""Sliders (by label) whose costly end is the minimum (a lower probability floor keeps more classes)."""
TEXT_WORST = {"ground-truth boxes": "; ".join(f"{i}, {i}, {i + 9}, {i + 9}" for i in range(20))}
"""Texts (by label prefix, lower case) with a costlier value than their default: the most boxes the field takes."""
SELECT_EVENT = {"index": 0, "value": None, "selected": True}
"""The ``event_data`` sent with a ``select`` trigger (a tab or a list item picked)."""


@dataclass(frozen=True)
class Component:
    """One component of the page, as the config describes it."""

    id: int
    type: str
    props: dict[str, Any]

    @property
    def label(self) -> str:
        """Its label (or elem_id), ``""`` when it has none."""
        return str(self.props.get("label") or self.props.get("elem_id") or "")


@dataclass(frozen=True)
class Event:
    """One dependency of the config that runs on the server.

    Attributes:
        makes_session: one of its outputs is a ``gr.State`` (it starts a session's photo, e.g. the upload event).
    """

    fn_index: int
    name: str
    queued: bool
    trigger: str
    inputs: tuple[Component, ...]
    outputs: tuple[int, ...]
    makes_session: bool = False
    trigger_id: int | None = None

    @property
    def needs_session(self) -> bool:
        """Whether it reads a ``gr.State`` (the session's photo): it runs after a photo event in its session."""
        return any(c.type == "state" for c in self.inputs)

    @property
    def is_photo_event(self) -> bool:
        """A new photo: an image input, no state read, a state written (the page's upload event)."""
        return any(c.type == "image" for c in self.inputs) and not self.needs_session and self.makes_session


@dataclass
class Discovery:
    """Every dependency of the config: those attacked, and those skipped with the reason."""

    events: list[Event] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    total: int = 0


def discover(config: dict[str, Any]) -> Discovery:
    """Each dependency of a Gradio config (``GET /config``) as an :class:`Event`, or skipped with a reason.

    Only a dependency without a server function (a browser-only ``js`` step) is skipped: it costs the server
    nothing. Private events are attacked too (the page calls them by ``fn_index``; so can anyone).
    """
    components = {c["id"]: Component(c["id"], c.get("type", ""), c.get("props", {})) for c in config["components"]}
    found = Discovery(total=len(config["dependencies"]))
    for index, dep in enumerate(config["dependencies"]):
        fn_index = dep.get("id", index)
        if not dep.get("backend_fn", True):
            found.skipped[fn_index] = "no server function (a browser-only js step)"
            continue
        inputs = tuple(components[i] for i in dep.get("inputs", []) if i in components)
        outputs = tuple(dep.get("outputs", []))
        states = any(components[i].type == "state" for i in outputs if i in components)
        targets = dep.get("targets") or [[None, "load"]]
        name = str(dep.get("api_name") or f"fn_{fn_index}")
        queued = bool(dep.get("queue", True))
        found.events.append(Event(fn_index, name, queued, str(targets[0][1]), inputs, outputs, states, targets[0][0]))
    return found


@dataclass
class Arsenal:
    """The files and what the attacker learnt: uploaded payloads, and each component's latest choices."""

    big_photo: dict[str, Any] | None = None
    eval_photos: list[dict[str, Any]] = field(default_factory=list)
    boxes_csv: dict[str, Any] | None = None
    choices: dict[int, list[Any]] = field(default_factory=dict)
    values: dict[int, Any] = field(default_factory=dict)

    def learn(self, event: Event, output: list[Any]) -> None:
        """Remember the choices and values an event's output sets (``gr.update(choices=..., value=...)``), e.g. a
        photo's top classes and the class picked."""
        for component_id, value in zip(event.outputs, output, strict=False):
            if not isinstance(value, dict) or value.get("__type__") != "update":
                continue
            if isinstance(value.get("choices"), list) and value["choices"]:
                self.choices[component_id] = [_choice_value(c) for c in value["choices"]]
            if "value" in value and not isinstance(value["value"], dict):
                self.values[component_id] = value["value"]


def _choice_value(choice: Any) -> Any:
    return choice[1] if isinstance(choice, list | tuple) and len(choice) == 2 else choice


def worst_inputs(
    event: Event, arsenal: Arsenal, components: list[Component], download: bool = False
) -> tuple[list[Any], Any]:
    """The costliest input of ``event`` by its components' types; and its ``event_data`` (for a select).

    A menu choice that downloads (a hub model) is picked only with ``download``: otherwise the event's own work
    would wait behind a load that never ends (the load is attacked apart, see :func:`loads_a_download`).
    """
    values = [worst_value(c, arsenal, components, download) for c in event.inputs]
    return values, (SELECT_EVENT if event.trigger == "select" else None)


def loads_a_download(event: Event, components: list[Component]) -> bool:
    """Whether ``event`` is triggered by a menu with a choice that downloads (the model menu: a hub model)."""
    trigger = next((c for c in components if c.id == event.trigger_id), None)
    return trigger is not None and bool(_downloads(trigger))


def _downloads(component: Component) -> list[Any]:
    labels = [_choice_label(c) for c in component.props.get("choices") or []]
    return [value for label, value in labels if "download" in str(label).lower()]


def worst_value(component: Component, arsenal: Arsenal, components: list[Component], download: bool = False) -> Any:
    """The costliest value one component accepts (see the module docstring)."""
    kind, props = component.type, component.props
    choices = arsenal.choices.get(component.id) or [_choice_value(c) for c in props.get("choices") or []]
    if kind == "image":
        return arsenal.big_photo
    if kind == "file":
        if props.get("file_count") in ("multiple", "directory"):
            return arsenal.eval_photos
        return arsenal.boxes_csv if ".csv" in (props.get("file_types") or []) else arsenal.big_photo
    if kind == "slider":
        low = any(word in component.label.lower() for word in MINIMUM_IS_WORST)
        return props.get("minimum" if low else "maximum")
    if kind == "checkbox":
        return True
    if kind == "checkboxgroup":  # every box ticked: Evaluate's CAM-family methods each add their own work
        return choices
    if kind == "dropdown" and props.get("multiselect"):  # only choices the session was offered pass Gradio's check
        return choices[: int(props.get("max_choices") or MULTISELECT_MAX)]
    if kind in ("dropdown", "radio"):
        if not download and _downloads(component):
            return props.get("value")  # the offline default; the download is attacked apart
        return _worst_choice(component, choices)
    if kind == "number":
        return _resolution_part(component, components, props.get("value"))
    if kind == "textbox":
        label = component.label.lower()
        return next((text for prefix, text in TEXT_WORST.items() if label.startswith(prefix)), props.get("value") or "")
    if kind == "dataset":
        return 0
    return None if kind == "state" else props.get("value")


_PAIR = re.compile(r"^(\d+)/(\d+)$")


def _worst_choice(component: Component, choices: list[Any]) -> Any:
    """A menu's costliest choice: a model that downloads (a hub model), the largest map of ``N/S`` resolutions,
    else the last choice (menus grow in cost), else its value."""
    downloads = _downloads(component)
    if downloads:
        return downloads[0]
    pairs = [(int(m[1]) / int(m[2]), v) for v in choices if isinstance(v, str) and (m := _PAIR.match(v))]
    if pairs and len(pairs) == len(choices):
        return max(pairs)[1]
    return choices[-1] if choices else component.props.get("value")


def _choice_label(choice: Any) -> tuple[Any, Any]:
    return (choice[0], choice[1]) if isinstance(choice, list | tuple) and len(choice) == 2 else (choice, choice)


def _resolution_part(component: Component, components: list[Component], default: Any) -> Any:
    """``input_size`` / ``output_stride`` numbers: the parts of the worst ``N/S`` resolution on the page."""
    label = component.label.lower()
    if "input_size" not in label and "output_stride" not in label:
        return default
    menus = [
        _worst_choice(c, [_choice_value(x) for x in c.props.get("choices") or []])
        for c in components
        if c.type == "dropdown"
    ]
    worst = next((m for m in menus if isinstance(m, str) and _PAIR.match(m)), None)
    if worst is None:
        return default
    size, stride = worst.split("/")
    return int(size) if "input_size" in label else int(stride)


def make_photos(folder: Path, side: int, eval_side: int, eval_count: int, victims: int) -> dict[str, Any]:
    """Write the attack's files into ``folder``: the big photo, the Evaluate photos and CSV, the victim's photos.

    Returns ``{"big": Path, "eval": [Path], "csv": Path, "victim": [Path], "small": Path}``.
    """
    cat = cv2.imread(str(CAT))  # BGR, 300 x 451
    big = folder / f"big_{side}.png"
    cv2.imwrite(
        str(big), cv2.resize(cat, (side, side), interpolation=cv2.INTER_NEAREST), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
    one = cv2.resize(cat, (eval_side, eval_side), interpolation=cv2.INTER_NEAREST)
    ok, encoded = cv2.imencode(".png", one, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    eval_paths = []
    for i in range(eval_count):
        path = folder / f"eval_{i:03d}.png"
        path.write_bytes(encoded.tobytes())
        eval_paths.append(path)
    csv = folder / "boxes.csv"
    rows = [f"{p.name},285,0,0,{eval_side - 1},{eval_side - 1}" for p in eval_paths]
    csv.write_text("filename,class_index,x0,y0,x1,y1\n" + "\n".join(rows) + "\n")
    victim_paths = []
    for i in range(victims):  # distinct pixels: no cache serves the victim's analysis
        photo = cat.copy()
        photo[i % 300, (7 * i) % 451] = (i % 256, 255 - i % 256, 17)
        path = folder / f"victim_{i:03d}.png"
        cv2.imwrite(str(path), photo)
        victim_paths.append(path)
    small = folder / "session.png"  # a session's display copy at its largest (512 px a side), decoded fast
    cv2.imwrite(str(small), cv2.resize(cat, (640, 640)))
    return {"big": big, "eval": eval_paths, "csv": csv, "victim": victim_paths, "small": small, "encoded": bool(ok)}


def ordinary_inputs(event: Event, arsenal: Arsenal) -> list[Any]:
    """An ordinary user's input: each component's value as the session last set it, else its default."""
    return [None if c.type == "state" else arsenal.values.get(c.id, c.props.get("value")) for c in event.inputs]


def photo_of(values: list[Any], event: Event, photo: dict[str, Any]) -> list[Any]:
    """``values`` with ``photo`` as the event's image input."""
    return [photo if c.type == "image" else v for c, v in zip(event.inputs, values, strict=True)]


def slider_event(events: list[Event], components: list[Component]) -> tuple[Event, Component, int] | None:
    """The victim's slider: an unqueued event of a session triggered by a slider, the slider that most events read
    (the page's main control); returns the event, the slider and its position among the event's inputs."""
    sliders = {c.id: c for c in components if c.type == "slider"}
    used = {i: sum(any(c.id == i for c in e.inputs) for e in events) for i in sliders}
    moved = [e for e in events if not e.queued and e.needs_session and e.trigger_id in sliders]
    if not moved:
        return None
    event = max(moved, key=lambda e: used[e.trigger_id])  # type: ignore[index]
    slider = sliders[event.trigger_id]  # type: ignore[index]
    return event, slider, [c.id for c in event.inputs].index(slider.id)
