"""Deep links (app/link/deeplink.py, issue #14 item 6): a query restored on load, the steps after a linked photo,
the page's tabs and targets, a hostile query."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import pytest
from gradio.utils import get_upload_folder
from PIL import Image

import cam_core
from app import analyses, inputs
from app.events import Events
from app.inputs import EXAMPLES, OPENING_EXAMPLE
from app.link import deeplink
from app.link.deeplink import PLAIN_KEYS, Pending, after_photo, apply_linked_controls, restore
from app.link.query import LINK_KEYS, parse_query
from app.page import TAB_IDS, build_page
from app.tabs import weights

SKIP = gr.skip()


CONTROL = {key: i for i, key in enumerate(deeplink.CONTROL_KEYS)}


def pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


def test_restore_with_an_example_sets_the_photo_now_and_the_rest_after_it() -> None:
    query = "example=coins.jpg&class=281&theta_mas=0.6&nwc=false&tab=weights&model=tf_efficientnet_lite0"
    restored = restore(pairs(query), TAB_IDS, cam_core.DEFAULT_MODEL)
    assert Path(restored.image).read_bytes() == (EXAMPLES / "coins.jpg").read_bytes()
    assert Path(restored.image).resolve().is_relative_to(Path(get_upload_folder()).resolve())  # a page may show it
    assert restored.model == "tf_efficientnet_lite0"
    assert restored.tab_id == weights.ID == "weights" and restored.open_tab == weights.ID
    assert restored.link_pending == Pending({"class": 281, "theta_mas": 0.6, "nwc": False})
    assert restored.controls[CONTROL["theta_mas"]] == SKIP and restored.link_notice == SKIP
    assert restored.controls[CONTROL["tap"]]["interactive"] is True  # the linked model's TAP availability
    assert restored.controls[-1] == SKIP  # the preset waits with the thresholds


def test_restore_without_an_example_sets_the_controls_at_once() -> None:
    restored = restore(pairs("theta_mas=0.6&tap=true&class=281"), TAB_IDS, cam_core.DEFAULT_MODEL)
    assert restored.link_pending == SKIP and restored.tab_id == SKIP  # the controls at once, on the opening photo
    assert Path(restored.image).read_bytes() == (EXAMPLES / OPENING_EXAMPLE).read_bytes()
    assert restored.controls[CONTROL["theta_mas"]] == 0.6 and restored.controls[-1] == "custom"
    toggle = deeplink.tap_toggle(cam_core.DEFAULT_MODEL, deeplink.DEFAULT_AT)
    assert restored.controls[CONTROL["tap"]] == gr.update(**{**toggle, "value": True})
    assert restored.link_notice["visible"] is True
    assert (
        "`class` ignored: it needs an `example` photo (uploaded photos are not linkable)"
        in restored.link_notice["value"]
    )
    empty = restore([], TAB_IDS, cam_core.DEFAULT_MODEL)
    assert Path(empty.image).read_bytes() == (EXAMPLES / OPENING_EXAMPLE).read_bytes()  # never a blank page
    assert all(value == SKIP for value in (*empty[1:-1], *empty.controls))  # and nothing else


def test_the_resolution_is_linked_as_explains_input_size_and_output_stride() -> None:
    """Issue #13 x #14: the pair sets the Resolution menu at once (before the photo's forward pass); one key alone
    keeps the default's other half; a pair the menu does not offer, or a value outside it, is said and dropped."""
    assert parse_query(pairs("input_size=336&output_stride=16")).values == {"input_size": 336, "output_stride": 16}
    restored = restore(pairs("example=cat.jpg&input_size=224&output_stride=32"), TAB_IDS, cam_core.DEFAULT_MODEL)
    assert restored.resolution == "224/32" and restored.controls[-1] == "custom"  # not the default preset's
    assert restore(pairs("input_size=512"), TAB_IDS, cam_core.DEFAULT_MODEL).resolution == "512/16"
    unoffered = restore(pairs("input_size=224&output_stride=16"), TAB_IDS, cam_core.DEFAULT_MODEL)
    assert unoffered.resolution == SKIP
    assert (
        "`input_size=224&output_stride=16` ignored: `input_size` 224 with `output_stride` 16 is not offered"
        in (unoffered.link_notice["value"])
    )
    for query, message in [("input_size=1000", "`input_size` must be one of [224, 336, 448, 512], got '1000'"),
                           ("output_stride=8", "`output_stride` must be one of [16, 32], got '8'"),
                           ("input_size=%EF%BC%94%EF%BC%94%EF%BC%98", "`input_size` must be one of")]:  # fmt: skip
        state = parse_query(pairs(query))
        assert state.values == {} and message in state.notices[0], (query, state.notices)
    default = restore(pairs("input_size=448&output_stride=16"), TAB_IDS, cam_core.DEFAULT_MODEL)
    assert default.resolution == "448/16" and default.controls[-1] == SKIP


@pytest.mark.parametrize(("model", "linked"), [("resnet50", True), ("lite0_tap_head", False)])
def test_a_tap_value_the_model_forbids_is_said(model: str, linked: bool) -> None:
    """resnet50 has no TAP-trained partner (TAP locked off); lite0_tap_head is TAP-trained (locked on)."""
    notices: list[str] = []
    update = deeplink.tap_update(model, linked, notices, deeplink.DEFAULT_AT)
    assert update["value"] is (not linked) and update["interactive"] is False
    assert notices == [
        f"`tap={str(linked).lower()}` ignored: {deeplink.tap_toggle(model, deeplink.DEFAULT_AT)['info']}"
    ]
    free = deeplink.tap_update(cam_core.DEFAULT_MODEL, True, notices, deeplink.DEFAULT_AT)  # a TAP partner: as linked
    assert free["value"] is True and free["interactive"] is True and len(notices) == 1


def test_after_photo_applies_the_class_then_the_controls(cat_session: Any) -> None:
    out = after_photo(Pending({"class": 281, "theta_mas": 0.6, "nwc": False}), cat_session)
    class_pick, tap, waiting, example, notice = out
    assert class_pick["value"] == "281" and ("tabby (4.4 %)", "281") in class_pick["choices"]  # 448 / 16, calibrated
    assert tap == SKIP and example == "cat.jpg" and notice == SKIP
    assert waiting == Pending({"theta_mas": 0.6, "nwc": False})  # the second step's, once the class is on the page
    cleared, *controls, preset = apply_linked_controls(waiting)
    assert cleared is None and dict(zip(PLAIN_KEYS, controls, strict=True)) == {
        "theta_mas": 0.6, "theta_pas": SKIP, "percentile": SKIP, "nwc": False, "pas": SKIP, "method": SKIP}  # fmt: skip
    assert preset == "custom" and "tap" not in PLAIN_KEYS
    assert apply_linked_controls(None) == (SKIP,) * (len(PLAIN_KEYS) + 2)  # nothing waited: nothing set
    with_tap = after_photo(Pending({"class": 281, "tap": True}), cat_session)
    assert with_tap[1]["value"] is True and with_tap[2] is None  # the toggle with the class; nothing left waiting
    by_name = after_photo(Pending({"class": "tabby"}), cat_session)
    assert by_name[0]["value"] == "281" and by_name[2] is None
    unknown = after_photo(Pending({"class": "unicorn"}), cat_session)
    assert unknown[0] == SKIP and "`class` ignored: Unknown class 'unicorn'" in unknown[4]["value"]
    out_of_range = after_photo(Pending({"class": 5000}), cat_session)
    assert out_of_range[0] == SKIP and "`class` ignored" in out_of_range[4]["value"]
    idle = after_photo(None, cat_session)
    assert idle[3] == "cat.jpg" and all(value == SKIP for i, value in enumerate(idle) if i != 3)
    assert after_photo(Pending({"class": 281}), None)[4]["value"].endswith("the linked example could not be shown.")


def test_an_upload_is_never_named_as_an_example(uploads: Path) -> None:
    for name in inputs.EXAMPLE_FILES:
        session = analyses.on_image({"path": str(EXAMPLES / name)}, cam_core.DEFAULT_MODEL)[0]
        assert deeplink.example_name(session) == name
    edited = uploads / "cat.jpg"  # the same name, other pixels: an upload, not the example
    Image.open(EXAMPLES / "cat.jpg").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(edited)
    session = analyses.on_image({"path": str(edited)}, cam_core.DEFAULT_MODEL)[0]
    assert deeplink.example_name(session) == "" and deeplink.example_name(None) == ""


def test_every_linked_tab_and_target_is_on_the_page(demo: Any) -> None:
    config = demo.get_config_file()
    ids = [c["props"].get("id") for c in config["components"] if c["type"] == "tabitem"]
    assert ids == list(TAB_IDS) and TAB_IDS[0] == "compare"  # links name tabs by these ids
    with gr.Blocks():
        page = build_page()
    events = Events.for_page("private")
    for area in page.areas():
        events.share(area.shares())
    targets = deeplink.link_targets(events.named)
    assert {spec.target for spec in LINK_KEYS.values() if spec.target} <= set(targets)


HOSTILE = [
    "theta_mas=abc&nwc=maybe&example=..%2F..%2Fetc%2Fpasswd",
    "model=%00&class=%3Cscript%3Ealert(1)%3C%2Fscript%3E&tab=%F0%9F%92%A3",
    "percentile=1e999&theta_pas=-0&" + "&".join(f"k{i}=v" for i in range(200)),
    "example=" + "a" * 20_000,
]


@pytest.mark.parametrize("query", HOSTILE)
def test_the_page_with_a_hostile_query_still_loads(demo: Any, query: str) -> None:
    with httpx.Client(base_url=demo.local_url, timeout=60) as client:
        page = client.get(f"/?{query}")
        assert page.status_code == 200 and "<html" in page.text.lower()
        config = demo.get_config_file()
        load = next(i for i, d in enumerate(config["dependencies"]) if [t[1] for t in d["targets"]] == ["load"])
        body = {"data": [], "fn_index": load, "session_hash": os.urandom(8).hex()}
        restored = client.post(f"/gradio_api/run/predict?{query}", json=body)  # what the page's load event sends
        assert restored.status_code == 200, restored.text[:300]
        notice = restored.json()["data"][deeplink.Restored._fields.index("link_notice")]["value"]
        assert notice.startswith("⚠️ **Link:**") and "Internal error" not in notice and len(notice) < 2000
