"""Boxes from masks and IoU with wsolevaluation's inclusive conventions."""

from __future__ import annotations

import numpy as np
import pytest

import cam_core


def test_box_of_synthetic_square() -> None:
    mask = np.zeros((20, 30), bool)
    mask[5:10, 8:20] = True  # rows 5..9, cols 8..19
    # boundingRect gives x=8, y=5, w=12, h=5 -> (8, 5, 8 + 12, 5 + 5), wsolevaluation's convention
    np.testing.assert_array_equal(cam_core.largest_box(mask), [8, 5, 20, 10])


def test_box_is_clipped_at_the_border() -> None:
    mask = np.zeros((10, 10), bool)
    mask[6:, 7:] = True
    np.testing.assert_array_equal(cam_core.largest_box(mask), [7, 6, 9, 9])


def test_largest_versus_all_contours() -> None:
    mask = np.zeros((40, 40), bool)
    mask[2:6, 2:6] = True  # small blob
    mask[20:35, 10:30] = True  # large blob
    boxes = cam_core.mask_to_boxes(mask)
    assert len(boxes) == 2
    np.testing.assert_array_equal(cam_core.largest_box(mask), [10, 20, 30, 35])


def test_empty_mask_gives_zero_box() -> None:
    np.testing.assert_array_equal(cam_core.mask_to_boxes(np.zeros((5, 5), bool)), [[0, 0, 0, 0]])


def test_iou_hand_computed() -> None:
    # a: 0..9 x 0..9 (100 px), b: 5..14 x 5..14 (100 px); overlap 5..9 x 5..9 = 25 -> 25 / 175
    assert cam_core.box_iou([0, 0, 9, 9], [5, 5, 14, 14])[0, 0] == pytest.approx(25 / 175)
    # wsolevaluation's own check: [0,0,1,2] vs [0,1,2,3]: inter 2*2=4? areas 2*3=6 and 3*3=9
    assert cam_core.box_iou([0, 0, 1, 2], [0, 1, 2, 3])[0, 0] == pytest.approx(4 / 11)
    assert cam_core.box_iou([0, 0, 4, 4], [10, 10, 12, 12])[0, 0] == 0.0
    assert cam_core.box_iou([3, 3, 3, 3], [3, 3, 3, 3])[0, 0] == 1.0


def test_iou_pairwise_shape_and_flipped_box() -> None:
    assert cam_core.box_iou(np.zeros((3, 4)), np.zeros((2, 4))).shape == (3, 2)
    with pytest.raises(cam_core.ParameterError, match="flipped"):
        cam_core.box_iou([5, 0, 1, 3], [0, 0, 1, 1])
    with pytest.raises(cam_core.ParameterError, match="2-D"):
        cam_core.mask_to_boxes(np.zeros((2, 2, 2), bool))


def test_scale_boxes() -> None:
    out = cam_core.scale_boxes(np.array([[10, 20, 99, 199]]), (200, 100), (100, 50))
    np.testing.assert_array_equal(out, [[5, 10, 49, 99]])
