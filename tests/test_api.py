"""``/explain`` (app/api.py): its parameters are declared on their own, in a frozen order, and only appended to."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from gradio_client import Client, handle_file

import cam_core
from app import (
    api,
)
from app.inputs import CONTROL_FIELDS, DEFAULT_RESOLUTION, Controls
from tests.helpers import call

FROZEN = ("image", "model", "class_name", "theta_mas", "theta_pas", "percentile", "tap", "nwc", "pas",
          "input_size", "output_stride", "method")  # fmt: skip
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
    assert (defaults["input_size"], defaults["output_stride"], defaults["method"]) == (448, 16, "cam")
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
    resolution = [components[i]["props"]["value"] for i in endpoint["inputs"][-3:]]
    assert resolution == [448, 16, "cam"]  # the defaults an old 9-value call gets


EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


CAT = str(EXAMPLES / "cat.jpg")


CONTROLS = (0.2, 0.35, 90, False, True, True)  # theta_mas, theta_pas, percentile, tap, nwc, pas


def test_explain_api_function() -> None:
    result = api.explain({"path": CAT}, cam_core.DEFAULT_MODEL, "", *CONTROLS)
    assert result.payload["class"]["name"] == "Egyptian cat"
    assert Path(result.plain_png).is_file() and Path(result.ours_png).is_file()
    with pytest.raises(gr.Error, match="Unknown model"):
        api.explain({"path": CAT}, "alexnet9000")


def test_only_explain_is_public(client: Client) -> None:
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/explain"}
    assert not api["unnamed_endpoints"]
    parameters = api["named_endpoints"]["/explain"]["parameters"]
    names = [p["parameter_name"] for p in parameters]
    assert names == ["image", "model", "class_name", "theta_mas", "theta_pas", "percentile", "tap", "nwc", "pas",
                     "input_size", "output_stride", "method"]  # fmt: skip
    defaults = {p["parameter_name"]: p.get("parameter_default") for p in parameters[-3:]}
    assert defaults == {"input_size": 448, "output_stride": 16, "method": "cam"}  # appended last: old calls work


def test_an_old_call_still_works_and_a_new_one_changes_the_map(client: Client) -> None:
    """Issue #13: a call written before ``input_size`` / ``output_stride`` existed gets the default 28 x 28 map;
    naming them (positionally or by keyword) gives the map asked for."""
    old = client.predict(handle_file(str(CAT)), "tf_efficientnet_lite0", "", 0.2, 0.35, 90, False, True, True,
                         api_name="/explain")[0]  # fmt: skip
    assert old["resolution"] == {"input_size": 448, "output_stride": 16, "feature_size": [28, 28],
                                 "label": "448 px, stride 16 -> 28x28 map"}  # fmt: skip
    positional = client.predict(handle_file(str(CAT)), "tf_efficientnet_lite0", "", 0.2, 0.35, 90, False, True, True,
                                224, 32, api_name="/explain")[0]  # fmt: skip
    assert positional["resolution"]["feature_size"] == [7, 7] and positional["resolution"]["input_size"] == 224
    keyword = client.predict(handle_file(str(CAT)), input_size=336, output_stride=16, api_name="/explain")[0]
    assert keyword["resolution"]["label"] == "336 px, stride 16 -> 21x21 map"
    assert old["image_size"] == positional["image_size"] == keyword["image_size"]  # boxes stay in the photo's pixels
    with pytest.raises(Exception, match="output_stride"):
        client.predict(handle_file(str(CAT)), input_size=448, output_stride=8, api_name="/explain")


def test_explain_end_to_end(client: Client) -> None:
    payload, plain, ours = client.predict(handle_file(str(CAT)), api_name="/explain")
    assert payload["class"]["name"] == "Egyptian cat"
    assert payload["image_size"] == {"height": 300, "width": 451}
    assert Path(plain).is_file() and Path(ours).is_file()
    tight = client.predict(handle_file(str(CAT)), "tf_efficientnet_lite0", "", 0.7, api_name="/explain")[0]
    assert tight["plain"]["foreground_fraction"] < payload["plain"]["foreground_fraction"]
    assert tight["ours"]["box"] == payload["ours"]["box"]


def test_bad_input_gets_the_message_not_a_stack_trace(client: Client, tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"hello, I am text")
    with pytest.raises(Exception, match="not an image format"):
        client.predict(handle_file(str(fake)), api_name="/explain")
    with pytest.raises(Exception, match="percentile"):
        client.predict(handle_file(str(CAT)), "tf_efficientnet_lite0", "", 0.2, 0.35, 0.0, api_name="/explain")
    assert client.predict(handle_file(str(CAT)), api_name="/explain")[0]["class"]["index"] == 285  # still serving


def test_method_is_appended_last_and_old_raw_calls_get_plain_cam(http: Any) -> None:
    """Issue #25: ``method`` is the 12th parameter. An 11-value call (from before it) still gets plain CAM; naming
    Grad-CAM thresholds its map on both panels and reports its identity with CAM measured on the photo; a method
    that is not in the menu is refused with a message naming the parameter."""
    (path,) = http.post("/gradio_api/upload", files={"files": ("cat.jpg", Path(CAT).read_bytes())}).json()
    photo = {"path": path, "meta": {"_type": "gradio.FileData"}}
    old = [photo, "tf_efficientnet_lite0", "", 0.2, 0.35, 90, False, True, True, 448, 16]
    kind, (payload, *_) = call(http, "explain", old)
    assert kind == "complete" and payload["method"]["name"] == "cam" and payload["ours"]["method"] == "cam"
    kind, (grad, *_) = call(http, "explain", [*old, "gradcam"])
    assert kind == "complete"
    assert grad["method"]["label"] == "Grad-CAM" and grad["plain"]["method"] == grad["ours"]["method"] == "gradcam"
    assert grad["method"]["identity"]["equals_on_a_gap_linear_head"] == "ReLU(CAM) / (h w)"
    assert grad["method"]["identity"]["max_relative_gap"] < 1e-4  # the default model's head is GAP + linear
    assert grad["class"] == payload["class"]  # same forward pass, same prediction
    kind, (layer, *_) = call(http, "explain", [*old, "layercam"])
    assert kind == "complete" and layer["method"]["nwc_defined"] is False and layer["ours"]["modules"] == ["PaS"]
    for hostile in ("scorecam", "../cam", None, 3, {"path": "/etc/passwd"}):
        kind, message = call(http, "explain", [*old, hostile])
        assert kind == "error" and "`method` must be one of" in str(message), hostile
