"""Upload hygiene in the library: every awkward file either loads correctly or gets a clear error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import cam_core
from tests.bad_inputs import CAT, REFUSED, WORKS, exif_rotated


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


def test_original_size_of_a_downscaled_photo(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "big.jpg"
    Image.open(CAT).resize((2816, 2112)).save(path, quality=85)
    pixels, size = cam_core.image.load_image_with_size(path)
    assert pixels.shape == (1732, 2309, 3) and size == (2112, 2816)
    assert np.array_equal(pixels, cam_core.load_image(path))


def test_stored_pixel_order_on_request(tmp_path: Path) -> None:
    path = exif_rotated(tmp_path / "r.jpg")
    pixels, size = cam_core.image.load_image_with_size(path, exif_transpose=False)
    assert pixels.shape == (451, 300, 3) and size == (451, 300)
    assert cam_core.image.load_image_with_size(path)[1] == (300, 451)


@pytest.mark.parametrize("after_pixels", [False, True])
def test_png_exif_orientation(tmp_path: Path, after_pixels: bool) -> None:
    """PNG keeps EXIF in an eXIf chunk, before or after the pixels: read either way without decoding twice."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.open(CAT).transpose(Image.Transpose.ROTATE_90).save(buffer, format="PNG", exif=exif.tobytes())
    data = buffer.getvalue()
    if after_pixels:  # move the eXIf chunk just before IEND
        start = data.index(b"eXIf") - 4
        end = start + 12 + int.from_bytes(data[start : start + 4], "big")
        rest = data[:start] + data[end:]
        data = rest[:-12] + data[start:end] + rest[-12:]
    upright = cam_core.load_image(CAT)
    rotated = cam_core.load_image(data)
    assert rotated.shape == upright.shape and np.abs(rotated.astype(int) - upright.astype(int)).mean() < 2


def test_truncated_png_is_refused(tmp_path: Path) -> None:
    from tests.bad_inputs import grayscale

    data = grayscale(tmp_path / "g.png").read_bytes()
    with pytest.raises(cam_core.InvalidImageError, match="damaged or truncated"):
        cam_core.load_image(data[: len(data) // 2])


def test_messages_name_no_server_folder(tmp_path: Path) -> None:
    with pytest.raises(cam_core.InvalidImageError, match=r"'cat\.jpg'") as caught:
        cam_core.load_image(tmp_path / "private" / "cat.jpg")
    assert str(tmp_path) not in str(caught.value) and "private" not in str(caught.value)
