"""``python -m cam_core.train``: tiny CPU fine-tunes on generated photos, data readers, loss and recipe checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from safetensors.torch import load_file

from cam_core.errors import DatasetError, ParameterError
from cam_core.tap import ThresholdedAvgPool2d
from cam_core.train import finetune
from cam_core.train.checkpoint import build_base, load_checkpoint, read_card
from cam_core.train.cli import main
from cam_core.train.data import read_exclude, read_image_folder, read_wsol_labels
from cam_core.train.finetune import Recipe, loss_fn, trainable_prefixes

ARCH = "test_efficientnet"
FAST = ["--model", ARCH, "--no-pretrained", "--epochs", "2", "--views", "2", "--batch-size", "4", "--threads", "2"]


def _photos(folder: Path, names: list[str], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / name)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "train"
    _photos(root / "n01440764", ["a0.png", "a1.png"], seed=0)  # WordNet id -> class 0
    _photos(root / "7", ["b0.png", "b1.png"], seed=1)  # ImageNet index
    return root


def _check_round_trip(out: Path, pooling: str) -> None:
    card = read_card(out)
    assert card["pooling"] == pooling and card["trained"] == ["conv_head", "bn2", "classifier"]
    assert card["data"]["photos"] == 4 and card["data"]["classes"] == 2 and len(card["recipe"]["log"]["loss"]) == 2
    assert out.with_suffix(".json").is_file()
    loaded = load_checkpoint(out)
    is_tap = isinstance(loaded.model.global_pool, ThresholdedAvgPool2d)
    assert loaded.pooling == pooling and is_tap == (pooling == "tap")
    base = dict(build_base(ARCH, pretrained=False)[0].model.named_parameters())
    tensors = load_file(str(out))
    changed = [k for k, v in tensors.items() if not torch.equal(v, base[k].half())]
    assert "classifier.weight" in changed and any(k.startswith("conv_head") for k in changed)
    params = dict(loaded.model.named_parameters())
    assert all(torch.equal(params[k].half(), v) for k, v in tensors.items())  # fp16 bit-exact on reload


def test_gap_and_tap_head_finetunes_share_a_cache(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache.safetensors"
    head = ["--images", str(image_folder), *FAST, "--cache", str(cache)]
    assert main([*head, "--pooling", "gap", "--out", str(tmp_path / "gap.safetensors")]) == 0 and cache.is_file()

    def no_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(finetune, "build_cache", no_rebuild)
    assert main([*head, "--pooling", "tap", "--out", str(tmp_path / "tap.safetensors")]) == 0
    for pooling in ("gap", "tap"):
        _check_round_trip(tmp_path / f"{pooling}.safetensors", pooling)


def test_unlabelled_distillation_only_and_exclude(tmp_path: Path) -> None:
    _photos(tmp_path / "flat", ["u0.png", "u1.png", "drop.png"])
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("drop.png\n")
    out = tmp_path / "u.safetensors"
    argv = ["--images", str(tmp_path / "flat"), *FAST, "--ce", "0", "--exclude", str(exclude), "--out", str(out)]
    assert main([*argv, "--views", "1", "--epochs", "1"]) == 0
    data = read_card(out)["data"]
    assert data["photos"] == 2 and data["labelled"] == 0 and data["excluded"] == ["drop.png"]


def test_online_finetune_of_a_new_classifier(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "k8.safetensors"
    base = ["--images", str(image_folder), *FAST, "--unfreeze", "blocks.1", "--num-classes", "8", "--out", str(out)]
    assert main(base) == 2  # distillation needs the base's classes
    assert main([*base, "--distill", "0", "--ce", "1", "--epochs", "1"]) == 0
    card = read_card(out)
    assert card["trained"] == ["blocks.1", "conv_head", "bn2", "classifier"] and card["num_classes"] == 8
    loaded = load_checkpoint(out)
    assert loaded.num_classes == 8 and loaded.pooling == "tap"


def test_bad_arguments_exit_2(image_folder: Path, tmp_path: Path) -> None:
    assert main(["--images", str(image_folder), *FAST, "--out", str(tmp_path / "x.pth")]) == 2
    assert main(["--images", str(tmp_path / "absent"), *FAST, "--out", str(tmp_path / "x.safetensors")]) == 2
    assert main(["--images", str(image_folder), *FAST, "--tau", "1.5", "--out", str(tmp_path / "x.safetensors")]) == 2


def test_readers(image_folder: Path, tmp_path: Path) -> None:
    samples = read_image_folder(image_folder)
    assert sorted({c for _, c in samples}) == [0, 7] and len(samples) == 4
    _photos(tmp_path / "bad" / "not_a_class", ["x.png"])
    with pytest.raises(DatasetError, match="not_a_class"):
        read_image_folder(tmp_path / "bad")
    meta = tmp_path / "meta"
    meta.mkdir()
    (meta / "image_ids.txt").write_text("val/a.png\nval/b.png\n")
    (meta / "class_labels.txt").write_text("val/a.png,3\nval/b.png,5\n")
    assert read_wsol_labels(meta, tmp_path) == [(tmp_path / "val/a.png", 3), (tmp_path / "val/b.png", 5)]
    (meta / "class_labels.txt").write_text("val/a.png,3\n")
    with pytest.raises(DatasetError, match=r"val/b\.png"):
        read_wsol_labels(meta, tmp_path)
    csv = tmp_path / "boxes.csv"
    csv.write_text("filename,class_index,x0,y0,x1,y1\nA.JPEG,1,0,0,5,5\nA.JPEG,1,1,1,4,4\nB.JPEG,2,0,0,3,3\n")
    assert read_exclude(csv) == {"A.JPEG", "B.JPEG"}


def test_loss_matches_hand_written() -> None:
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    labels = torch.tensor([1, -1, 5, 0])
    recipe = Recipe(distill=4.0, ce=0.5, temperature=2.0)
    p, q = F.softmax(student / 2, dim=1), F.softmax(teacher / 2, dim=1)
    kl = (q * (q.log() - p.log())).sum(1).mean()
    ce = -sum(F.log_softmax(student[i], 0)[labels[i]] for i in (0, 2, 3)) / 4
    torch.testing.assert_close(loss_fn(student, teacher, labels, recipe), 4.0 * 4 * kl + 0.5 * ce)


def test_trainable_prefixes_and_recipe_checks() -> None:
    model = build_base(ARCH, pretrained=False)[0].model
    assert trainable_prefixes(model, "head") == ["conv_head", "bn2", "classifier"]
    assert trainable_prefixes(model, "tail")[0] == f"blocks.{len(model.blocks) - 1}"
    assert trainable_prefixes(model, "all") == [""]
    with pytest.raises(ParameterError, match="unfreeze"):
        trainable_prefixes(model, "blocks.99")
    with pytest.raises(ParameterError, match="tau"):
        Recipe(tau=1.0)
    with pytest.raises(ParameterError, match="nothing to train"):
        Recipe(distill=0, ce=0)


def test_run_raises_typed_errors(image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cam_core.errors import CheckpointError
    from cam_core.train.cli import _parser, run

    argv = ["--images", str(image_folder), *FAST, "--out", str(tmp_path / "x.pth")]
    with pytest.raises(CheckpointError, match="--out"):
        run(_parser().parse_args(argv), argv)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["--images", str(image_folder), *FAST, "--device", "cuda", "--out", str(tmp_path / "x.safetensors")]
    with pytest.raises(ParameterError, match="--device cuda"):
        run(_parser().parse_args(argv), argv)


def test_input_size_and_output_stride_reach_the_card_and_the_cache(image_folder: Path, tmp_path: Path) -> None:
    cache, out = tmp_path / "cache.safetensors", tmp_path / "s16.safetensors"
    head = ["--images", str(image_folder), *FAST, "--cache", str(cache), "--pooling", "tap"]
    assert main([*head, "--input-size", "96", "--output-stride", "16", "--out", str(out)]) == 0
    card = read_card(out)
    assert card["resolution"] == {"input_size": 96, "output_stride": 16} and card["input_size"] == [96, 96]
    assert "--input-size 96 --output-stride 16" in card["recipe"]["command"]
    features = load_file(str(cache))["features"]  # (N, V, C', h', w'): 96 px at stride 16 -> 6 x 6
    assert features.shape[:2] == (4, 2) and features.shape[-2:] == (6, 6)
    loaded = load_checkpoint(out)  # rebuilt at the card's resolution
    assert loaded.output_stride == 16 and loaded.data_config.input_size == (96, 96)
    with torch.inference_mode():
        fmap = loaded.model.forward_features(torch.zeros(1, 3, 96, 96))
    assert tuple(fmap.shape[-2:]) == (6, 6)
    assert load_checkpoint(out, output_stride=32).output_stride == 32  # explicit stride still wins


def test_a_view_cache_is_refused_at_another_resolution(image_folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.safetensors"
    head = ["--images", str(image_folder), *FAST, "--cache", str(cache), "--pooling", "gap"]
    assert main([*head, "--out", str(tmp_path / "a.safetensors")]) == 0  # the model's own: 160 px / stride 32
    assert read_card(tmp_path / "a.safetensors")["resolution"] == {"input_size": 160, "output_stride": 32}
    stamp = cache.stat().st_mtime_ns
    argv = [*head, "--input-size", "96", "--output-stride", "16", "--out", str(tmp_path / "b.safetensors")]
    from cam_core.train.cli import _parser, run

    with pytest.raises(ParameterError, match=r"160 px / stride 32.*96 px / stride 16.*--cache"):
        run(_parser().parse_args(argv), argv)
    assert main(argv) == 2 and not (tmp_path / "b.safetensors").exists()
    assert cache.stat().st_mtime_ns == stamp  # never overwritten


def test_an_old_cache_without_resolution_reads_as_224_stride_32(tmp_path: Path) -> None:
    cache = finetune.FeatureCache(torch.zeros(1, 1, 2, 7, 7).half(), torch.zeros(1, 1, 3).half(), torch.zeros(1).long())
    path = tmp_path / "old.safetensors"
    from safetensors.torch import save_file

    save_file(
        {"features": cache.features, "teacher": cache.teacher, "labels": cache.labels}, str(path), {"fingerprint": "f"}
    )
    assert finetune.load_cache(path, "f", {"input_size": 224, "output_stride": 32}) is not None
    with pytest.raises(ParameterError, match="448 px / stride 16"):
        finetune.load_cache(path, "f", {"input_size": 448, "output_stride": 16})
