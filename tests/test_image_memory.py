"""Small files that cost gigabytes: decoding stays within a fixed memory budget above idle (issue #11).

The big test files are written with zlib directly: a block of rows is compressed once up to a full flush and
the compressed bytes are repeated, so a 144-megapixel PNG takes milliseconds and a few kilobytes to make.
Each decode is measured in a fresh interpreter (peak resident memory above the level after ``import cam_core``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cam_core
from cam_core import image as image_module
from tests.bad_inputs import BIG_FILES, CAT, measure, write_png

PEAK_LIMIT_MB = 300
"""Issue #11's goal: no accepted upload costs more than about this much memory above idle."""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
@pytest.mark.parametrize("name", sorted(BIG_FILES))
def test_big_files_decode_within_the_memory_budget(name: str, tmp_path: Path) -> None:
    result = measure(BIG_FILES[name](tmp_path / name))
    assert result["error"] is None, result["error"]
    assert result["shape"][0] * result["shape"][1] <= 4_000_000
    assert result["peak_mb"] <= PEAK_LIMIT_MB, f"{name}: {result['peak_mb']:.0f} MB above idle"


def _awkward_pngs(folder: Path) -> dict[str, Path]:
    """One PNG per stored layout the streaming decoder handles, plus 16-bit RGB (decoded whole)."""
    rgb = np.asarray(Image.open(CAT).convert("RGB").resize((406, 298)))
    grey, alpha = rgb[:, :, 0], np.linspace(0, 255, rgb.shape[1]).astype(np.uint8)[None].repeat(len(rgb), 0)
    images = {
        "rgb": (Image.fromarray(rgb), {}),
        "rgba": (Image.fromarray(np.dstack([rgb, alpha])), {}),
        "grey": (Image.fromarray(grey), {}),
        "grey_alpha": (Image.merge("LA", [Image.fromarray(grey), Image.fromarray(alpha)]), {}),
        "grey16": (Image.fromarray(grey.astype(np.uint16) * 251 + 3), {}),
        "bilevel": (Image.fromarray(grey).convert("1"), {}),
        "palette": (Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64), {"transparency": 3}),
        "palette4": (Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16), {"bits": 4}),
    }
    paths = {}
    for name, (picture, options) in images.items():
        picture.save(folder / f"{name}.png", **options)
        paths[name] = folder / f"{name}.png"
    rgb16 = (rgb.astype(">u2") * 256 + np.arange(len(rgb), dtype=">u2")[:, None, None]).reshape(len(rgb), -1)
    paths["rgb16"] = write_png(folder / "rgb16.png", len(rgb), rgb16.view(np.uint8), 16, 2)
    return paths


def _whole_reference(path: Path) -> np.ndarray:
    """The pre-#11 conversion of a whole decoded image: uint8 (H, W, 3)."""
    image = Image.open(path)
    image.load()
    if image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray((values / values.max() * 255.0).round().astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))


def test_strip_decoding_matches_whole_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_module, "STRIP_PIXELS", 2000)  # about five rows a strip: dozens of strips
    for name, path in _awkward_pngs(tmp_path).items():
        pixels = cam_core.load_image(path, max_pixels=10**9)
        assert np.array_equal(pixels, _whole_reference(path)), name


def test_downscaling_strip_by_strip_is_one_box_resize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_module, "STRIP_PIXELS", 2000)  # about five rows a strip: dozens of batches
    for name, path in _awkward_pngs(tmp_path).items():
        pixels = cam_core.load_image(path, max_pixels=3000)
        assert pixels.shape == (46, 63, 3), name
        whole = Image.fromarray(_whole_reference(path)).resize((63, 46), Image.Resampling.BOX)
        difference = np.abs(pixels.astype(int) - np.asarray(whole, int))
        assert difference.max() <= (1 if name == "grey16" else 0), name  # 16-bit: resized before rounding


def test_what_cannot_be_bounded_is_refused_before_decoding(tmp_path: Path) -> None:
    """16-bit RGB PNG is decoded whole by Pillow: 12000 x 12000 would take 576 MB, so it is refused."""
    row = np.zeros((1, 12000 * 6), np.uint8)
    path = write_png(tmp_path / "rgb16.png", 12000, row, 16, 2)
    with pytest.raises(cam_core.InvalidImageError, match="would need 549 MB to decode, more than the 192 MB"):
        cam_core.load_image(path)
    assert cam_core.load_image(path, max_pixels=200_000_000).shape == (12000, 12000, 3)  # caller's own choice
