"""Parity with clovaai/wsolevaluation on its own unit-test inputs.

The inputs and expected values marked "WE" are transcribed from wsolevaluation's ``evaluation_test.py``
(Copyright (c) 2020-present NAVER Corp., MIT License; https://github.com/clovaai/wsolevaluation):
``test_calculate_multiple_iou_*``, ``test_resize_bbox_*`` and ``test_compute_bboxes_from_scoremaps_*``.
Its box evaluator is only tested on metadata files, so the MaxBoxAccV2 values below are computed by hand
from WE's algorithm (``BoxEvaluator.accumulate`` with ``multi_contour_eval``: per threshold, the best IoU
over every contour box x GT box; per IoU delta, the max over thresholds of the share of images reaching it).
"""

from __future__ import annotations

import numpy as np
import pytest

from cam_core.boxes import box_iou, scale_boxes
from cam_core.errors import ParameterError
from cam_core.evaluate.metrics import Evaluator, sweep_boxes, sweep_thresholds

# WE: array[y][x]
UNIMODAL = np.array(
    [[0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.4, 0.4, 0.4, 0.6], [0.0, 0.4, 1.0, 0.8, 0.6], [0.0, 0.4, 0.4, 0.4, 0.6]]
)
MULTIMODAL = np.array(
    [[0.4, 0.0, 0.2, 0.2, 0.2], [0.4, 0.4, 0.0, 0.4, 0.0], [0.0, 0.0, 0.0, 0.4, 0.0], [1.0, 0.6, 0.8, 0.2, 0.2]]
)
THRESHOLDS = np.arange(0, 1, 0.2)  # WE's scoremap_threshold_list in these tests


def largest_boxes(scoremap: np.ndarray) -> list[list[int]]:
    """The largest-contour box at each WE threshold, from the vectorised 8-bit sweep."""
    boxes, _, largest, group_of = sweep_boxes(scoremap, THRESHOLDS, "8bit")
    return boxes[largest][group_of].tolist()


def test_iou_matches_we() -> None:
    np.testing.assert_array_equal(box_iou(np.zeros((3, 4)), np.zeros((5, 4))), np.ones((3, 5)))  # degenerate
    eye = np.array([[1, 1, 3, 3], [4, 4, 5, 5]])
    np.testing.assert_array_equal(box_iou(eye, eye), np.eye(2))
    assert box_iou([1, 2, 5, 6], [3, 1, 4, 5])[0, 0] == pytest.approx(8 / 27, abs=1e-6)
    with pytest.raises(ParameterError):
        box_iou([1, 1, 0, 0], [1, 1, 2, 2])


def test_gt_box_scaling_matches_we_resize_bbox() -> None:
    # WE: resize_bbox((1, 2, 4, 3), image (w 10, h 20), resize (w 35, h 10)) == (3, 1, 14, 1); ours takes (H, W).
    assert scale_boxes([1, 2, 4, 3], (20, 10), (10, 35), "truncate").tolist() == [[3, 1, 14, 1]]
    assert scale_boxes([1, 2, 1, 2], (3, 3), (3, 3), "truncate").tolist() == [[1, 2, 1, 2]]
    assert scale_boxes([1, 2, 4, 3], (20, 10), (10, 35)).tolist() == [[4, 1, 14, 2]]  # rounding differs


def test_boxes_from_scoremaps_match_we() -> None:
    assert largest_boxes(np.zeros((3, 3))) == [[0, 0, 0, 0]] * 5
    assert largest_boxes(UNIMODAL) == [[1, 1, 4, 3], [1, 1, 4, 3], [2, 1, 4, 3], [2, 2, 4, 3], [2, 2, 3, 3]]
    assert largest_boxes(MULTIMODAL) == [[0, 0, 4, 3], [0, 0, 2, 2], [0, 3, 3, 3], [2, 3, 3, 3], [0, 3, 1, 3]]


def test_all_contour_boxes_by_hand() -> None:
    """Multimodal map, 8-connected foreground of uint8(255 s) > int(255 theta), theta = 0, .2, .4, .6, .8."""
    boxes, starts, _, group_of = sweep_boxes(MULTIMODAL, THRESHOLDS, "8bit")
    per_threshold = [sorted(map(tuple, np.split(boxes, starts[1:])[g].tolist())) for g in group_of]
    assert per_threshold == [
        [(0, 0, 4, 3)],  # one component through the diagonals
        [(0, 0, 2, 2), (0, 1, 4, 3)],  # top-left L; the rest joined by the (2,3)-(3,2) diagonal
        [(0, 3, 3, 3)],  # bottom row 1.0, 0.6, 0.8
        [(0, 3, 1, 3), (2, 3, 3, 3)],  # 1.0 and 0.8, not adjacent
        [(0, 3, 1, 3)],  # 1.0 only
    ]


def test_maxboxacc_v1_v2_by_hand() -> None:
    """Three images on WE's maps; per-threshold best IoU over all contours x GT (theta = 0, .2, .4, .6, .8):

    A unimodal, GT (1,1,2,2): 1/3, 1/3, 2/11, 1/9, 1/7 (one contour each, so largest = all).
    B multimodal, GT (0,3,1,3): all contours 0.1, 2/15, 1/2, 1, 1; largest only 0.1, 0, 1/2, 0, 1.
    C unimodal, GT (2,2,4,3): 1/2, 1/2, 2/3, 1, 2/3.
    delta .3 -> hits 2,2,2,2,2; .5 -> 1,1,2,2,2; .7 -> 0,0,0,2,1: each max 2/3. V1 (largest, .5) -> 1,1,2,1,2.
    """
    ev = Evaluator(step=0.2)  # np.arange(0, 1, 0.2), 8-bit, as WE
    np.testing.assert_array_equal(ev.thresholds, THRESHOLDS)
    for scoremap, gt in ((UNIMODAL, [1, 1, 2, 2]), (MULTIMODAL, [0, 3, 1, 3]), (UNIMODAL, [2, 2, 4, 3])):
        ev.accumulate(scoremap, np.array([gt]), fixed_box=np.zeros(4))
    result = ev.compute()
    assert result.maxboxacc_v2_by_iou == pytest.approx({"30": 200 / 3, "50": 200 / 3, "70": 200 / 3})
    assert result.maxboxacc_v2 == pytest.approx(200 / 3)
    assert result.curves["30"] == pytest.approx([200 / 3] * 5)
    assert result.curves["50"] == pytest.approx([100 / 3, 100 / 3, 200 / 3, 200 / 3, 200 / 3])
    assert result.curves["70"] == pytest.approx([0, 0, 0, 200 / 3, 100 / 3])
    assert result.curves["v1"] == pytest.approx([100 / 3, 100 / 3, 200 / 3, 100 / 3, 200 / 3])
    assert result.maxboxacc_v1 == pytest.approx(200 / 3)
    assert result.best_theta == pytest.approx({"v1": 0.4, "30": 0.0, "50": 0.4, "70": 0.6})


def test_we_grid_default_and_fine() -> None:
    assert sweep_thresholds(0.01).tolist() == list(np.arange(0, 1, 0.01))
    assert sweep_thresholds(0.001).tolist() == list(np.arange(0, 1, 0.001))
