"""The segmentation CLI and its files: palette PNG + JSON sidecar round trip, mIoU, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cam_core
from cam_core.segment import MeanIoU, read_label_png, write_label_png
from cam_core.segment.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def test_label_png_round_trip_with_large_class_indices(tmp_path: Path) -> None:
    slots = np.array([[0, 1, 2], [2, 2, 0]], np.uint8)
    write_label_png(tmp_path / "a.png", slots, 2)
    sidecar = {
        "slots": [{"slot": 0, "class_index": None}, {"slot": 1, "class_index": 999}, {"slot": 2, "class_index": 3}]
    }
    (tmp_path / "a.json").write_text(json.dumps(sidecar))
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == "P" and image.getpalette()[3:6] == [128, 0, 0]
    np.testing.assert_array_equal(read_label_png(tmp_path / "a.png"), [[0, 1000, 4], [4, 4, 0]])
    (tmp_path / "a.json").write_text(json.dumps({"slots": sidecar["slots"][:2]}))
    with pytest.raises(cam_core.DatasetError, match="slot 2 is not declared"):
        read_label_png(tmp_path / "a.png")


def test_mean_iou_is_hand_computed() -> None:
    meter = MeanIoU()
    meter.accumulate(np.array([[0, 0, 1, 1]]), np.array([[0, 1, 1, 5]]))
    miou, ious = meter.compute()
    # background: TP 1, FN 1, FP 0 -> 1/2; label 1: TP 1, FN 1, FP 1 -> 1/3; label 5 is not in the truth.
    assert ious == pytest.approx({0: 50.0, 1: 100 / 3})
    assert miou == pytest.approx((50 + 100 / 3) / 2)
    meter.accumulate(np.array([[5]]), np.array([[5]]))  # a second image adds label 5: TP 1, FP 1 -> 1/2
    assert meter.compute()[1][5] == pytest.approx(50.0)


def test_cli_writes_label_maps_and_miou(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    photos.mkdir(), masks.mkdir()
    Image.open(EXAMPLES / "coffee.jpg").resize((160, 120)).save(photos / "coffee.png")
    truth = np.zeros((120, 160), np.uint8)
    truth[5:100, 45:135] = 1  # box-level stand-in for the cup (class 968, 'cup')
    write_label_png(masks / "coffee.png", truth, 1)
    (masks / "coffee.json").write_text(
        json.dumps({"slots": [{"slot": 0, "class_index": None}, {"slot": 1, "class_index": 968}]})
    )
    assert main(["--images", str(photos), "--out", str(out), "--masks", str(masks), "--known-classes"]) == 0
    progress = capsys.readouterr().err  # the counted bar on stderr
    assert "segmenting: 100%" in progress and "1/1" in progress
    record = json.loads((out / "coffee.json").read_text())
    assert record["size"] == [120, 160] and record["slots"][1]["class_index"] == 968
    labels = read_label_png(out / "coffee.png")
    assert labels.shape == (120, 160) and set(np.unique(labels)) <= {0, 969}
    table = json.loads((out / "miou.json").read_text())
    assert set(table) == {"cam", "nwc+pas"} and all(0 < row["miou"] <= 100 for row in table.values())


def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--images", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]) == 2
    assert "`--images`" in capsys.readouterr().err
    assert main(["--images", str(tmp_path), "--out", str(tmp_path / "out"), "--classes", "3", "3"]) == 2
    assert "more than once" in capsys.readouterr().err
