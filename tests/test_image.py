"""Upload hygiene in the library: every awkward file either loads correctly or gets a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cam_core
from tests.bad_inputs import REFUSED, WORKS, exif_rotated


@pytest.mark.parametrize("name", sorted(WORKS))
def test_awkward_files_load_as_rgb(name: str, tmp_path: Path) -> None:
    image = cam_core.load_image(WORKS[name](tmp_path / name))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] * image.shape[1] <= cam_core.image.DEFAULT_MAX_PIXELS


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_files_are_refused_with_a_reason(name: str, tmp_path: Path) -> None:
    make, message = REFUSED[name]
    with pytest.raises(cam_core.InvalidImageError, match=message):
        cam_core.load_image(make(tmp_path / name))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    upright = cam_core.load_image(Path(__file__).resolve().parent.parent / "assets" / "examples" / "cat.jpg")
    rotated = cam_core.load_image(exif_rotated(tmp_path / "r.jpg"))
    assert rotated.shape == upright.shape == (300, 451, 3)
    assert np.abs(rotated.astype(int) - upright.astype(int)).mean() < 8  # same picture, JPEG noise only


def test_transparency_composited_on_white(tmp_path: Path) -> None:
    from tests.bad_inputs import rgba_transparent

    image = cam_core.load_image(rgba_transparent(tmp_path / "a.png"))
    assert (image[:, :60] == 255).all()


def test_array_inputs() -> None:
    assert cam_core.to_rgb_array(np.zeros((10, 12), np.float32)).shape == (10, 12, 3)
    assert cam_core.to_rgb_array(np.full((9, 9, 4), 0.5)).shape == (9, 9, 3)
    with pytest.raises(cam_core.InvalidImageError, match="in \\[0, 1\\]"):
        cam_core.to_rgb_array(np.full((9, 9), 2.0))
    with pytest.raises(cam_core.InvalidImageError, match="shape"):
        cam_core.to_rgb_array(np.zeros((9, 9, 2), np.uint8))
    with pytest.raises(cam_core.InvalidImageError, match="PIL image or a numpy array"):
        cam_core.to_rgb_array("cat.jpg")  # type: ignore[arg-type]


def test_missing_file() -> None:
    with pytest.raises(cam_core.InvalidImageError, match="Cannot read"):
        cam_core.load_image("/nonexistent/cat.jpg")
