"""cam_core.family: torchcam's weights combined in cam_core, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

import cam_core
from cam_core.errors import ParameterError
from cam_core.family import METHODS, WITHHELD, _Net, family_map, identity_gap


@pytest.fixture
def tiny_case(tiny_model: cam_core.LoadedModel) -> tuple[np.ndarray, cam_core.Analysis, np.ndarray]:
    """A random photo, its plain-CAM analysis and the hand gradient ``g = W[c] / (h w)`` for class 1."""
    image = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    analysis = cam_core.analyze(tiny_model, image)
    height, width = analysis.feature_size
    return image, analysis, analysis.class_weights[1] / (height * width)


def test_gradcam_and_xgradcam_are_relu_of_gradient_weighted_features(tiny_model, tiny_case) -> None:
    image, analysis, grad = tiny_case
    features = analysis.feature_maps  # (C, h, w), ReLU features
    expected = np.maximum(np.einsum("c,chw->hw", grad, features), 0.0)
    for method in ("gradcam", "xgradcam"):
        np.testing.assert_allclose(family_map(tiny_model, image, 1, method), expected, rtol=1e-4, atol=1e-7)


def test_nwc_and_layercam_clamp_the_gradient(tiny_model, tiny_case) -> None:
    image, analysis, grad = tiny_case
    assert (grad < 0).any() and (grad > 0).any()  # the clamp matters on this case
    expected = np.maximum(np.einsum("c,chw->hw", np.maximum(grad, 0.0), analysis.feature_maps), 0.0)
    np.testing.assert_allclose(family_map(tiny_model, image, 1, "gradcam", nwc=True), expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(family_map(tiny_model, image, 1, "layercam"), expected, rtol=1e-4, atol=1e-7)
    with pytest.raises(ParameterError, match="undefined"):
        family_map(tiny_model, image, 1, "layercam", nwc=True)


def test_torchcam_gradcampp_misses_the_papers_alpha(tiny_model, tiny_case) -> None:
    """Why Grad-CAM++ is withheld: the paper's w_k = h w · g^2 ReLU(g) / (2 g^2 + S_k g^3) for a constant
    gradient g; torchcam 0.5.0 returns h w · g^2 ReLU(g) (its alpha division acts on a copy)."""
    image, analysis, grad = tiny_case
    features = analysis.feature_maps.astype(np.float64)
    height, width = analysis.feature_size
    sums = features.sum(axis=(1, 2))  # S_k
    g = grad.astype(np.float64)
    weights = height * width * g**2 * np.maximum(g, 0.0) / (2 * g**2 + sums * g**3 + 1e-8)
    net = _Net(tiny_model.model)
    batch = cam_core.preprocess(image, tiny_model.data_config)[None].requires_grad_(True)
    with WITHHELD["gradcampp"](net, "features") as extractor:
        got = extractor._get_weights(1, net(batch))[0][0].detach().double().numpy()  # (C,)
    np.testing.assert_allclose(got, height * width * g**2 * np.maximum(g, 0.0), rtol=1e-4, atol=1e-12)
    assert not np.allclose(got, weights, rtol=1e-2)


def test_identity_gradcam_is_relu_cam_over_hw_on_the_real_model(default_model, photos) -> None:
    analysis = cam_core.analyze(default_model, photos["chelsea"])
    top = analysis.top_k(1)[0][0]
    gradcam = family_map(default_model, photos["chelsea"], top, "gradcam")
    assert gradcam.shape == analysis.feature_size
    assert identity_gap(analysis, gradcam, top) < 1e-4


def test_unknown_method_and_class_are_refused(tiny_model, tiny_case) -> None:
    image = tiny_case[0]
    with pytest.raises(ParameterError, match="method"):
        family_map(tiny_model, image, 1, "gradcampp")
    with pytest.raises(ParameterError, match="class_index"):
        family_map(tiny_model, image, 99, "gradcam")
    assert set(METHODS) == {"gradcam", "xgradcam", "layercam"}
