"""Issue #22 item 2: Evaluate's cost budget (photos x pixels x resolution), checked before any work, and a deadline.

Before: 64 photos of 4000² at 512 / 16 ran for 53 s (61 CPU-s) and every other visitor's upload waited for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from PIL import Image

import cam_core
from app import eval_budget
from app.eval_budget import PhotoSize, check_budget, cost_s, with_deadline
from app.models import Resolution
from app.tabs import evaluate as evaluation

WORST = Resolution(512, 16)


def test_the_issues_worst_case_is_refused_with_what_would_fit() -> None:
    photos = [PhotoSize(4000, 4000, "JPEG")] * 64
    assert cost_s(photos, WORST) == pytest.approx(64 * (0.395 + 16 * 0.026))  # 51.9 s by the measured constants
    with pytest.raises(cam_core.ParameterError) as refused:
        check_budget(photos, WORST)
    message = str(refused.value)
    assert "about 52 s here (64 photos, 1024 MP in all, at 512 px, stride 16 -> 32x32 map)" in message
    assert "the in-app budget is 30 s" in message and "at most 36 of these photos" in message
    assert "224 px, stride 32 -> 7x7 map: about 30 s" in message and "python -m cam_core.evaluate" in message
    assert check_budget(photos[:36], WORST) <= 30  # what the message says fits, fits


def test_a_typical_set_fits() -> None:
    imagenet = [PhotoSize(500, 375, "JPEG")] * 64  # the in-app maximum of ImageNet-sized photos
    assert check_budget(imagenet, WORST) < 30
    assert check_budget([PhotoSize(4000, 3000, "PNG")] * 5, Resolution(448, 16)) < 30


def _big_photos(folder: Path, count: int) -> tuple[list[dict[str, str]], dict[str, str]]:
    rows, images = ["filename,class_index,x0,y0,x1,y1"], []
    for i in range(count):
        path = folder / f"big{i}.jpg"
        Image.new("RGB", (4000 - i, 4000), (40 * i % 255, 90, 160)).save(path, quality=60)
        images.append({"path": str(path)})
        rows.append(f"{path.name},285,10,10,2000,2000")
    (folder / "boxes.csv").write_text("\n".join(rows) + "\n")
    return images, {"path": str(folder / "boxes.csv")}


def test_evaluate_refuses_before_decoding_anything(uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end through the Evaluate handler, with the budget lowered so that 8 files stand for 64."""
    monkeypatch.setattr(eval_budget, "EVAL_BUDGET_S", 6.0)  # 8 x 4000² at 512 / 16: about 6.5 s
    images, csv = _big_photos(uploads, 8)

    def no_decode(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a photo was decoded before the budget check")

    monkeypatch.setattr("cam_core.evaluate.load_stored_image", no_decode)
    with pytest.raises(gr.Error, match=r"would take about 6 s here \(8 photos.*the in-app budget is 6 s"):
        evaluation.run_evaluation(images, csv, False, cam_core.DEFAULT_MODEL, "512/16")


def test_a_run_over_the_deadline_is_stopped_with_a_message(uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The estimate can be wrong for a slower or busier server: the deadline still bounds the run."""
    monkeypatch.setattr(eval_budget, "EVAL_DEADLINE_S", 0.0)
    rows = ["filename,class_index,x0,y0,x1,y1"]
    cat = Image.open(Path(evaluation.EXAMPLES) / "cat.jpg")
    images = []
    for i in range(10):  # one photo per forward pass: stopped after the first
        path = uploads / f"cat{i}.jpg"
        cat.resize((300 + i, 200)).save(path)
        images.append({"path": str(path)})
        rows.append(f"{path.name},285,10,10,200,150")
    (uploads / "boxes.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(gr.Error, match=r"Evaluate stopped after \d+ s \(1 of 10 photos\)"):
        evaluation.run_evaluation(images, {"path": str(uploads / "boxes.csv")}, False, cam_core.DEFAULT_MODEL, "224/32")
    seen: list[int] = []
    with_deadline(lambda done, total: seen.append(done), deadline_s=60)(8, 10)
    assert seen == [8]


def test_ticked_methods_cost_what_was_measured_and_a_set_over_budget_says_what_fits() -> None:
    """Issue #25: each CAM-family method adds its measured seconds per photo at the resolution."""
    from app.eval_budget import METHOD_S_PER_PHOTO, SECONDS_PER_PHOTO
    from app.resolutions import RESOLUTIONS
    from cam_core.family import METHODS

    for choice in RESOLUTIONS:  # every offered resolution has a measured cost for every method
        assert set(METHOD_S_PER_PHOTO[choice.resolution.value]) == set(METHODS)
    photos, at = [PhotoSize(500, 375, "JPEG")] * 64, Resolution(448, 16)
    per_method = METHOD_S_PER_PHOTO["448/16"]
    both = cost_s(photos, at, ("gradcam", "layercam"))
    assert both == pytest.approx(cost_s(photos, at) + 64 * (per_method["gradcam"] + per_method["layercam"]))
    assert cost_s(photos, at, ("gradcam",)) > cost_s(photos, at) and cost_s(photos, at, ()) == cost_s(photos, at)
    plain = cost_s(photos, at)
    all_four = tuple(METHODS)
    budget = (plain + cost_s(photos, at, all_four)) / 2  # plain CAM fits, all four methods do not
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(eval_budget, "EVAL_BUDGET_S", budget)
        assert check_budget(photos, at) == pytest.approx(plain)
        with pytest.raises(cam_core.ParameterError) as refused:
            check_budget(photos, at, all_four)
    message = str(refused.value)
    added = 64 * sum(per_method.values())
    assert f"at 448 px, stride 16 -> 28x28 map, 4 CAM-family methods: +{added:.0f} s)" in message
    assert f"no CAM-family method (about {plain:.0f} s)" in message
    fits = int(64 * budget / cost_s(photos, at, all_four))
    assert f"at most {fits} of these photos" in message
    assert SECONDS_PER_PHOTO["448/16"] > 0


def test_evaluate_with_methods_is_refused_before_any_work(uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: the same set fits without methods and is refused with them, before anything is decoded."""
    images, csv = _big_photos(uploads, 2)
    photos = [PhotoSize(4000 - i, 4000, "JPEG") for i in range(2)]
    at = Resolution(224, 32)
    monkeypatch.setattr(eval_budget, "EVAL_BUDGET_S", (cost_s(photos, at) + cost_s(photos, at, ("gradcam",))) / 2)
    decoded: list[Any] = []

    def no_decode(path: Any) -> Any:
        decoded.append(path)
        raise cam_core.InvalidImageError("not decoded in this test")

    monkeypatch.setattr("cam_core.evaluate.run.load_stored_image", no_decode)
    with pytest.raises(gr.Error, match=r"1 CAM-family method: \+0\.\d s\).*no CAM-family method \(about 1 s\)"):
        evaluation.run_evaluation(images, csv, False, cam_core.DEFAULT_MODEL, "224/32", ["gradcam"])
    assert decoded == []
    with pytest.raises(gr.Error, match="No image could be evaluated"):  # without the method it fits: it runs
        evaluation.run_evaluation(images, csv, False, cam_core.DEFAULT_MODEL, "224/32", [])
    assert len(decoded) == 2
