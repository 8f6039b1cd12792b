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


def test_presets_carry_their_resolution() -> None:
    """Issue #13: the paper code at the protocol's 224 / 32 (method.md's self-check numbers), the LID entry's 336 crop
    (stride 16), and the app default: the paper code's thresholds on a 28 x 28 map."""
    resolution = {name: (p.input_size, p.output_stride) for name, p in cam_core.PRESETS.items()}
    assert resolution == {"sharp (448 px)": (448, 16), "paper code": (224, 32), "LID challenge": (336, 16)}
    sharp, paper = cam_core.PRESETS["sharp (448 px)"], cam_core.PRESETS["paper code"]
    assert (sharp.theta_mas, sharp.theta_pas, sharp.percentile, sharp.tau_tap) == (0.2, 0.35, 90.0, 0.1)
    assert (paper.theta_mas, paper.theta_pas, paper.percentile, paper.tau_tap) == (0.2, 0.35, 90.0, 0.1)
    lid = cam_core.PRESETS["LID challenge"]
    assert (lid.percentile, lid.tau_tap) == (98.0, 0.05)
    # the map sizes the presets give, by hand: ceil(448 / 16) = 28, ceil(224 / 32) = 7, ceil(336 / 16) = 21
    maps = [cam_core.resolution_label(p.input_size, p.output_stride) for p in cam_core.PRESETS.values()]
    assert maps == ["448 px, stride 16 -> 28x28 map", "224 px, stride 32 -> 7x7 map", "336 px, stride 16 -> 21x21 map"]


def test_8bit_rule_by_hand() -> None:
    """wsolevaluation: foreground = uint8(255 s) > int(theta * max(uint8 map)), i.e. s >= (int(255 theta) + 1) / 255."""
    from cam_core.threshold import quantize, threshold_8bit, threshold_mask

    cam = np.array([[1.0, 0.2019, 0.2040], [0.2, 0.0, 0.6]], np.float32)
    # 255 s = 255, 51.48, 52.02, 51.0, 0, 153 -> q = 255, 51, 52, 51, 0, 153; int(0.2 * 255) = 51
    np.testing.assert_array_equal(quantize(cam), [[255, 51, 52], [51, 0, 153]])
    assert threshold_8bit(quantize(cam), "mas", 0.2) == 51
    value, mask = threshold_mask(cam, "mas", 0.2)
    assert value == pytest.approx(51 / 255)
    np.testing.assert_array_equal(mask, [[True, False, True], [False, False, True]])
    _, float_mask = threshold_mask(cam, "mas", 0.2, thresholding="float")  # 0.2019 > 0.2 counts here
    np.testing.assert_array_equal(float_mask, [[True, True, True], [False, False, True]])
    # PaS on 8 bits (rethinkingCAM): int(theta * P_p(q)); q sorted 0, 51, 51, 52, 153, 255 -> P_50 = 51.5
    assert threshold_8bit(quantize(cam), "pas", 0.5, 50.0) == int(0.5 * 51.5) == 25
    with pytest.raises(cam_core.ParameterError, match="thresholding"):
        threshold_mask(cam, "mas", 0.2, thresholding="int")  # type: ignore[arg-type]


def test_localize_uses_the_8bit_rule(tiny_model: cam_core.LoadedModel) -> None:
    analysis = cam_core.analyze(tiny_model, np.full((32, 32, 3), 90, np.uint8))
    for rule in ("mas", "pas"):
        config = cam_core.LocalizationConfig(rule=rule, theta=0.35)  # type: ignore[arg-type]
        loc = cam_core.localize(analysis, 1, config)
        quantized = (loc.heatmap * 255).astype(np.uint8)
        np.testing.assert_array_equal(loc.mask, quantized > round(loc.threshold * 255))
        assert round(loc.threshold * 255) == pytest.approx(loc.threshold * 255)


def test_apply_rule_reports_its_reference_by_hand() -> None:
    """The value theta multiplies, computed once and carried (issue #12): max or P_p, 8-bit or float."""
    from cam_core.threshold import apply_rule

    cam = np.array([[0.0, 0.1], [0.5, 1.0]])  # 8-bit: [[0, 25], [127, 255]]
    mas = apply_rule(cam, "mas", 0.2)
    assert mas.reference == 1.0 and mas.value == int(0.2 * 255) / 255 == 51 / 255
    pas = apply_rule(cam, "pas", 0.5, 50.0)  # P50 of [0, 25, 127, 255] = 76.0 -> int(0.5 * 76) = 38
    assert pas.reference == 76.0 / 255 and pas.value == 38 / 255
    assert pas.mask.tolist() == [[False, False], [True, True]]
    float_pas = apply_rule(cam, "pas", 0.5, 50.0, "float")  # P50 of [0, 0.1, 0.5, 1] = 0.3
    assert float_pas.reference == pytest.approx(0.3) and float_pas.value == pytest.approx(0.15)
    assert float_pas.mask.tolist() == [[False, False], [True, True]]


def test_localization_carries_its_reference(tiny_model: cam_core.LoadedModel, rng: np.random.Generator) -> None:
    analysis = cam_core.analyze(tiny_model, rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    loc = cam_core.localize(analysis, 1, cam_core.LocalizationConfig(rule="pas", theta=0.35, percentile=90.0))
    expected = float(np.percentile((loc.heatmap * 255).astype(np.uint8), 90)) / 255
    assert loc.reference == expected and loc.threshold == int(0.35 * expected * 255 + 1e-9) / 255
