"""``/explain`` (app/api.py): its parameters are declared on their own, in a frozen order, and only appended to."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from app import api
from app.inputs import CONTROL_FIELDS, DEFAULT_RESOLUTION, Controls

FROZEN = ("image", "model", "class_name", "theta_mas", "theta_pas", "percentile", "tap", "nwc", "pas",
          "input_size", "output_stride")  # fmt: skip
"""What positional callers (gradio_client, raw HTTP) send, in this order. A new parameter is appended here and in
``API_PARAMETERS``; never inserted, never derived from ``Controls``' fields (a seventh control would then land before
``input_size`` and shift every later value of an old call)."""


def test_the_declared_parameters_are_the_frozen_list() -> None:
    assert api.API_PARAMETERS == FROZEN


def test_explain_takes_the_declared_parameters_with_their_defaults() -> None:
    parameters = list(inspect.signature(api.explain).parameters.values())
    assert tuple(p.name for p in parameters) == api.API_PARAMETERS
    defaults = {p.name: p.default for p in parameters[3:]}
    assert [defaults[name] for name in CONTROL_FIELDS] == list(dataclasses.astuple(Controls()))
    assert (defaults["input_size"], defaults["output_stride"]) == (448, 16)
    assert (DEFAULT_RESOLUTION.input_size, DEFAULT_RESOLUTION.output_stride) == (448, 16)


def _parameter(component: dict[str, Any]) -> str:
    """The parameter a component of the page stands for, read from its type, elem_id or label."""
    props = component["props"]
    label, elem_id = props.get("label") or "", props.get("elem_id") or ""
    if component["type"] == "image" and label == "Photo":
        return "image"
    if component["type"] == "dropdown" and label == "Model":
        return "model"
    if label.startswith("class: index or name"):
        return "class_name"
    if label.endswith("(API input)"):
        return label.split()[0]
    return {name.replace("_", "-"): name for name in CONTROL_FIELDS}.get(elem_id, f"? {label!r}")


def test_the_endpoint_sends_the_declared_parameters_in_their_order(config: dict[str, Any]) -> None:
    components = {c["id"]: c for c in config["components"]}
    (endpoint,) = [dep for dep in config["dependencies"] if dep.get("api_name") == "explain"]
    assert tuple(_parameter(components[i]) for i in endpoint["inputs"]) == FROZEN
    resolution = [components[i]["props"]["value"] for i in endpoint["inputs"][-2:]]
    assert resolution == [448, 16]  # the defaults an old 9-value call gets
