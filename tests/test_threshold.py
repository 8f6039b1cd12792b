"""MaS / PaS thresholds against hand-computed values and numpy."""

from __future__ import annotations

import numpy as np
import pytest

import cam_core
from cam_core.threshold import foreground, threshold


def test_mas_is_theta_times_max() -> None:
    cam = np.array([[0.0, 0.5], [0.25, 1.0]])
    assert cam_core.mas_threshold(cam, 0.2) == pytest.approx(0.2)
    np.testing.assert_array_equal(foreground(cam, 0.25), [[False, True], [False, True]])  # strict >


def test_pas_matches_numpy_percentile(rng: np.random.Generator) -> None:
    cam = rng.random((37, 53))
    assert cam_core.pas_threshold(cam, 0.35, 90) == pytest.approx(0.35 * np.percentile(cam, 90))
    # hand-computed: values 0..9 / 9, P_90 by linear interpolation = 8.1 / 9 = 0.9
    ramp = (np.arange(10.0) / 9.0).reshape(2, 5)
    assert cam_core.pas_threshold(ramp, 0.5, 90) == pytest.approx(0.45)


def test_pas_normalize() -> None:
    ramp = (np.arange(10.0) / 9.0).reshape(2, 5)
    out = cam_core.pas_normalize(ramp, 90)
    np.testing.assert_allclose(out.ravel(), np.minimum(1.0, np.arange(10.0) / 8.1), rtol=1e-6)
    assert not cam_core.pas_normalize(np.zeros((4, 4)), 90).any()


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.2"])
def test_theta_validation(bad: object) -> None:
    with pytest.raises(cam_core.ParameterError, match="theta"):
        cam_core.mas_threshold(np.ones((2, 2)), bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -5, 101])
def test_percentile_validation(bad: float) -> None:
    with pytest.raises(cam_core.ParameterError, match="percentile"):
        cam_core.pas_threshold(np.ones((2, 2)), 0.35, bad)


def test_rule_validation_and_presets() -> None:
    with pytest.raises(cam_core.ParameterError, match="rule"):
        threshold(np.ones((2, 2)), "median", 0.5)  # type: ignore[arg-type]
    assert cam_core.PRESETS["paper code"].percentile == 90 and cam_core.PRESETS["paper code"].tau_tap == 0.1
    assert cam_core.PRESETS["LID challenge"].percentile == 98 and cam_core.PRESETS["LID challenge"].tau_tap == 0.05
