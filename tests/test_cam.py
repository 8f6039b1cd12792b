"""CAM formulas against hand-written versions, on hand-built and tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cam_core
from cam_core.cam import Analysis


def _analysis(features: np.ndarray, weights: np.ndarray, bias: np.ndarray | None = None) -> Analysis:
    k = weights.shape[0]
    bias = np.zeros(k, np.float32) if bias is None else bias
    logits = weights @ features.mean(axis=(1, 2)) + bias
    return Analysis(
        model_name="hand", image=np.zeros((8, 8, 3), np.uint8), feature_maps=features.astype(np.float32),
        class_weights=weights.astype(np.float32), bias=bias.astype(np.float32), logits=logits.astype(np.float32),
        probabilities=np.full(k, 1.0 / k, np.float32), class_names=tuple(f"c{i}" for i in range(k)), input_size=(8, 8),
    )  # fmt: skip


def test_cam_hand_computed() -> None:
    # F_0 = arange(4) as 2x2, F_1 = ones; W[0] = (2, -1): M = 2 * F_0 - 1
    features = np.stack([np.arange(4.0).reshape(2, 2), np.ones((2, 2))])
    weights = np.array([[2.0, -1.0]])
    analysis = _analysis(features, weights)
    np.testing.assert_allclose(analysis.cam(0), [[-1.0, 1.0], [3.0, 5.0]])
    np.testing.assert_allclose(analysis.cam(0, "nwc"), [[0.0, 2.0], [4.0, 6.0]])
    np.testing.assert_allclose(analysis.cam(0, "negative"), [[1.0, 1.0], [1.0, 1.0]])


def test_einsum_matches_loop_and_parts(rng: np.random.Generator) -> None:
    features = rng.normal(size=(7, 3, 5))  # SiLU-like: some negative values
    weights = rng.normal(size=(4, 7))
    analysis = _analysis(features, weights)
    for c in range(4):
        loop = sum(weights[c, k] * features[k] for k in range(7))
        np.testing.assert_allclose(analysis.cam(c), loop, rtol=1e-5, atol=1e-5)
        clamped = sum(max(weights[c, k], 0.0) * features[k] for k in range(7))
        np.testing.assert_allclose(analysis.cam(c, "nwc"), clamped, rtol=1e-5, atol=1e-5)
        plus, minus = analysis.cam(c, "positive"), analysis.cam(c, "negative")
        np.testing.assert_allclose(plus - minus, analysis.cam(c), rtol=1e-5, atol=1e-5)


def test_cam_mean_plus_bias_equals_logit(tiny_model: cam_core.LoadedModel, rng: np.random.Generator) -> None:
    image = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    analysis = cam_core.analyze(tiny_model, image)
    for c in range(analysis.num_classes):
        assert analysis.cam(c).mean() + analysis.bias[c] == pytest.approx(float(analysis.logits[c]), abs=1e-5)
    with torch.no_grad():
        expected = tiny_model.model(cam_core.preprocess(image, tiny_model.data_config)[None])[0].numpy()
    np.testing.assert_allclose(analysis.logits, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(analysis.probabilities.sum(), 1.0, rtol=1e-6)


def test_default_model_identity_on_photo(default_model: cam_core.LoadedModel, photos: dict) -> None:
    analysis = cam_core.analyze(default_model, photos["chelsea"])
    assert analysis.feature_maps.shape == (1280, 7, 7)
    top = analysis.top_k(1)[0][0]
    for c in (top, 0, 999):
        logit = float(analysis.cam(c).astype(np.float64).mean() + analysis.bias[c])
        assert logit == pytest.approx(float(analysis.logits[c]), abs=1e-3)


def test_analyze_leaves_model_untouched(tiny_model: cam_core.LoadedModel, rng: np.random.Generator) -> None:
    model = tiny_model.model
    model.train()  # a caller's training state must come back as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cam_core.analyze(tiny_model, rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8))
    assert all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())
    assert hooks == 0
    assert all(p.grad is None for p in model.parameters())


def test_class_index_errors(tiny_model: cam_core.LoadedModel) -> None:
    analysis = cam_core.analyze(tiny_model, np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(cam_core.ClassIndexError, match="class_index"):
        analysis.cam(4)
    with pytest.raises(cam_core.ClassIndexError):
        analysis.cam(-1)
    with pytest.raises(cam_core.ClassIndexError, match="int"):
        analysis.cam("1")  # type: ignore[arg-type]
    with pytest.raises(cam_core.ParameterError, match="variant"):
        analysis.cam(0, "grad")  # type: ignore[arg-type]


def test_non_finite_map_is_refused() -> None:
    features = np.ones((2, 2, 2))
    features[0, 0, 0] = np.nan
    with pytest.raises(cam_core.NonFiniteMapError):
        _analysis(features, np.ones((1, 2))).cam(0)
    with pytest.raises(cam_core.NonFiniteMapError):
        cam_core.normalize(np.array([[0.0, np.inf]]))


def test_normalize_and_upsample() -> None:
    np.testing.assert_allclose(cam_core.normalize(np.array([[2.0, 4.0], [3.0, 6.0]])), [[0, 0.5], [0.25, 1]])
    assert not cam_core.normalize(np.full((3, 3), 7.0)).any()
    up = cam_core.upsample(np.arange(4, dtype=np.float32).reshape(2, 2), (30, 20))
    assert up.shape == (30, 20) and up.dtype == np.float32
    assert up[0, 0] < up[-1, -1]  # orientation is kept: top-left low, bottom-right high


def test_preprocess_rejects_non_uint8(tiny_model: cam_core.LoadedModel) -> None:
    with pytest.raises(cam_core.InvalidImageError, match="uint8"):
        cam_core.preprocess(np.zeros((8, 8, 3), np.float32), tiny_model.data_config)
