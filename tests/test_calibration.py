"""Temperature scaling (cam_core/calibration/, issue #23 items 1-2): the formulas against hand-computed values, the
stored temperatures, the refit command, calibration changing the probabilities only (logits, ranking, CAMs, boxes
untouched), and the Segmentation tab's coverage on the development photos."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

import cam_core
from cam_core import calibration
from cam_core.calibration import cli as calibration_cli
from cam_core.calibration import (
    describe,
    expected_calibration_error,
    fit_temperature,
    nll,
    softmax,
    temperature,
)
from cam_core.datasets import read_boxes_csv
from cam_core.errors import ParameterError
from tests.helpers import ROOT

OFFERED = ((224, 32), (336, 32), (336, 16), (448, 32), (448, 16), (512, 16))
"""The Resolution menu (app/resolutions.py), as a literal: a new resolution needs a fit (and this line)."""


def test_nll_by_hand() -> None:
    """Two classes, logits (0, ln 3): p = (1/4, 3/4); -log 1/4 = ln 4 and -log 3/4 = ln 4/3. At T = 1/2 the logits
    double: p = (1/10, 9/10)."""
    z = np.array([[0.0, math.log(3)], [0.0, math.log(3)]])
    assert nll(z, np.array([0, 1])) == pytest.approx((math.log(4) + math.log(4 / 3)) / 2, abs=1e-12)
    assert nll(z[:1], np.array([0]), 0.5) == pytest.approx(math.log(10), abs=1e-12)
    assert softmax(z[0], 0.5) == pytest.approx([0.1, 0.9])


def test_fit_temperature_matches_the_closed_form() -> None:
    """Four photos with logits (2, 0), three of them class 0: the NLL's minimum has sigmoid(2 / T) = 3/4, so
    T = 2 / ln 3 = 1.8205 (a brute-force scan agrees)."""
    z, y = np.tile([2.0, 0.0], (4, 1)), np.array([0, 0, 0, 1])
    t = fit_temperature(z, y)
    assert t == pytest.approx(2 / math.log(3), rel=1e-5)
    grid = np.exp(np.linspace(math.log(0.5), math.log(5), 2001))
    assert t == pytest.approx(grid[np.argmin([nll(z, y, g) for g in grid])], rel=2e-3)


def test_fit_temperature_refuses_an_edge_optimum() -> None:
    """Every photo right: the NLL falls without bound as T -> 0, so no finite T fits (an error, not the edge)."""
    with pytest.raises(ParameterError, match="edge"):
        fit_temperature(np.tile([2.0, 0.0], (3, 1)), np.array([0, 0, 0]))
    with pytest.raises(ParameterError, match="labels"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 3]))


def test_expected_calibration_error_by_hand() -> None:
    """Confidences 0.9 (right), 0.9 (wrong), 0.7 (right), 0.6 (right) in 15 bins: three bins,
    |0.5 - 0.9| · 2/4 + |1 - 0.7| · 1/4 + |1 - 0.6| · 1/4 = 0.2 + 0.075 + 0.1 = 0.375."""
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    assert expected_calibration_error(p, np.array([0, 1, 1, 0])) == pytest.approx(0.375, abs=1e-12)
    assert expected_calibration_error(p, np.array([0, 1, 1, 0]), bins=1) == pytest.approx(abs(0.75 - 0.775))


def test_every_offered_resolution_of_the_default_model_has_a_stored_fit() -> None:
    """One T per Resolution menu entry for the default model, with its provenance; anything else: None."""
    for size, stride in OFFERED:
        entry = calibration.calibration_entry(cam_core.DEFAULT_MODEL, size, stride)
        assert entry is not None, f"no temperature for {size}/{stride}"
        assert 0 < entry["temperature"] < 5 and entry["fit_on"] == "imagenet_val_1k" and entry["n_photos"] >= 100
        assert entry["date"] and entry["commit"]
    assert temperature(cam_core.DEFAULT_MODEL, (448, 448), 16) == temperature(cam_core.DEFAULT_MODEL, 448, 16)
    assert temperature(cam_core.DEFAULT_MODEL, (448, 224), 16) is None
    assert temperature("resnet50", 448, 16) is None
    assert describe(None) == "uncalibrated" and describe(0.314) == "calibrated, T = 0.31"


def test_stored_file_is_the_package_data_the_wheel_ships() -> None:
    """The JSON sits inside cam_core and pyproject ships it (tests/test_shipping.py reads it from a built wheel)."""
    assert calibration.CALIBRATION_FILE.parent == ROOT / "cam_core" / "calibration"
    assert '"cam_core.calibration" = ["temperatures.json"]' in (ROOT / "pyproject.toml").read_text()
    assert json.loads(calibration.CALIBRATION_FILE.read_text())["temperatures"]


def test_calibration_changes_the_probabilities_only() -> None:
    """At the app's default (448 px, stride 16) the analysis carries the stored T and softmax(logits / T); against
    the raw softmax the ranking, every CAM and the box are the same."""
    image = cam_core.load_image(ROOT / "assets/examples/cat.jpg")
    loaded = cam_core.load_model(output_stride=16)
    a = cam_core.analyze(loaded, image, input_size=448)
    assert a.temperature == temperature(cam_core.DEFAULT_MODEL, 448, 16) is not None
    assert a.probabilities == pytest.approx(softmax(a.logits, a.temperature), abs=1e-6)
    raw = dataclasses.replace(a, probabilities=softmax(a.logits).astype(np.float32), temperature=None)
    assert [i for i, _, _ in a.top_k(5)] == [i for i, _, _ in raw.top_k(5)]
    assert a.top_k(1)[0][2] > raw.top_k(1)[0][2]  # T < 1 at 448 / 16: the collapsed top-1 probability rises
    top = a.top_k(1)[0][0]
    for variant in ("cam", "nwc"):
        np.testing.assert_array_equal(a.cam(top, variant), raw.cam(top, variant))
    config = cam_core.CONFIGS["nwc+pas"]
    np.testing.assert_array_equal(cam_core.localize(a, top, config).box, cam_core.localize(raw, top, config).box)


def test_refit_command_writes_a_merged_fit(tmp_path: Path) -> None:
    """``python -m cam_core.calibration --quick`` on the bundled examples with boxes merges one fit into ``--out``."""
    out = tmp_path / "t.json"
    out.write_text(json.dumps({"temperatures": {"other@1/1": {"temperature": 2.0}}}))
    folder = ROOT / "assets/examples"
    assert calibration_cli.main(["--fit-on", str(folder), "--quick", "--out", str(out), "--no-progress"]) == 0
    fits = json.loads(out.read_text())["temperatures"]
    assert fits["other@1/1"] == {"temperature": 2.0}
    entry = fits[f"{cam_core.DEFAULT_MODEL}@224/32"]
    n = len(read_boxes_csv(folder / "boxes.csv", folder))
    assert entry["fit_on"] == "examples" and entry["n_photos"] == n and entry["nll_after"] <= entry["nll_before"]


FULLRES = Path("/work/shared/data/imagenet_val_fullres_dev")
EVERY = 6
"""The coverage test's fixed subset: every 6th development photo (20 of 120; all 120 take minutes on 2 cores:
``python -m bench.bench_calibration --segmentation`` measures them, docs/calibration.md keeps the number)."""


@pytest.mark.slow
@pytest.mark.skipif(not FULLRES.exists(), reason="the development photos are not on this machine")
def test_segmentation_shows_a_label_map_on_most_development_photos() -> None:
    """Issue #23 item 2: at the defaults (448 px / 16, the tab's 5 % floor) a class passes the floor, so the tab
    shows a label map, on >= 90 % of the photos; with the raw softmax it is far fewer."""
    from cam_core.segment import SegmentConfig, select_classes

    samples = read_boxes_csv(FULLRES / "boxes.csv", FULLRES)[::EVERY]
    loaded = cam_core.load_model(output_stride=16)
    shown = raw_shown = 0
    for sample in samples:
        a = cam_core.analyze(loaded, cam_core.load_image(sample.path), input_size=448)
        raw = dataclasses.replace(a, probabilities=softmax(a.logits).astype(np.float32), temperature=None)
        shown += _passes(select_classes, a, SegmentConfig())
        raw_shown += _passes(select_classes, raw, SegmentConfig())
    assert len(samples) == 20 and shown >= 0.9 * len(samples), (shown, raw_shown)
    assert raw_shown < shown


def _passes(select: object, analysis: cam_core.Analysis, config: object) -> bool:
    try:
        select(analysis, config)  # type: ignore[operator]
    except ParameterError:
        return False
    return True
