"""TAP on hand tensors, and the per-channel statistics of P1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cam_core


def test_tap_hand_computed() -> None:
    # channel: [[0, 1], [4, 10]], tau = 0.2 -> threshold 2 -> keep 4 and 10 -> 7.0 (GAP would be 3.75)
    x = torch.tensor([[[[0.0, 1.0], [4.0, 10.0]]]])
    assert cam_core.ThresholdedAvgPool2d(0.2)(x).item() == pytest.approx(7.0)
    assert cam_core.tap_pool(x.numpy()[0], 0.2)[0] == pytest.approx(7.0)


def test_tap_equals_gap_when_all_pixels_are_above_threshold(rng: np.random.Generator) -> None:
    x = torch.from_numpy(rng.uniform(1.0, 2.0, size=(2, 3, 4, 5)).astype(np.float32))  # min > 0.1 * max
    torch.testing.assert_close(cam_core.ThresholdedAvgPool2d(0.1)(x), x.mean(dim=(2, 3)))


def test_tau_zero_is_not_gap() -> None:
    x = torch.tensor([[[[0.0, 0.0], [2.0, 4.0]]]])  # zeros are dropped: (2 + 4) / 2, not 6 / 4
    assert cam_core.ThresholdedAvgPool2d(0.0)(x).item() == pytest.approx(3.0)


def test_all_dropped_channel_counts_one() -> None:
    x = torch.full((1, 1, 2, 2), -1.0)  # max -1, threshold -0.1: nothing is > -0.1 -> 0 / max(1, 0)
    assert cam_core.ThresholdedAvgPool2d(0.1)(x).item() == 0.0


def test_torch_matches_numpy(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 6, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(cam_core.ThresholdedAvgPool2d(0.3)(torch.from_numpy(x)).numpy(),
                               cam_core.tap_pool(x, 0.3), rtol=1e-5, atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0])
def test_tau_validation(bad: float) -> None:
    with pytest.raises(cam_core.ParameterError, match="tau"):
        cam_core.ThresholdedAvgPool2d(bad)


def test_channel_stats(rng: np.random.Generator) -> None:
    features = rng.uniform(0, 1, size=(5, 4, 4)).astype(np.float32)
    features[0] = 0.0
    features[0, 1, 2] = 8.0  # a peaky, small-area channel
    weights = rng.normal(size=5).astype(np.float32)
    stats = cam_core.channel_stats(features, weights, tau=0.1)
    assert stats.active_fraction[0] == pytest.approx(1 / 16)
    assert stats.gap[0] == pytest.approx(0.5) and stats.tap[0] == pytest.approx(8.0) and stats.peak[0] == 8.0
    cam = np.einsum("c,chw->hw", weights, features)
    assert stats.cam_peak_contribution.sum() == pytest.approx(cam.max(), rel=1e-5)
    assert stats.logit_contribution.sum() == pytest.approx(cam.mean(), rel=1e-5, abs=1e-6)


def test_tap_module_swaps_into_timm_head() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet18", pretrained=False, num_classes=10)
    model.global_pool = cam_core.ThresholdedAvgPool2d(0.1)
    loaded = cam_core.wrap_model(model, "resnet18-tap", "random init (not pretrained)")
    assert loaded.pooling == "tap" and loaded.tap_tau == 0.1
