"""cam_core.family: torchcam's weights combined in cam_core, checked against hand-computed values."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torchcam.methods import GradCAMpp

import cam_core
from cam_core.errors import ParameterError
from cam_core.family import METHODS, GradCAMppFixed, _Head, family_map, family_maps, identity_gap
from cam_core.train.checkpoint import load_checkpoint
from tests.helpers import ROOT


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


def _gradcampp_weights(tiny_model, tiny_case) -> tuple[np.ndarray, np.ndarray]:
    """By hand: the paper's weights ``h w g^2 ReLU(g) / (2 g^2 + S_k g^3 + eps)`` and torchcam's ``h w g^2 ReLU(g)``.

    ``eps = 1e-8`` is torchcam's underflow guard (the tiny model's g^2 is ~1e-5, so it shows at 1e-3).
    """
    _, analysis, grad = tiny_case
    height, width = analysis.feature_size
    sums = analysis.feature_maps.astype(np.float64).sum(axis=(1, 2))  # S_k
    g = grad.astype(np.float64)
    return height * width * g**2 * np.maximum(g, 0.0) / (
        2 * g**2 + sums * g**3 + 1e-8
    ), height * width * g**2 * np.maximum(g, 0.0)


def _class_one_weights(extractor_class: Any, loaded: Any, image: np.ndarray) -> np.ndarray:
    """float64 (C,) channel weights of class 1 that ``extractor_class`` (a torchcam extractor) computes on the tiny
    model's ``features``."""
    head = _Head(loaded.model)
    given = torch.tensor(cam_core.analyze(loaded, image).feature_maps)[None].requires_grad_(True)  # (1, C, h, w)
    with extractor_class(head, "features") as extractor:
        return extractor._get_weights(1, head(given))[0][0].detach().double().numpy()


def test_torchcam_gradcampp_misses_the_papers_alpha(tiny_model, tiny_case) -> None:
    """Why cam_core corrects torchcam's Grad-CAM++: the paper's w_k = h w g^2 ReLU(g) / (2 g^2 + S_k g^3) for a constant
    gradient g; torchcam 0.5.0 returns h w · g^2 ReLU(g) (its alpha division acts on a copy)."""
    paper, buggy = _gradcampp_weights(tiny_model, tiny_case)
    got = _class_one_weights(GradCAMpp, tiny_model, tiny_case[0])
    np.testing.assert_allclose(got, buggy, rtol=1e-4, atol=1e-12)
    assert not np.allclose(got, paper, rtol=1e-2)


def test_corrected_gradcampp_has_the_papers_weights_and_map(tiny_model, tiny_case) -> None:
    image, analysis, _ = tiny_case
    paper, buggy = _gradcampp_weights(tiny_model, tiny_case)
    got = _class_one_weights(GradCAMppFixed, tiny_model, image)
    np.testing.assert_allclose(got, paper, rtol=1e-4, atol=1e-12)
    assert not np.allclose(got, buggy, rtol=1e-2)
    expected = np.maximum(np.einsum("c,chw->hw", paper, analysis.feature_maps), 0.0)
    np.testing.assert_allclose(family_map(tiny_model, image, 1, "gradcampp"), expected, rtol=1e-4, atol=1e-9)
    with pytest.raises(ParameterError, match="undefined for Grad-CAM\\+\\+"):
        family_map(tiny_model, image, 1, "gradcampp", nwc=True)


class _SquareHead(nn.Module):
    """``Y = (sum_ij A^2, sum_ij A^3)`` of a 1x1 conv: a per-pixel gradient ``g = 2A`` (class 0), unlike GAP."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(1, 2, 1)
        with torch.no_grad():
            self.features.weight.copy_(torch.tensor([[[[1.0]]], [[[-0.5]]]]))
            self.features.bias.copy_(torch.tensor([0.3, 0.2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.features(x)
        return torch.stack([(a**2).sum((1, 2, 3)), (a**3).sum((1, 2, 3))], 1)  # (B, 2)


def test_corrected_gradcampp_alpha_is_per_pixel_as_in_the_paper() -> None:
    """Eq. 19 with a non-constant gradient: ``alpha_ij = g_ij^2 / (2 g_ij^2 + g_ij^3 sum_ab A_ab)``."""
    net = _SquareHead().eval()
    x = torch.tensor(np.random.default_rng(0).normal(size=(1, 1, 3, 4)), dtype=torch.float32, requires_grad=True)
    with GradCAMppFixed(net, "features") as extractor:
        got = extractor._get_weights(0, net(x))[0][0].detach().double().numpy()  # (2,)
        act = extractor.hook_a[0][0].detach().double().numpy()  # (2, 3, 4)
    g = 2 * act
    alpha = np.where(g**2 > 0, g**2 / (2 * g**2 + g**3 * act.sum(axis=(1, 2), keepdims=True)), 0.0)
    np.testing.assert_allclose(got, (alpha * np.maximum(g, 0.0)).sum(axis=(1, 2)), rtol=1e-5)
    torchcams = (g**2 / (2 * g**2 + (g**3 * act).sum(axis=(1, 2), keepdims=True)) * np.maximum(g, 0.0)).sum((1, 2))
    assert not np.allclose(got, torchcams, rtol=1e-2)  # torchcam's denominator sums A g^3 over pixels instead


def test_identity_gradcam_is_relu_cam_over_hw_on_the_real_model(default_model, photos) -> None:
    analysis = cam_core.analyze(default_model, photos["chelsea"])
    top = analysis.top_k(1)[0][0]
    gradcam = family_map(default_model, photos["chelsea"], top, "gradcam")
    assert gradcam.shape == analysis.feature_size
    assert identity_gap(analysis, gradcam, top) < 1e-4


def test_unknown_method_and_class_are_refused(tiny_model, tiny_case) -> None:
    image = tiny_case[0]
    with pytest.raises(ParameterError, match="method"):
        family_map(tiny_model, image, 1, "scorecam")
    with pytest.raises(ParameterError, match="class_index"):
        family_map(tiny_model, image, 99, "gradcam")
    assert set(METHODS) == {"gradcam", "gradcampp", "xgradcam", "layercam"}


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_the_published_family_tables_are_the_measured_json() -> None:
    """Every number of docs/methods.md's 120-photo tables is the committed run's (docs/methods_family.json)."""
    runs = json.loads((ROOT / "docs" / "methods_family.json").read_text())["runs"]
    wide, narrow = runs["448/16"], runs["224/32"]
    assert wide["n_images"] == narrow["n_images"] == 120
    lines = (ROOT / "docs" / "methods.md").read_text().splitlines()
    configs = {_cells(x)[0].strip("`"): _cells(x)[1:] for x in lines if re.match(r"\| `[a-z+]+` \| \d", x)}
    assert set(configs) == set(wide["configs"]) == set(narrow["configs"])
    for name, cells in configs.items():
        want = [
            run["configs"][name][key] for run in (wide, narrow) for key in ("maxboxacc_v2", "gt_known_loc", "top1_loc")
        ]
        assert cells == [f"{value:.1f}" for value in want], name
    pairs = [_cells(x) for x in lines if re.match(r"\| `[a-z+]+` − `[a-z+]+` \|", x)]
    assert len(pairs) == len(wide["pairs"]) == len(narrow["pairs"])
    for cells, p, q in zip(pairs, wide["pairs"], narrow["pairs"], strict=True):
        assert cells[0] == f"`{p['b']}` − `{p['a']}`" and (p["a"], p["b"]) == (q["a"], q["b"])
        for cell, r in zip(cells[1:], (p, q), strict=True):
            assert cell == f"{r['estimate']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]", cells[0]
    rates = {_cells(x)[0]: _cells(x)[1:3] for x in lines if re.match(r"\| [a-z]+ \| \d+\.\d\d \| \d+\.\d\d \|", x)}
    assert rates == {m: [f"{wide['rates'][m]['images_per_s']:.2f}", f"{narrow['rates'][m]['images_per_s']:.2f}"]
                     for m in wide["rates"]}  # fmt: skip
    # the identities the algebra predicts hold on every photo (differences exactly 0)
    for run in (wide, narrow):
        same = {(p["a"], p["b"]) for p in run["pairs"] if p["estimate"] == p["low"] == p["high"] == 0.0}
        assert {("gradcam", "xgradcam"), ("nwc+pas", "gradcam+nwc+pas"), ("nwc+pas", "xgradcam+nwc+pas")} <= same
        for a, b in (("nwc", "layercam"), ("nwc", "gradcam+nwc"), ("nwc+pas", "layercam+pas")):
            assert run["configs"][a] == run["configs"][b]


@pytest.mark.parametrize(
    "checkpoint", ["lite0_gap_head", "lite0_gap_head_448s16", "lite0_tap_head", "lite0_tap_head_448s16"]
)
def test_identity_holds_on_every_offline_cam_exact_checkpoint(checkpoint: str, photos) -> None:
    """Grad-CAM = ReLU(CAM)/(h w) on the shipped heads, TAP included: TAP's gradient is W/|S_k| on the |S_k|
    pixels above its threshold and 0 elsewhere, so its mean over the map is still W/(h w). Per pixel it is
    not constant, so XGrad-CAM (a gradient-times-feature average) leaves Grad-CAM on the TAP heads only."""
    loaded = load_checkpoint(ROOT / "assets" / "checkpoints" / f"{checkpoint}.safetensors")
    analysis = cam_core.analyze(loaded, photos["chelsea"])
    top = analysis.top_k(1)[0][0]
    gradcam = family_map(loaded, photos["chelsea"], top, "gradcam")
    assert identity_gap(analysis, gradcam, top) < 1e-5
    xgradcam = family_map(loaded, photos["chelsea"], top, "xgradcam")
    same = np.allclose(xgradcam, gradcam, rtol=1e-3, atol=1e-6 * float(gradcam.max()))
    assert same == (loaded.pooling == "gap")
    layercam = family_maps(loaded, analysis.feature_maps, top, "layercam").plain  # = NWC CAM / (h w) on GAP only
    assert (identity_gap(analysis, layercam, top, "layercam") < 1e-5) == (loaded.pooling == "gap")


def test_the_head_alone_gives_the_full_networks_gradient_maps(default_model, photos) -> None:
    """family_maps runs only the head on cached features; the gradient at F is the whole network's (chain rule),
    checked against autograd through the backbone from the input: Grad-CAM's map, with and without NWC."""
    analysis = cam_core.analyze(default_model, photos["chelsea"])
    top = analysis.top_k(1)[0][0]
    net: Any = default_model.model
    x = cam_core.preprocess(photos["chelsea"], default_model.data_config)[None].requires_grad_(True)
    with torch.enable_grad():
        features = net.forward_features(x)  # (1, C, h, w)
        (grad,) = torch.autograd.grad(net.forward_head(features)[0, top], features)
    weights = grad[0].mean((1, 2)).double().numpy()  # (C,): Grad-CAM's alpha_k
    f = features[0].detach().double().numpy()
    maps = family_maps(default_model, analysis.feature_maps, top, "gradcam")
    scale = float(maps.plain.max())
    for got, w in ((maps.plain, weights), (maps.nwc, np.maximum(weights, 0.0))):
        expected = np.maximum(np.einsum("c,chw->hw", w, f), 0.0)
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * scale)
    assert family_maps(default_model, analysis.feature_maps, top, "layercam").nwc is None  # NWC undefined there


def test_layercam_is_relu_of_nwc_cam_and_gradcampp_has_no_identity(default_model, photos) -> None:
    analysis = cam_core.analyze(default_model, photos["chelsea"])
    top = analysis.top_k(1)[0][0]
    layercam = family_maps(default_model, analysis.feature_maps, top, "layercam").plain
    assert identity_gap(analysis, layercam, top, "layercam") < 1e-5
    assert identity_gap(analysis, layercam, top, "gradcam") > 1e-2  # it is NWC CAM, not CAM
    gradcampp = family_maps(default_model, analysis.feature_maps, top, "gradcampp").plain
    with pytest.raises(ParameterError, match="no identity"):
        identity_gap(analysis, gradcampp, top, "gradcampp")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in cam_core.models.MODELS if cam_core.models.MODELS[n].weights == "hub"])
def test_identities_hold_on_every_hub_architecture_of_the_menu(name: str, photos) -> None:
    """The menu's hub models need a download, so their trained weights are not here; the identities are algebra of the
    head (GAP + linear), so each architecture is checked with timm's random initialisation, CAM-exactness proven by
    ``wrap_model`` as at load: Grad-CAM = ReLU(CAM) / (h w), LayerCAM = ReLU(NWC CAM) / (h w), and XGrad-CAM = Grad-CAM
    up to torchcam's epsilon."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model(cam_core.models.MODELS[name].arch, pretrained=False)
    loaded = cam_core.models.wrap_model(model, name, "random initialisation (architecture only)")
    analysis = cam_core.analyze(loaded, photos["chelsea"], input_size=224)
    top = analysis.top_k(1)[0][0]
    gaps = {m: identity_gap(analysis, family_maps(loaded, analysis.feature_maps, top, m).plain, top, m)
            for m in ("gradcam", "xgradcam", "layercam")}  # fmt: skip
    assert gaps["gradcam"] < 1e-4 and gaps["layercam"] < 1e-4, gaps
    # XGrad-CAM divides by sum_ij F_k + eps (torchcam's eps = 1e-8): exact on non-negative (ReLU) features; where
    # features can be negative (SiLU: EfficientNet-B0) a channel's sum can come near 0 and the eps shows
    negative = float(analysis.feature_maps.min()) < 0
    assert gaps["xgradcam"] < (1e-2 if negative else 1e-4), (gaps, negative)
