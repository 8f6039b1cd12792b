"""Issue #14 item 5: several ground-truth boxes, scored as WSOL scores them (IoU with the best-matching box)."""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import gradio as gr
import httpx
import numpy as np
import pytest
from PIL import Image

import cam_core
from app import (
    explanation,
    inputs,
    render,
    views,
)
from app.errors import with_notice
from app.events import event
from app.inputs import MAX_GT_BOXES, parse_boxes
from app.state import Session
from app.tabs import compare, export
from cam_core.evaluate.metrics import Evaluator
from tests.helpers import ROOT, svg_boxes

CAT = ROOT / "assets" / "examples" / "cat.jpg"


SIZE = (300, 451)  # (H, W) of the cat


CONTROLS = (0.2, 0.35, 90, False, True, True, "cam")  # theta_mas, theta_pas, percentile, tap, nwc, pas, method


TWO = "10, 20, 100, 150; 200, 50, 440, 290"


def test_parse_boxes_takes_one_or_several_boxes() -> None:
    np.testing.assert_array_equal(parse_boxes("1, 2, 3, 4", SIZE), [[1, 2, 3, 4]])  # today's syntax
    np.testing.assert_array_equal(parse_boxes(TWO, SIZE), [[10, 20, 100, 150], [200, 50, 440, 290]])
    np.testing.assert_array_equal(parse_boxes("1,2,3,4;\n5,6,7,8;  ", SIZE), [[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(parse_boxes("0.4, 1.6, 2.5, 3.5", SIZE), [[0, 2, 2, 4]])  # rounded half to even
    assert parse_boxes("", SIZE) is None and parse_boxes(None, SIZE) is None and parse_boxes(" ; ", SIZE) is None
    assert parse_boxes("; ".join(["1, 1, 5, 5"] * MAX_GT_BOXES), SIZE).shape == (MAX_GT_BOXES, 4)
    assert inputs.format_boxes(parse_boxes(TWO, SIZE)) == TWO


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1, 2, three, 4", r"'1, 2, three, 4': write four numbers"),
        ("1, 2, 3, 4; nan, 0, 5, 5", r"'nan, 0, 5, 5' \(box 2 of 2\): write four numbers"),
        ("inf, 0, 5, 5", "write four numbers"),
        ("1e400, 0, 5, 5", "write four numbers"),  # overflows to inf
        ("0, 0, 1e300, 5", "leaves the 451x300 photo"),  # a huge but finite number
        ("-1, 0, 5, 5", "leaves the 451x300 photo"),
        ("5, 5, 1, 1", "x0 <= x1 and y0 <= y1"),
        ("1, 2, 3", "four numbers"),
        ("; ".join(["1, 1, 5, 5"] * (MAX_GT_BOXES + 1)), f"At most {MAX_GT_BOXES} ground-truth boxes, got 21"),
        ("1,1,5,5;" * 10**6, f"At most {MAX_GT_BOXES} ground-truth boxes, got 1000001"),
        ("1" * 10**6, "the limit is 800"),
        ("0,0,5,5\x00", "must be a text"),
        (123, "must be a text"),
        (["1, 2, 3, 4"], "must be a text"),
    ],
)
def test_parse_boxes_refuses_hostile_text_readably(text: Any, message: str) -> None:
    with pytest.raises(cam_core.ParameterError, match=message) as error:
        parse_boxes(text, SIZE)
    assert len(str(error.value)) < 300  # readable: a huge text is never echoed back


def test_best_match_iou_hand_computed() -> None:
    # inclusive corners: [0, 0, 9, 9] has 100 pixels; [0, 0, 4, 9] 50, all inside it -> IoU 0.5
    # [5, 0, 14, 9]: overlap x 5..9 = 50 pixels, union 150 -> IoU 1/3
    gt = np.array([[0, 0, 4, 9], [0, 0, 9, 9], [20, 20, 29, 29]])
    scored = explanation.ground_truth_json([0, 0, 9, 9], [5, 0, 14, 9], gt)
    assert scored["ious_plain"] == [0.5, 1.0, 0.0] and scored["iou_plain"] == 1.0 and scored["best_box_plain"] == 1
    assert scored["ious_ours"] == [0.0, pytest.approx(1 / 3, abs=1e-6), 0.0]
    assert scored["iou_ours"] == pytest.approx(0.333333) and scored["best_box_ours"] == 1
    assert scored["boxes"] == gt.tolist()
    tie = explanation.ground_truth_json([0, 0, 9, 9], [0, 0, 9, 9], np.array([[0, 0, 9, 9], [0, 0, 9, 9]]))
    assert tie["best_box_plain"] == 0  # the first on ties


@pytest.mark.parametrize("pred", [[0, 0, 9, 9], [5, 0, 14, 9], [0, 0, 6, 9], [30, 30, 40, 40]])
def test_best_match_agrees_with_the_librarys_gt_known_rule(pred: list[int]) -> None:
    """The caption's IoU is what cam_core.evaluate.metrics.Evaluator scores: a GT-known hit iff best IoU >= 0.5."""
    gt = np.array([[0, 0, 4, 9], [20, 20, 29, 29], [0, 0, 12, 9]])
    evaluator = Evaluator(sweep=False)
    evaluator.accumulate(None, gt, np.array(pred), fixed_boxes=np.array([pred]))
    best = explanation.ground_truth_json(pred, pred, gt)["iou_plain"]
    assert (evaluator.compute().gt_known_loc == 100.0) == (best >= 0.5)


def test_two_boxes_are_drawn_on_both_panels_and_scored_best_of(cat_session: Session) -> None:
    out = compare.render_localization(inputs.VIEW.convert(cat_session, "285", *CONTROLS, TWO))
    gt = out.payload["ground_truth"]
    assert gt["boxes"] == [[10, 20, 100, 150], [200, 50, 440, 290]]
    for key in ("plain", "ours"):
        ious = cam_core.box_iou(out.payload[key]["box"], np.array(gt["boxes"]))[0]
        assert gt[f"iou_{key}"] == pytest.approx(ious.max(), abs=1e-6) and gt[f"best_box_{key}"] == int(ious.argmax())
    best = f"(with GT{gt['best_box_plain'] + 1})"
    assert "**Ground truth (gold), best of 2 boxes**: IoU plain" in out.caption and best in out.caption
    for panel in (out.plain, out.ours):
        assert len(svg_boxes(panel)) == 3  # two gold boxes and the panel's own box
        assert ">GT1<" in panel and ">GT2<" in panel
    display_gold = cam_core.scale_boxes(np.array(gt["boxes"]), SIZE, (300, 451)).tolist()
    assert svg_boxes(out.plain)[:2] == display_gold  # the cat is shown at its own size
    one = compare.render_localization(inputs.VIEW.convert(cat_session, "285", *CONTROLS, "10, 20, 100, 150"))
    assert "**Ground truth (gold)**: IoU plain" in one.caption and ">GT<" in one.plain


def test_burnt_in_pictures_and_the_zip_carry_every_box(cat_session: Session) -> None:
    request = inputs.VIEW.convert(cat_session, "285", *CONTROLS, TWO)
    ex = explanation.explain_request(request)
    picture = views.panel_picture(ex, "plain", request.gt)
    for x0, y0, x1, _ in request.gt:  # gold on each box's top edge, away from the label
        assert tuple(picture[y0, (x0 + x1) // 2]) == render.GT_COLOUR
    path = export.zip_file(ex, request.gt)
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("explanation.json"))
        plain = np.asarray(Image.open(archive.open("plain_cam.png")))
    assert saved["ground_truth"]["boxes"] == [[10, 20, 100, 150], [200, 50, 440, 290]]
    assert np.array_equal(plain, picture)


def _drag(fractions: list[float], mode: str) -> gr.SelectData:
    return gr.SelectData(None, {"index": fractions, "value": mode})


def test_shift_drag_adds_a_box_and_a_plain_drag_replaces(cat_session: Session) -> None:
    request = inputs.VIEW.convert(cat_session, "285", *CONTROLS, "")
    added = compare.draw_gt(request, "10, 20, 100, 150", _drag([0.5, 0.5, 1.0, 1.0], compare.ADD_BOX))
    assert added.gt_text == "10, 20, 100, 150; 225, 150, 450, 299"  # hand-computed: see box_from_fractions
    assert "best of 2 boxes" in added.caption
    first = compare.draw_gt(request, "", _drag([0.5, 0.5, 1.0, 1.0], compare.ADD_BOX))
    assert first.gt_text == "225, 150, 450, 299"  # adding to an empty field
    replaced = compare.draw_gt(request, "10, 20, 100, 150", _drag([0.5, 0.5, 1.0, 1.0], "replace"))
    assert replaced.gt_text == "225, 150, 450, 299" and "best of" not in replaced.caption


def test_adding_drags_are_limited_and_check_the_old_text(cat_session: Session) -> None:
    request = inputs.VIEW.convert(cat_session, "285", *CONTROLS, "")
    full = "; ".join(["1, 1, 5, 5"] * MAX_GT_BOXES)
    with pytest.raises(gr.Error, match=f"At most {MAX_GT_BOXES} ground-truth boxes: clear some first"):
        compare.draw_gt(request, full, _drag([0.5, 0.5, 1.0, 1.0], compare.ADD_BOX))
    with pytest.raises(gr.Error, match=r"write four numbers.*drag without Shift"):
        compare.draw_gt(request, "1, 2, x, 4", _drag([0.5, 0.5, 1.0, 1.0], compare.ADD_BOX))
    # a plain drag never reads the old text: it replaces even a broken one
    assert compare.draw_gt(request, "1, 2, x, 4", _drag([0, 0, 1, 1], "replace")).gt_text == "0, 0, 450, 299"
    raw = with_notice(event(compare.draw_gt, inputs.DRAG), len(compare.DrawnBox._fields))
    notice = raw(cat_session, "285", *CONTROLS, "\x00" * 5, _drag([0, 0, 1, 1], compare.ADD_BOX))[-1]
    assert notice.startswith("⚠️ Ground-truth boxes must be a text")


def _dependency(config: dict[str, Any], elem_id: str, trigger: str) -> int:
    ids = {c["id"] for c in config["components"] if c["props"].get("elem_id") == elem_id}
    return next(
        i for i, d in enumerate(config["dependencies"]) if any(t[0] in ids and t[1] == trigger for t in d["targets"])
    )


def test_hostile_ground_truth_over_raw_http_gets_a_readable_notice(http: httpx.Client, config: dict[str, Any]) -> None:
    client = http
    session = os.urandom(8).hex()
    on_image = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "on_image")
    resolution = inputs.DEFAULT_RESOLUTION.value
    photo = {"data": [{"path": str(CAT)}, cam_core.DEFAULT_MODEL, resolution], "fn_index": on_image}
    assert client.post("/gradio_api/queue/join", json={**photo, "session_hash": session}).status_code == 200
    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if "process_completed" in line:
                break
    submit = _dependency(config, "gt-box", "submit")
    hostile = {
        "1,1,5,5;" * 10**5: f"At most {MAX_GT_BOXES} ground-truth boxes",
        "nan, 0, 5, 5": "write four numbers",
        "0, 0, 1e300, 5": "leaves the 451x300 photo",
        "0,0,5,5\x00": "must be a text",
    }
    for text, message in hostile.items():
        body = {
            "data": [None, "285", *CONTROLS, text, "Plain vs improved"],
            "fn_index": submit,
            "session_hash": session,
        }
        response = client.post("/gradio_api/run/predict", json=body)
        assert response.status_code == 200, response.text[:300]
        notice = response.json()["data"][-1]
        assert message in notice and "Internal error" not in notice, notice[:300]
    body = {"data": [None, "285", *CONTROLS, TWO, "Plain vs improved"], "fn_index": submit, "session_hash": session}
    good = client.post("/gradio_api/run/predict", json=body).json()["data"]
    assert good[-1] == "" and "best of 2 boxes" in json.dumps(good)


def test_box_from_fractions_hand_computed() -> None:
    size = (300, 451)  # (H, W) of the cat
    # x: [0.1 * 451, 0.5 * 451) = [45.1, 225.5) touches pixels 45..225; y: [60, 210) touches 60..209
    np.testing.assert_array_equal(inputs.box_from_fractions([0.1, 0.2, 0.5, 0.7], size), [45, 60, 225, 209])
    np.testing.assert_array_equal(inputs.box_from_fractions([0, 0, 1, 1], size), [0, 0, 450, 299])  # whole photo
    np.testing.assert_array_equal(inputs.box_from_fractions([-0.2, 0.5, 1.3, 0.501], size), [0, 150, 450, 150])
    assert inputs.format_box(np.array([45, 60, 225, 209])) == "45, 60, 225, 209"
    for bad in ([0.5, 0.2, 0.5, 0.7], [0.1, 0.2, 0.5], [0.1, float("nan"), 0.5, 0.7], "abcd", None):
        with pytest.raises(cam_core.ParameterError):
            inputs.box_from_fractions(bad, size)
