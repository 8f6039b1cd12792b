"""The resolution grid driver and the first-analysis bench, on a tiny generated set (offline, default model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import bench_resolution, grid_resolution


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["filename,class_index,x0,y0,x1,y1\n"]
    for i, (x0, y0) in enumerate(((10, 8), (40, 20), (60, 30))):
        pixels = rng.integers(0, 80, (64, 96, 3), dtype=np.uint8)
        pixels[y0 : y0 + 24, x0 : x0 + 30] = (230, 180, 40)
        Image.fromarray(pixels).save(tmp_path / f"img{i}.png")
        rows.append(f"img{i}.png,{i},{x0},{y0},{x0 + 29},{y0 + 23}\n")
    (tmp_path / "boxes.csv").write_text("".join(rows))
    return tmp_path


def test_grid_writes_table_intervals_and_resumes(photos: Path, tmp_path: Path) -> None:
    out, cache = tmp_path / "grid", tmp_path / "cache"
    args = ["--images", str(photos), "--boxes", str(photos / "boxes.csv"), "--out", str(out), "--cache", str(cache),
            "--settings", "224/32", "64/16", "64/8", "--resamples", "200", "--budget-s", "0"]  # fmt: skip
    assert grid_resolution.main(args) == 0  # a zero budget runs the first setting only
    report = json.loads(out.with_suffix(".json").read_text())
    assert list(report["settings"]) == ["224/32"] and [s["setting"] for s in report["skipped"]] == ["64/16", "64/8"]
    args[-1] = "1e9"
    assert grid_resolution.main([*args, "--resume"]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    row = report["settings"]["64/16"]
    assert (
        row["feature_size"] == [4, 4] and row["n_images"] == 3 and row["files"] == ["img0.png", "img1.png", "img2.png"]
    )
    interval = report["intervals"]["64/16"]["nwc+pas - cam"]["maxboxacc_v2"]
    assert interval["low"] <= interval["estimate"] <= interval["high"] and interval["n_resamples"] == 200
    assert report["intervals"]["224/32"]["vs 224/32"]["cam"]["estimate"] == 0.0
    table = out.with_suffix(".md").read_text()
    assert "| 64 px, stride 8 -> 8x8 map |" in table and table.count("\n|") == 4  # header, rule, 3 settings


def test_bench_measures_every_step() -> None:
    image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    result = bench_resolution.measure([(224, 32), (64, 16)], image, rounds=1)
    assert set(result) == {"224/32", "64/16"} and result["224/32"]["ratio"] == 1.0
    for row in result.values():
        assert row["forward_ms"] > 0 and row["first_ms"] > 0 and row["slider_ms"] > 0
        assert row["overhead_ms"] == pytest.approx(row["first_ms"] - row["forward_ms"])
