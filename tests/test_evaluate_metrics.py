"""WSOL metrics: hand-computed values on synthetic maps, and the vectorised sweep against a naive loop."""

from __future__ import annotations

import numpy as np
import pytest

from cam_core.boxes import box_iou, mask_to_boxes
from cam_core.cam import normalize, upsample
from cam_core.errors import ParameterError
from cam_core.evaluate.metrics import Evaluator, format_rows, sweep_ious, sweep_thresholds
from cam_core.threshold import pas_normalize


def nested_squares() -> np.ndarray:
    """20x20 map: background 0.095, square rows/cols 2..14 at 0.405, inner square 5..9 at 0.805.

    With the float rule ``cam > theta``, thresholds k = 0..9 keep the whole image, 10..40 the outer square,
    41..80 the inner one, 81..99 nothing (values chosen between grid points so that float rounding cannot
    matter). The 8-bit rule scales the thresholds by the map's maximum (here 0.805, not 1): see
    tests/test_we_parity.py for its hand-computed values.
    """
    cam = np.full((20, 20), 0.095, np.float32)
    cam[2:15, 2:15] = 0.405
    cam[5:10, 5:10] = 0.805
    return cam


def naive_sweep(
    cam: np.ndarray, gt: np.ndarray, thresholds: np.ndarray, thresholding: str = "8bit"
) -> tuple[np.ndarray, np.ndarray]:
    """The reference: one full-image contour pass per threshold, straight from cam_core.boxes."""
    largest, best = [], []
    quantized = (cam * 255).astype(np.uint8)
    for theta in thresholds:
        # 8bit: wsolevaluation's cv2.threshold(uint8 map, int(theta * max), THRESH_BINARY); float: float32 compare
        eight = thresholding == "8bit"
        mask = quantized > int(theta * quantized.max()) if eight else cam > np.float32(theta)
        largest.append(box_iou(mask_to_boxes(mask, largest_only=True), gt).max())
        best.append(box_iou(mask_to_boxes(mask), gt).max())
    return np.array(largest), np.array(best)


def test_sweep_thresholds_grid() -> None:
    grid = sweep_thresholds()
    assert grid.dtype == np.float64 and grid.size == 100
    np.testing.assert_array_equal(grid, np.arange(0, 1, 0.01))  # wsolevaluation's cam_threshold_list, bit for bit
    assert sweep_thresholds(0.001).size == 1000
    assert grid[0] == 0.0 and grid[-1] == pytest.approx(0.99)
    assert sweep_thresholds(0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    with pytest.raises(ParameterError, match="step"):
        sweep_thresholds(0.0)


def test_sweep_ious_nested_squares_by_hand() -> None:
    thresholds = sweep_thresholds()
    largest, best = sweep_ious(nested_squares(), np.array([[2, 2, 14, 14]]), thresholds, "float")
    # Boxes carry wsolevaluation's +1 (x1 = x + w): whole image (0,0,19,19), outer (2,2,15,15), inner (5,5,10,10).
    expected = np.zeros(100)
    expected[:10] = 169 / 400
    expected[10:41] = 169 / 196
    expected[41:81] = 36 / 169
    np.testing.assert_allclose(largest, expected)
    np.testing.assert_allclose(best, expected)


def test_maxboxacc_best_theta_and_v2_mean_by_hand() -> None:
    """Images A (GT = outer square), B and B (GT = inner square), all on the nested-squares map.

    A: IoU 0.4225 (k<10), 0.862 (10..40), 0.213 (41..80). B: 0.0625, 0.128, 0.694 (25/36), 0.
    delta 0.3: k 41..80 has B, B -> 2/3; delta 0.5: same, 2/3; delta 0.7: only A at k 10..40 -> 1/3.
    """
    ev = Evaluator(thresholding="float")
    cam = nested_squares()
    for gt in ([2, 2, 14, 14], [5, 5, 9, 9], [5, 5, 9, 9]):
        ev.accumulate(cam, np.array([gt]), fixed_box=np.array([0, 0, 0, 0]))
    result = ev.compute()
    assert result.n_images == 3
    assert result.maxboxacc_v2_by_iou == pytest.approx({"30": 200 / 3, "50": 200 / 3, "70": 100 / 3})
    assert result.maxboxacc_v2 == pytest.approx((200 / 3 + 200 / 3 + 100 / 3) / 3)
    assert result.maxboxacc_v1 == pytest.approx(200 / 3)
    assert result.best_theta == pytest.approx({"v1": 0.41, "30": 0.41, "50": 0.41, "70": 0.10})
    assert result.curves["70"][10] == pytest.approx(100 / 3) and result.curves["70"][9] == 0.0
    assert len(result.thresholds) == 100 and result.top1_loc is None


def test_v2_uses_all_contours_v1_only_the_largest() -> None:
    cam = np.zeros((30, 30), np.float32)
    cam[2:20, 2:20] = 0.5  # large blob, area 324
    cam[24:28, 24:28] = 0.9  # small blob, the object
    ev = Evaluator(thresholding="float")
    ev.accumulate(cam, np.array([[24, 24, 27, 27]]), fixed_box=np.array([2, 2, 20, 20]))
    result = ev.compute()
    # theta < 0.5: both blobs; the largest is the big one (IoU 0), all contours include the small one.
    # theta in [0.5, 0.9): only the small blob: box (24,24,28,28) vs (24,24,27,27) -> IoU 16/25 = 0.64.
    assert result.curves["v1"][:50] == [0.0] * 50 and result.curves["v1"][50:90] == [100.0] * 40
    assert result.curves["50"][:90] == [100.0] * 90 and result.curves["50"][90:] == [0.0] * 10
    assert result.best_theta["v1"] == pytest.approx(0.5) and result.best_theta["50"] == 0.0
    assert result.maxboxacc_v2_by_iou == {"30": 100.0, "50": 100.0, "70": 0.0}
    largest, best = sweep_ious(cam, np.array([[24, 24, 27, 27]]), sweep_thresholds(), "float")
    assert largest[:50].max() < 0.05 and best[:50].max() == pytest.approx(0.64)


def test_gt_known_and_top1_loc_need_both_conditions() -> None:
    ev = Evaluator()
    gt = np.array([[0, 0, 9, 19]])
    hit = np.array([0, 0, 9, 9])  # inclusive IoU 100 / 200 = 0.5 exactly: a hit (>=); exclusive would miss
    miss = np.array([0, 0, 4, 4])
    cam = np.zeros((20, 20), np.float32)
    for box, correct in ((hit, True), (hit, False), (miss, True), (miss, False)):
        ev.accumulate(cam, gt, fixed_box=box, top1_correct=correct)
    result = ev.compute()
    assert result.gt_known_loc == 50.0
    assert result.top1_loc == 25.0
    assert result.maxboxacc_v2 == 0.0  # an all-zero map has no foreground at any theta


def test_fixed_threshold_mode() -> None:
    ev = Evaluator(sweep=False)
    gt = np.array([[10, 10, 19, 19]])
    ev.accumulate(None, gt, fixed_box=np.array([0, 0, 5, 5]), fixed_boxes=np.array([[0, 0, 5, 5], [10, 10, 19, 19]]))
    result = ev.compute()
    assert (result.gt_known_loc, result.maxboxacc_v1, result.maxboxacc_v2) == (0.0, 0.0, 100.0)
    assert not result.sweep and result.curves == {} and result.pxap is None
    with pytest.raises(ParameterError, match="fixed_boxes"):
        ev.accumulate(None, gt, fixed_box=np.array([0, 0, 5, 5]))


def test_pxap_by_hand() -> None:
    ev = Evaluator()
    scores = np.array([[0.5, 0.7]], np.float32)
    ev.accumulate(scores, np.array([[0, 0, 0, 0]]), np.array([0, 0, 0, 0]), gt_mask=np.array([[True, False]]))
    assert ev.compute().pxap == pytest.approx(50.0)  # negative ranked first: precision 1/2 at recall 1
    ev.reset()
    ev.accumulate(scores, np.array([[0, 0, 0, 0]]), np.array([0, 0, 0, 0]), gt_mask=np.array([[False, True]]))
    assert ev.compute().pxap == pytest.approx(100.0)


def test_errors_name_the_argument() -> None:
    ev = Evaluator()
    with pytest.raises(ParameterError, match="accumulate"):
        ev.compute()
    with pytest.raises(ParameterError, match="gt_boxes"):
        ev.accumulate(np.zeros((4, 4), np.float32), np.zeros((0, 4)), np.zeros(4))
    with pytest.raises(ParameterError, match="scoremap"):
        ev.accumulate(None, np.array([[0, 0, 1, 1]]), np.zeros(4))
    with pytest.raises(ParameterError, match="thresholds"):
        sweep_ious(np.zeros((4, 4)), np.array([[0, 0, 1, 1]]), np.array([0.5, 0.1]))
    with pytest.raises(ParameterError, match="iou_thresholds"):
        Evaluator(iou_thresholds=(0.0, 0.5))


def random_maps(rng: np.random.Generator) -> list[np.ndarray]:
    """Smooth CAM-like maps, PaS plateaus, quantised maps (many equal masks), noise, rings, edge blobs."""
    maps = []
    for _ in range(4):
        cam = normalize(upsample(rng.normal(size=(7, 7)).astype(np.float32), (64, 80)))
        maps += [cam, pas_normalize(cam, 90.0), np.round(cam, 1)]
    maps.append(rng.random((40, 40)).astype(np.float32))  # many contours and holes
    ring = np.zeros((50, 50), np.float32)
    ring[5:45, 5:45], ring[15:35, 15:35], ring[22:28, 22:28] = 0.6, 0.2, 0.9
    maps.append(ring)
    edge = np.zeros((30, 30), np.float32)
    edge[:10, :], edge[20:, 25:] = 0.7, 0.95  # blobs touching the image border
    maps += [edge, np.zeros((16, 16), np.float32)]
    return maps


@pytest.mark.parametrize("thresholding", ["8bit", "float"])
@pytest.mark.parametrize("step", [0.01, 0.001])
def test_vectorised_sweep_equals_naive_loop(rng: np.random.Generator, thresholding: str, step: float) -> None:
    thresholds = sweep_thresholds(step)
    for cam in random_maps(rng)[:: 1 if step == 0.01 else 4]:
        height, width = cam.shape
        gt = np.array([[0, 0, width // 2, height // 2], [width // 3, height // 4, width - 1, height - 1]])
        expected = naive_sweep(cam, gt, thresholds, thresholding)
        got = sweep_ious(cam, gt, thresholds, thresholding)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


def test_format_rows() -> None:
    ev = Evaluator()
    ev.accumulate(nested_squares(), np.array([[2, 2, 14, 14]]), np.array([2, 2, 15, 15]), top1_correct=True)
    rows = format_rows({"cam": ev.compute()})
    assert rows[0].startswith("config") and rows[1].split()[:4] == ["cam", "100.0", "100.0", "100.0"]
    assert ev.compute().to_dict()["curves"]["thresholds"][1] == 0.01


def test_mask_iou_hand_computed() -> None:
    from cam_core.evaluate.metrics import mask_iou

    a = np.zeros((4, 4), bool)
    a[:2, :2] = True  # 4 pixels
    b = np.zeros((4, 4), bool)
    b[1:3, 1:3] = True  # 4 pixels, overlap 1 -> 1 / 7
    assert mask_iou(a, b) == pytest.approx(1 / 7)
    assert mask_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0


def test_evaluator_reports_mean_mask_iou() -> None:
    from cam_core.evaluate.metrics import Evaluator

    evaluator = Evaluator(sweep=False)
    gt = np.zeros((8, 8), bool)
    gt[2:6, 2:6] = True
    half = gt.copy()
    half[2:6, 4:6] = False  # IoU 0.5
    for pred in (gt, half):
        evaluator.accumulate(None, np.array([[2, 2, 5, 5]]), np.array([2, 2, 5, 5]), True, gt,
                             np.array([[2, 2, 5, 5]]), pred_mask=pred)  # fmt: skip
    assert evaluator.compute().mask_iou == pytest.approx(75.0)
