"""Registry, exactness check, bundled weights, and refusals."""

from __future__ import annotations

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
    source = torch.load(models.bundled_lite0_path(), map_location="cpu", weights_only=True)
    fresh = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    renamed = models._rename_lite0_keys(source, fresh)
    assert set(renamed) == set(fresh.state_dict())
    torch.testing.assert_close(default_model.model.state_dict()["classifier.weight"], source["_fc.weight"])
    assert default_model.data_config.mean == (0.5, 0.5, 0.5) and default_model.data_config.interpolation == "bicubic"
    assert default_model.class_names[285].startswith("Egyptian cat")
