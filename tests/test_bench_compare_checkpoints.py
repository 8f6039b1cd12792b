"""``bench.compare_checkpoints``: per-run results a card can store, and TAP - GAP with paired intervals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.compare_checkpoints import main, parse_run, plain_name
from cam_core.models import set_pooling
from cam_core.train.checkpoint import build_base, save_checkpoint, summarize_evaluation

ARCH = "test_efficientnet"


def test_parse_run_and_config_names() -> None:
    assert parse_run("tap448=a/b@c.safetensors@448/16") == ("tap448", "a/b@c.safetensors", 448, 16)
    assert parse_run("original@224/32") == ("original", "original", 224, 32)
    assert [plain_name(n) for n in ("tap", "tap+nwc+pas", "cam", "nwc+pas")] == ["cam", "nwc+pas", "cam", "nwc+pas"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Photos with boxes, and a GAP and a TAP checkpoint of a perturbed random-init head."""
    root = tmp_path_factory.mktemp("cmp")
    rng = np.random.default_rng(0)
    rows = ["filename,class_index,x0,y0,x1,y1\n"]
    for i in range(6):
        photo = rng.integers(0, 60, (64, 96, 3), dtype=np.uint8)
        photo[10:40, 20 + 5 * i : 60 + 5 * i] = 230
        Image.fromarray(photo).save(root / f"p{i}.png")
        rows.append(f"p{i}.png,{i % 3},{20 + 5 * i},10,{59 + 5 * i},39\n")
    (root / "boxes.csv").write_text("".join(rows))
    for pooling in ("gap", "tap"):
        loaded, base = build_base(ARCH, pretrained=False, init_seed=1)
        set_pooling(loaded.model, pooling, 0.1 if pooling == "tap" else None)
        with torch.no_grad():
            loaded.model.classifier.weight.add_(
                torch.randn(loaded.model.classifier.weight.shape, generator=torch.Generator().manual_seed(2))
            )
        card = {
            "architecture": ARCH,
            "base_weights": base,
            "pooling": pooling,
            "tau": 0.1 if pooling == "tap" else None,
        }
        save_checkpoint(root / f"{pooling}.safetensors", loaded.model, ["classifier"], card)
    return root


def test_tap_minus_gap_is_the_difference_of_the_rows(pair: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runs = [f"gap={pair / 'gap.safetensors'}@64/16", f"tap={pair / 'tap.safetensors'}@64/16"]
    argv = ["--images", str(pair), "--boxes", str(pair / "boxes.csv"), "--out", str(out), "--resamples", "200"]
    assert main([*argv, "--runs", *runs]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == 6
    gap, tap = summary["runs"]["gap@64/16"], summary["runs"]["tap@64/16"]
    diffs = summary["tap_minus_gap"]["tap@64/16"]
    for stat in ("top1", "cam|gt_known_loc", "nwc+pas|maxboxacc_v2"):
        assert diffs[stat]["estimate"] == pytest.approx(tap[stat] - gap[stat], abs=1e-6)
        assert diffs[stat]["low"] <= diffs[stat]["estimate"] <= diffs[stat]["high"]
    results = json.loads((out / "tap_64_16.json").read_text())  # the results dict a card stores
    assert results["input_size"] == [64, 64] and results["output_stride"] == 16
    assert set(summarize_evaluation(results)["configs"]) == {"tap", "tap+pas", "tap+nwc", "tap+nwc+pas"}
    assert "TAP - GAP (tap@64/16)" in (out / "summary.md").read_text()
    (out / "gap_64_16.json").write_text(json.dumps({**json.loads((out / "gap_64_16.json").read_text()), "top1": 0.0}))
    assert main([*argv, "--resume", "--runs", *runs]) == 0  # --resume reads the stored runs, no evaluation
    assert json.loads((out / "summary.json").read_text())["runs"]["gap@64/16"]["top1"] == 0.0
