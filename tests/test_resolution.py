"""Analysis resolution: output stride (timm's dilated last stages), input size, map size, box frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cam_core
from cam_core.models import with_input_size
from cam_core.resolution import check_input_size, resolution_label
from tests.helpers import TinyCNN


@pytest.mark.parametrize(("stride", "cells"), [(32, 2), (16, 4), (8, 8)])
def test_output_stride_gives_a_finer_exact_map(stride: int, cells: int, rng: np.random.Generator) -> None:
    loaded = cam_core.load_model("test_resnet", pretrained=False, output_stride=stride)
    assert loaded.output_stride == stride and loaded.exactness_error < 1e-4  # checked on the dilated model
    analysis = cam_core.analyze(loaded, rng.integers(0, 256, (50, 70, 3), dtype=np.uint8), input_size=64)
    assert analysis.input_size == (64, 64) and analysis.feature_size == (cells, cells)
    assert analysis.output_stride == stride and analysis.resolution == f"64 px, stride {stride} -> {cells}x{cells} map"
    for c in (0, 7):
        assert analysis.cam(c).mean() + analysis.bias[c] == pytest.approx(float(analysis.logits[c]), abs=1e-4)


def test_dilation_keeps_the_weights() -> None:
    plain = cam_core.load_model("test_resnet", pretrained=False)
    dilated = cam_core.load_model("test_resnet", pretrained=False, output_stride=8)
    plain_state, dilated_state = plain.model.state_dict(), dilated.model.state_dict()
    assert plain_state.keys() == dilated_state.keys()
    assert all(plain_state[k].shape == dilated_state[k].shape for k in plain_state)


def test_default_model_dilated_is_exact(photos: dict) -> None:
    loaded = cam_core.load_model(output_stride=16)  # bundled weights, offline
    analysis = cam_core.analyze(loaded, photos["chelsea"])
    assert analysis.feature_size == (14, 14) and loaded.exactness_error < 1e-4
    top = analysis.top_k(1)[0][0]
    assert float(analysis.cam(top).astype(np.float64).mean() + analysis.bias[top]) == pytest.approx(
        float(analysis.logits[top]), abs=1e-3
    )


@pytest.mark.parametrize("name", ["mobilenetv3_small_050", "densenet121"])
def test_unsupported_output_stride_is_a_parameter_error(name: str) -> None:
    with pytest.raises(cam_core.ParameterError, match=rf"`output_stride` 16 is not supported by '{name}'"):
        cam_core.load_model(name, pretrained=False, output_stride=16)


@pytest.mark.parametrize("value", [4, 64, "16", True, 16.0])
def test_bad_output_stride_values(value: object) -> None:
    with pytest.raises(cam_core.ParameterError, match="output_stride"):
        cam_core.load_model("test_resnet", pretrained=False, output_stride=value)  # type: ignore[arg-type]


def test_a_model_that_ignores_output_stride_is_refused() -> None:
    with pytest.raises(cam_core.ParameterError, match="ignores timm's output_stride"):
        cam_core.wrap_model(TinyCNN(), "tiny", "random init", output_stride=16)  # TinyCNN's stride is 4


def test_input_size_is_recorded_and_validated(tiny_model: cam_core.LoadedModel) -> None:
    image = np.zeros((30, 40, 3), np.uint8)
    bigger = with_input_size(tiny_model, 64)
    assert bigger.model is tiny_model.model and tiny_model.data_config.input_size == (32, 32)
    assert cam_core.analyze(bigger, image).feature_size == (16, 16)  # TinyCNN: stride 4
    assert cam_core.analyze(tiny_model, image, input_size=(48, 64)).input_size == (48, 64)
    assert cam_core.load_model("test_resnet", pretrained=False, input_size=96).data_config.input_size == (96, 96)
    for bad in (16, 4096, 224.0, (224,), (224, "224"), True):
        with pytest.raises(cam_core.ParameterError, match="input_size"):
            check_input_size(bad)


def test_resolution_label_predicts_the_measured_map(default_model: cam_core.LoadedModel) -> None:
    analysis = cam_core.analyze(default_model, np.zeros((375, 500, 3), np.uint8), input_size=336)
    assert analysis.feature_size == (11, 11)  # ceil(336 / 32), "same" padding
    assert resolution_label(336, 32) == analysis.resolution == "336 px, stride 32 -> 11x11 map"
    assert resolution_label((448, 320), 16) == "448x320 px, stride 16 -> 28x20 map"


def test_boxes_map_back_to_the_original_photo(tiny_model: cam_core.LoadedModel) -> None:
    image = np.zeros((300, 400, 3), np.uint8)  # a 2x downscaled copy of a 600 x 800 photo
    analysis = cam_core.analyze(tiny_model, image, original_size=(600, 800))
    assert analysis.photo_size == (600, 800) and analysis.image_size == (300, 400)
    np.testing.assert_array_equal(analysis.to_original(np.array([10, 20, 110, 220])), [[20, 40, 220, 440]])
    plain = cam_core.analyze(tiny_model, image)
    assert plain.original_size is None and plain.photo_size == (300, 400)
    np.testing.assert_array_equal(plain.to_original(np.array([10, 20, 110, 220])), [[10, 20, 110, 220]])
    with pytest.raises(cam_core.ParameterError, match="original_size"):
        cam_core.analyze(tiny_model, image, original_size=(0, 800))


def test_checkpoint_rebuilt_with_a_finer_stride(tmp_path: Path) -> None:
    from cam_core.train.checkpoint import build_base, load_checkpoint, save_checkpoint, set_pooling

    loaded, base = build_base("test_efficientnet", pretrained=False, init_seed=3)
    set_pooling(loaded.model, "tap", 0.1)
    card = {"architecture": "test_efficientnet", "base_weights": base, "pooling": "tap", "tau": 0.1, "name": "tiny",
            "data": {}, "recipe": {"unfreeze": "head"}, "evaluation": {}}  # fmt: skip
    path = tmp_path / "tiny_tap.safetensors"
    save_checkpoint(path, loaded.model, ["classifier"], card)
    plain, fine = load_checkpoint(path), load_checkpoint(path, output_stride=16)  # same weights, same SHA-256
    assert (plain.output_stride, fine.output_stride, fine.pooling) == (32, 16, "tap") and fine.exactness_error < 1e-4
    image = np.zeros((64, 64, 3), np.uint8)
    assert cam_core.analyze(fine, image, input_size=64).feature_size == (4, 4)
    assert cam_core.analyze(plain, image, input_size=64).feature_size == (2, 2)
