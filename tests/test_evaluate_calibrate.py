"""Calibrate-then-test: theta and p chosen on a held-out set, hand-computed on a crafted map."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cam_core
from cam_core.cam import Analysis
from cam_core.errors import ParameterError
from cam_core.evaluate import default_configs
from cam_core.evaluate.calibrate import _Scores, calibrate, fixed_rule_levels
from cam_core.evaluate.cli import main
from cam_core.evaluate.sweep import sweep_thresholds
from cam_core.threshold import threshold_mask


def crafted_analysis() -> Analysis:
    """A 10x10 'feature map' equal to its own CAM: block A (rows/cols 1..3) at 1.0, block B (5..8) at 0.5.

    The image has the feature map's size, so upsampling is the identity and the normalised CAM is the map.
    """
    feature = np.zeros((1, 10, 10), np.float32)
    feature[0, 1:4, 1:4], feature[0, 5:9, 5:9] = 1.0, 0.5
    one = np.ones(1, np.float32)
    return Analysis("crafted", np.zeros((10, 10, 3), np.uint8), feature, np.ones((1, 1), np.float32),
                    np.zeros(1, np.float32), one, one, ("c",), (10, 10))  # fmt: skip


def test_fixed_rule_levels_equal_threshold_mask(rng: np.random.Generator) -> None:
    cam = cam_core.cam.normalize(rng.random((17, 23)).astype(np.float32))
    thresholds = sweep_thresholds(0.01)
    for thresholding in ("8bit", "float"):
        for rule, p in (("mas", 90.0), ("pas", 90.0), ("pas", 35.0)):
            config = cam_core.LocalizationConfig(rule=rule, percentile=p, thresholding=thresholding)  # type: ignore[arg-type]
            levels = fixed_rule_levels(cam, config, thresholds)
            for k in (0, 20, 35, 77, 99):
                expected = threshold_mask(cam, rule, thresholds[k], p, thresholding)[1]  # type: ignore[arg-type]
                np.testing.assert_array_equal(levels > k, expected, err_msg=f"{thresholding} {rule} p{p} k{k}")


def test_scores_by_hand() -> None:
    """GT = A's box (1,1,3,3). q: A 255, B 127, background 0 (75 px).

    MaS: k <= 49 keeps B (int(2.55 k) < 127), whose 16-pixel contour is the largest: IoU 0; from k = 50 on
    only A, box (1,1,4,4): IoU 9/16 >= 0.5. Best theta 0.50, GT-known 100.
    PaS: P_p(q) = 0 for p = 50, 70 (everything non-zero kept), 127 for 80, 90 (B always kept: int(.99*127)
    = 125 < 127), 255 for 95 and above (= MaS). First best in grid order: p = 95, theta = 0.50.
    """
    specs = {k: v for k, v in default_configs().items() if k in ("cam", "pas")}
    scores = _Scores(specs, [50, 70, 80, 90, 95, 98, 99, 100], 0.01)
    scores.add(crafted_analysis(), 0, np.array([[1, 1, 3, 3]]))
    cam, pas = scores.best("cam", "gt_known"), scores.best("pas", "gt_known")
    assert (cam.theta, cam.percentile, cam.value) == (0.5, None, 100.0)
    assert (pas.theta, pas.percentile, pas.value) == (0.5, 95.0, 100.0)
    assert scores.v1["pas"][:4].sum() == 0 and scores.v1["pas"][4].sum() == 50  # k = 50..99 hit for p = 95
    v2 = scores.best("cam", "v2")  # all contours: B's and A's boxes both count; delta .7 needs A alone (9/16 < .7)
    assert v2.metric == "v2" and v2.value == pytest.approx(200 / 3)


@pytest.fixture
def two_sets(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    for split in ("cal", "test"):
        rows = ["filename,class_index,x0,y0,x1,y1\n"]
        (tmp_path / split).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 60, (40, 48, 3), dtype=np.uint8)
            pixels[8 + i : 24 + i, 10:30] = (230, 200, 40)
            Image.fromarray(pixels).save(tmp_path / split / f"{split}{i}.png")
            rows.append(f"{split}{i}.png,{i},10,{8 + i},29,{23 + i}\n")
        (tmp_path / split / "boxes.csv").write_text("".join(rows))
    return tmp_path / "cal", tmp_path / "test"


def test_calibrate_library_and_errors(tiny_model: cam_core.LoadedModel, two_sets: tuple[Path, Path]) -> None:
    samples = cam_core.datasets.read_boxes_csv(two_sets[0] / "boxes.csv", two_sets[0])
    counted: list[tuple[int, int]] = []
    chosen = calibrate(tiny_model, samples, default_configs(crf=False), percentiles=[90, 100],
                       batch_size=2, progress=lambda done, total: counted.append((done, total)))  # fmt: skip
    assert counted == [(2, len(samples)), (len(samples), len(samples))]
    assert set(chosen) == {"cam", "pas", "nwc", "nwc+pas"} and chosen["cam"].percentile is None
    assert chosen["pas"].percentile in (90.0, 100.0) and 0.0 <= chosen["pas"].theta < 1.0
    with pytest.raises(ParameterError, match="metric"):
        calibrate(tiny_model, samples, default_configs(), metric="iou")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="percentiles"):
        calibrate(tiny_model, samples, default_configs(), percentiles=[0])


def test_cli_calibrate_on(two_sets: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cal, test = two_sets
    out = tmp_path / "r.json"
    args = ["--images", str(test), "--boxes", str(test / "boxes.csv"), "--calibrate-on", str(cal / "boxes.csv"),
            "--calibrate-percentiles", "90,98", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    progress = capsys.readouterr().err  # the counted bars on stderr: calibration, then the test set
    assert "calibrating: 100%" in progress and "3/3" in progress
    result = json.loads(out.read_text())
    assert set(result["calibration"]) == {"cam", "pas", "nwc", "nwc+pas"}
    pas = result["calibration"]["pas"]
    assert pas["metric"] == "gt_known" and pas["percentile"] in (90.0, 98.0) and pas["set"] == "boxes.csv"
    assert pas["overlap_with_test"] == 0 and pas["n_images"] == 3
    settings = result["configs"]["pas@cal"]["settings"]
    assert (settings["theta"], settings["percentile"]) == (pas["theta"], pas["percentile"])


def test_overlap_counts_copies_by_base_name(tmp_path: Path) -> None:
    from cam_core.datasets import Sample
    from cam_core.evaluate.calibrate import _identities

    box = np.zeros((1, 4))
    cal = [Sample(tmp_path / "a" / "x.JPEG", 0, box), Sample(tmp_path / "a" / "y.JPEG", 0, box)]
    assert _identities(cal) & _identities([Sample(tmp_path / "b" / "x.JPEG", 0, box)]) == {"x.JPEG"}
