"""Paired bootstrap over images: the sweep statistic against the Evaluator, and hand-computed intervals."""

from __future__ import annotations

import numpy as np
import pytest

from cam_core.errors import ParameterError
from cam_core.evaluate.bootstrap import hits_array, paired_difference, resample_counts, sweep_accuracy
from cam_core.evaluate.metrics import Evaluator


def _evaluator(rng: np.random.Generator, n: int = 12) -> Evaluator:
    evaluator = Evaluator(keep_per_image=True)
    for _ in range(n):
        scoremap = np.zeros((40, 40), np.float32)
        x, y = rng.integers(0, 20, 2)
        scoremap[y : y + 20, x : x + 20] = rng.random((20, 20))  # a blob with a random texture
        gt = np.array([[x + rng.integers(-4, 5), y, x + 19, y + 19 + rng.integers(-4, 1)]]).clip(0, 39)
        evaluator.accumulate(scoremap, gt, np.array([x, y, x + 10, y + 10]), bool(rng.random() < 0.7))
    return evaluator


def test_sweep_accuracy_reproduces_the_evaluator(rng: np.random.Generator) -> None:
    evaluator = _evaluator(rng)
    metrics, hits = evaluator.compute(), evaluator.per_image
    assert len(hits) == 12 and hits[0].v2.shape == (3, 100) and hits[0].v1.shape == (100,)
    assert sweep_accuracy(hits_array(hits, "maxboxacc_v2")) == pytest.approx(metrics.maxboxacc_v2)
    assert sweep_accuracy(hits_array(hits, "maxboxacc_v1")) == pytest.approx(metrics.maxboxacc_v1)
    assert sweep_accuracy(hits_array(hits, "gt_known_loc")) == pytest.approx(metrics.gt_known_loc)
    assert sweep_accuracy(hits_array(hits, "top1_loc")) == pytest.approx(metrics.top1_loc)
    assert Evaluator().per_image == []  # off by default


def test_sweep_accuracy_retakes_the_max_per_resample() -> None:
    # 2 images, 1 delta, 2 thetas: image 0 hits only at theta 0, image 1 only at theta 1.
    hits = np.array([[[True, False]], [[False, True]]])
    assert sweep_accuracy(hits) == 50.0
    counts = np.array([[2, 0], [0, 2], [1, 1]])
    np.testing.assert_allclose(sweep_accuracy(hits, counts), [100.0, 100.0, 50.0])  # theta re-chosen each time


def test_resample_counts() -> None:
    counts = resample_counts(7, 500, seed=3)
    assert counts.shape == (500, 7) and (counts.sum(axis=1) == 7).all() and counts.min() >= 0
    np.testing.assert_array_equal(counts, resample_counts(7, 500, seed=3))
    assert not np.array_equal(counts, resample_counts(7, 500, seed=4))
    assert abs(counts.mean() - 1.0) < 1e-12
    with pytest.raises(ParameterError, match="n_images"):
        resample_counts(0)


def test_paired_difference_by_hand() -> None:
    a = np.array([True, False, False, True]).reshape(4, 1, 1)
    b = np.array([True, True, False, True]).reshape(4, 1, 1)
    counts = np.array([[4, 0, 0, 0], [0, 4, 0, 0], [1, 1, 1, 1], [0, 2, 2, 0], [0, 0, 4, 0]])
    # differences per resample: b - a counts image 1 only: 0, 100, 25, 50, 0
    interval = paired_difference(a, b, counts=counts, level=0.5)
    assert interval.estimate == pytest.approx(25.0)
    low, high = np.percentile([0.0, 100.0, 25.0, 50.0, 0.0], [25.0, 75.0])
    assert (interval.low, interval.high) == pytest.approx((low, high))
    assert str(interval) == f"+25.0 [{low:+.1f}, {high:+.1f}]"
    same = paired_difference(a, a, n_resamples=200)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0) and same.n_resamples == 200


def test_paired_difference_errors() -> None:
    a = np.zeros((3, 1, 1), bool)
    with pytest.raises(ParameterError, match="same N"):
        paired_difference(a, np.zeros((4, 1, 1), bool))
    with pytest.raises(ParameterError, match="level"):
        paired_difference(a, a, level=1.0)
    with pytest.raises(ParameterError, match="statistic"):
        hits_array(_evaluator(np.random.default_rng(0), 1).per_image, "pxap")  # type: ignore[arg-type]
