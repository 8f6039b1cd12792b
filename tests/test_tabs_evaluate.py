"""The Evaluate tab's callback: the library evaluation on the bundled examples and on an uploaded set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from PIL import Image

import cam_core
from app.tabs import evaluate as ev


def test_bundled_examples() -> None:
    table, curves, gallery, payload = ev.run_examples(cam_core.DEFAULT_MODEL, progress=lambda *a, **k: None)
    assert payload["n_images"] == 3 and set(payload["configs"]) == {"cam", "pas", "nwc", "nwc+pas"}
    assert "| nwc+pas |" in table and Image.open(curves).size[0] > 300
    assert len(gallery) == 3 and all(
        caption.split(", ")[-1].split()[0] in ("win", "loss", "tie") for _, caption in gallery
    )
    assert all(caption.split(":")[0].endswith(".jpg") for _, caption in gallery)  # the name first, never cut
    assert ev.texts.EVALUATE_PROTOCOL in table and ev.texts.EVALUATE_PAS in table  # where the numbers are
    cat = payload["configs"]["cam"]
    assert 0 <= cat["gt_known_loc"] <= 100 and len(cat["curves"]["50"]) == 100
    assert payload["input_size"] == [448, 448] and payload["feature_size"] == [28, 28]  # the page's default
    assert "analysed at 448 px, stride 16 -> 28x28 map" in table


def test_the_evaluate_tab_follows_the_resolution_menu() -> None:
    """Issue #13: the Evaluate tab analyses at the Resolution menu's setting, as the main tab does; the menu's
    value is checked where it enters."""
    _, _, _, coarse = ev.run_examples(cam_core.DEFAULT_MODEL, "224/32", progress=lambda *a, **k: None)
    assert coarse["input_size"] == [224, 224] and coarse["output_stride"] == 32 and coarse["feature_size"] == [7, 7]
    with pytest.raises(gr.Error, match="`resolution` must be one of"):
        ev.run_examples(cam_core.DEFAULT_MODEL, "1024/8", progress=lambda *a, **k: None)


def test_gallery_captions_and_the_evaluate_tab_say_what_they_measure(config: dict[str, Any]) -> None:
    """Issue #14 item 17: no "tie -0.00", names first, whole pictures, the protocol and PaS sweep said."""
    outcome = lambda plain, ours: ev.ImageOutcome("a_rather_long_photo_name.jpg", None, None, None, None, plain, ours)  # type: ignore[arg-type]  # noqa: E731
    assert ev.gallery_caption(outcome(0.5, 0.499)) == "a_rather_long_photo_name.jpg: IoU 0.50 → 0.50, tie"
    assert ev.gallery_caption(outcome(0.31, 0.55)).endswith("win +0.24")
    assert ev.gallery_caption(outcome(0.55, 0.31)).endswith("loss −0.24")
    assert "PaS rows: MaxBoxAcc and PxAP sweep the map min(1, CAM / P_p), this project's extension" in (
        ev.texts.evaluate_intro(ev.MAX_IMAGES, ev.MAX_TOTAL_MB)
    )
    # issue #23: not "three bundled examples" beside a sidebar of five; the ones with boxes, named (boxes.csv)
    intro = next(c["props"]["value"] for c in config["components"]
                 if "bundled examples that have hand-drawn boxes" in str(c["props"].get("value")))  # fmt: skip
    assert (
        "the 3 bundled examples that have hand-drawn boxes (cat.jpg, coffee.jpg, rocket.jpg; 5 in the sidebar)" in intro
    )
    (gallery,) = [c for c in config["components"] if c["props"].get("elem_id") == "eval-gallery"]
    assert gallery["props"]["object_fit"] == "contain"


def test_uploaded_set_with_a_missing_photo(uploads: Path) -> None:
    photo = uploads / "cat.jpg"
    photo.write_bytes((ev.EXAMPLES / "cat.jpg").read_bytes())
    csv = uploads / "boxes.csv"
    csv.write_text("filename,class_index,x0,y0,x1,y1\ncat.jpg,285,20,0,450,299\nghost.jpg,1,0,0,5,5\n")
    table, _, _, payload = ev.run_evaluation([str(photo)], str(csv), False, cam_core.DEFAULT_MODEL,
                                             progress=lambda *a, **k: None)  # fmt: skip
    assert payload["n_images"] == 1 and payload["skipped"][0]["file"].endswith("ghost.jpg")
    assert "skipped 1" in table


def test_bad_csv_and_missing_inputs(uploads: Path) -> None:
    photo = uploads / "cat.jpg"
    photo.write_bytes((ev.EXAMPLES / "cat.jpg").read_bytes())
    csv = uploads / "boxes.csv"
    csv.write_text("filename,class_index,x0,y0,x1,y1\ncat.jpg,285,20,0,oops,299\n")
    with pytest.raises(gr.Error, match="line 2"):
        ev.run_evaluation([str(photo)], str(csv), False, cam_core.DEFAULT_MODEL, progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match="boxes CSV"):
        ev.run_evaluation(None, None, False, cam_core.DEFAULT_MODEL, progress=lambda *a, **k: None)
