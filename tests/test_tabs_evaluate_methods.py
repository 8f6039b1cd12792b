"""Issue #25 item 5 (the app's half): the Evaluate tab scores the CAM-family methods ticked in its checkbox group,
under the same rules as plain CAM, in the same table and JSON as ``python -m cam_core.evaluate --methods``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import pytest
from PIL import Image

import cam_core
from app.models import Resolution
from app.state import get_model
from app.tabs import evaluate as ev
from cam_core.datasets import read_boxes_csv
from cam_core.evaluate import default_configs, evaluate
from tests.helpers import queue_join, shots

MODEL = cam_core.DEFAULT_MODEL
QUIET = {"progress": lambda *a, **k: None}
PLAIN = ["cam", "pas", "nwc", "nwc+pas"]


@pytest.fixture(scope="module")
def ticked() -> tuple[str, dict[str, Any]]:
    """The bundled examples at 224/32 with LayerCAM and Grad-CAM ticked (in that order: the menu's order wins)."""
    table, _, gallery, payload = ev.run_examples(MODEL, "224/32", ["layercam", "gradcam"], **QUIET)
    assert len(gallery) == 3  # the gallery stays plain CAM vs NWC+PaS
    return table, payload


def test_ticked_methods_add_their_rows_with_the_libraries_values(ticked: tuple[str, dict[str, Any]]) -> None:
    table, payload = ticked
    family = ["gradcam", "gradcam+pas", "gradcam+nwc", "gradcam+nwc+pas", "layercam", "layercam+pas"]
    assert list(payload["configs"]) == PLAIN + family  # plain CAM first; no LayerCAM + NWC (undefined)
    at = Resolution(224, 32)
    loaded = cam_core.with_input_size(get_model(MODEL, at.output_stride), at.input_size)
    samples = read_boxes_csv(ev.EXAMPLES / "boxes.csv", ev.EXAMPLES)
    direct = evaluate(loaded, samples, default_configs(loaded.pooling, methods=("cam", "gradcam", "layercam")))
    assert payload["configs"] == direct.to_dict()["configs"]  # the CLI's evaluation, value for value
    assert payload["configs"]["gradcam"]["settings"]["method"] == "gradcam"
    for name in family:  # one row per config, grouped: the method named on its first row only
        assert f"| {name} | " in table
    assert table.count("| **Grad-CAM** | gradcam |") == 1 and table.count("| **LayerCAM** | layercam |") == 1
    assert "| **CAM** | cam |" in table and "|  | pas |" in table and "|  | gradcam+pas |" in table


def test_the_curves_keep_one_colour_per_rule_and_put_the_legend_beside_them() -> None:
    """With family rows (16 curves at most) the legend leaves the axes: the picture is wider than plain CAM's."""
    _, plain_curves, _, _ = ev.run_examples(MODEL, "224/32", [], **QUIET)
    _, curves, _, _ = ev.run_examples(MODEL, "224/32", ["gradcam", "xgradcam"], **QUIET)
    assert Image.open(curves).size[0] > 1.2 * Image.open(plain_curves).size[0]


def test_the_identities_are_said_and_hold_in_the_rows(ticked: tuple[str, dict[str, Any]]) -> None:
    """On the default GAP model LayerCAM and Grad-CAM + NWC are NWC CAM (docs/methods.md): equal rows, said so."""
    table, payload = ticked
    metrics = {name: {k: v for k, v in row.items() if k != "settings"} for name, row in payload["configs"].items()}
    same = lambda a, b: metrics[a] == metrics[b]  # noqa: E731
    assert same("layercam", "nwc") and same("layercam+pas", "nwc+pas") and same("gradcam+nwc", "nwc")
    assert "Grad-CAM = ReLU(CAM) / (h w)" in table and "LayerCAM = ReLU(NWC CAM) / (h w)" in table
    assert "**Equal rows are expected.**" in table and "Grad-CAM++" not in table


def test_on_the_tap_head_the_table_says_which_identity_is_left() -> None:
    """The shipped TAP checkpoint: plain rows named ``tap...``, XGrad-CAM no longer equal to Grad-CAM (said so)."""
    table, _, _, payload = ev.run_examples("lite0_tap_head", "224/32", ["gradcam", "xgradcam"], **QUIET)
    assert list(payload["configs"])[:4] == ["tap", "tap+pas", "tap+nwc", "tap+nwc+pas"]
    assert "| **CAM** | tap |" in table and "| **XGrad-CAM** | xgradcam |" in table
    assert "**This head is TAP, not GAP:**" in table and "On a GAP + linear head" not in table


def test_no_method_ticked_is_the_old_table() -> None:
    table, _, _, payload = ev.run_examples(MODEL, "224/32", [], **QUIET)
    assert list(payload["configs"]) == PLAIN and "Equal rows" not in table
    assert list(ev.run_examples(MODEL, "224/32", None, **QUIET)[3]["configs"]) == PLAIN  # an old client's call


def test_gradcampp_says_it_has_no_identity() -> None:
    said = ev.texts.evaluate_identities([], ["Grad-CAM++"])
    assert said == "**Equal rows are expected.** Grad-CAM++: no identity with CAM (its alpha weighs each pixel by " \
        "its channel's activation)."  # fmt: skip
    assert "TAP, not GAP" in ev.texts.evaluate_identities([("XGrad-CAM", "ReLU(CAM) / (h w)")], [], gap=False)


HOSTILE = [
    "gradcam",  # a text, not a list
    ["gradcam", "gradcam"],  # twice
    ["gradcam", "gradcampp", "xgradcam", "layercam", "gradcam"],  # five
    ["gradcam"] * 10_000,
    ["cam"],  # plain CAM is always scored: not a choice
    ["GradCAM"],
    ["Grad-CAM"],  # the label, not the value
    [1],
    [None],
    [["gradcam"]],
    {"gradcam": True},
    5,
    True,
]


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[:30])
def test_hostile_methods_are_refused_before_any_work(value: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ev, "read_boxes_csv", lambda *a: pytest.fail("a photo was read before `methods` was checked"))
    with pytest.raises(gr.Error, match="`methods` "):
        ev.run_examples(MODEL, "224/32", value, **QUIET)


@pytest.mark.slow
def test_hostile_methods_over_raw_http(demo: Any, http: httpx.Client) -> None:
    """The events are private to the page's API view, not to HTTP: the same refusals reach a raw client, and a
    good value works there too (both Evaluate buttons)."""
    for value in ("gradcam", 5, ["gradcam", "gradcam"], ["cam"], {"a": 1}):
        said = queue_join(http, demo, "run_examples", [MODEL, "224/32", value])
        assert "`methods` " in str(said.get("error")), said
    said = queue_join(http, demo, "run_evaluation", [None, None, None, MODEL, "224/32", ["nope"]])
    assert "`methods` must hold only values of" in str(said.get("error")), said
    good = queue_join(http, demo, "run_examples", [MODEL, "224/32", ["xgradcam"]])
    assert list(good["data"][3]["configs"])[4:] == ["xgradcam", "xgradcam+pas", "xgradcam+nwc", "xgradcam+nwc+pas"]


def _upload(http: httpx.Client, name: str, content: bytes) -> dict[str, Any]:
    """``POST /upload`` of one file; the FileData the page then sends."""
    response = http.post("/gradio_api/upload", files={"files": (name, content)})
    response.raise_for_status()
    return {"path": response.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}


@pytest.mark.slow
def test_an_uploaded_set_with_a_method_over_raw_http(demo: Any, http: httpx.Client) -> None:
    """The uploaded set's event takes raw values (``preprocess=False``): the page's FileData lists still work."""
    photo = _upload(http, "cat.jpg", (ev.EXAMPLES / "cat.jpg").read_bytes())
    csv = _upload(http, "boxes.csv", b"filename,class_index,x0,y0,x1,y1\ncat.jpg,285,20,0,450,299\n")
    said = queue_join(http, demo, "run_evaluation", [[photo], csv, None, MODEL, "224/32", ["gradcampp"]])
    assert "data" in said, said
    payload = said["data"][3]
    assert payload["n_images"] == 1 and list(payload["configs"]) == [*PLAIN, "gradcampp", "gradcampp+pas"]
    assert "Grad-CAM++: no identity with CAM" in said["data"][0]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize(
    "size", [{"width": 1440, "height": 1000}, {"width": 390, "height": 844}], ids=["wide", "phone"]
)
def test_two_methods_ticked_in_the_browser(open_page: Any, size: dict[str, int], tmp_path: Path) -> None:
    """Tick Grad-CAM and LayerCAM, evaluate the bundled examples: their rows and the identity line appear."""
    page = open_page(viewport=size, wait_opening=False)
    page.get_by_role("tab", name="Evaluate").click()
    for label in ("Grad-CAM", "LayerCAM"):
        page.locator("#eval-methods").get_by_label(label, exact=True).check()
    page.get_by_role("button", name="Evaluate the bundled examples").click()
    page.wait_for_function("document.querySelector('#eval-table').innerText.includes('layercam+pas')", timeout=240_000)
    text = page.locator("#eval-table").inner_text()
    assert "gradcam+nwc+pas" in text and "Equal rows are expected" in text and "xgradcam" not in text
    folder = shots(tmp_path)
    page.screenshot(path=str(folder / f"evaluate_methods_{size['width']}.png"), full_page=True)
    page.locator("#eval-methods").scroll_into_view_if_needed()
    page.screenshot(path=str(folder / f"evaluate_methods_{size['width']}_view.png"))
    cell = page.locator("#eval-table td", has_text="gradcam+nwc+pas")  # one line: the phone's table scrolls sideways
    line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#eval-table td')).lineHeight)")
    assert cell.bounding_box()["height"] < 3 * line
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]  # the table scrolls, not the page
    assert page.locator("#eval-gallery img").count() == 3
