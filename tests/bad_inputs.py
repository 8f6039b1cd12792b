"""Generators of awkward uploads, shared by the library, callback and API robustness tests."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "assets" / "examples" / "cat.jpg"


def _cat(mode: str = "RGB") -> Image.Image:
    return Image.open(CAT).convert(mode)


def zero_bytes(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text_as_png(path: Path) -> Path:
    path.write_text("this is a text file with a .png name\n")
    return path


def truncated_jpeg(path: Path) -> Path:
    buffer = io.BytesIO()
    _cat().save(buffer, format="JPEG", quality=90)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def one_pixel(path: Path) -> Path:
    Image.new("RGB", (1, 1), (200, 10, 10)).save(path)
    return path


def png_16bit(path: Path) -> Path:
    gray = np.asarray(_cat("L"), dtype=np.uint16) * 257
    Image.fromarray(gray).save(path)
    return path


def cmyk_jpeg(path: Path) -> Path:
    _cat().convert("CMYK").save(path, format="JPEG")
    return path


def grayscale(path: Path) -> Path:
    _cat("L").save(path)
    return path


def rgba_transparent(path: Path) -> Path:
    image = _cat("RGBA")
    alpha = np.full(image.size[::-1], 255, np.uint8)
    alpha[:, :60] = 0
    image.putalpha(Image.fromarray(alpha))
    image.save(path)
    return path


def palette_transparent(path: Path) -> Path:
    image = _cat().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    image.info["transparency"] = 0
    image.save(path, transparency=0)
    return path


def animated_gif(path: Path) -> Path:
    frames = [_cat().convert("P"), _cat().rotate(180).convert("P")]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def exif_rotated(path: Path) -> Path:
    """The cat stored rotated 90° counter-clockwise with orientation 6: viewers show it upright."""
    stored = _cat().transpose(Image.Transpose.ROTATE_90)  # 300 x 451 stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    stored.save(path, format="JPEG", exif=exif.tobytes(), quality=92)
    return path


def very_large(path: Path) -> Path:
    """12000 x 12000 JPEG (144 megapixels; most of it flat, so it stays small on disk)."""
    canvas = Image.new("RGB", (12000, 12000), (120, 130, 140))
    canvas.paste(_cat().resize((9000, 6000)), (1500, 3000))
    canvas.save(path, format="JPEG", quality=70)
    return path


def bomb(path: Path) -> Path:
    """A tiny PNG that declares 20000 x 20000 pixels, beyond PIL's hard limit."""
    Image.new("1", (20000, 20000)).save(path, optimize=True)
    return path


def extreme_aspect(path: Path) -> Path:
    Image.fromarray(np.asarray(_cat().resize((4000, 10)))).save(path)
    return path


WORKS: dict[str, Callable[[Path], Path]] = {
    "png_16bit.png": png_16bit, "cmyk.jpg": cmyk_jpeg, "gray.png": grayscale, "rgba.png": rgba_transparent,
    "palette.png": palette_transparent, "animated.gif": animated_gif, "rotated.jpg": exif_rotated,
    "large.jpg": very_large, "aspect.png": extreme_aspect,
}  # fmt: skip
"""Awkward but valid uploads: each must be analysed."""

REFUSED: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty.png": (zero_bytes, "empty"),
    "notes.png": (text_as_png, "not an image format"),
    "truncated.jpg": (truncated_jpeg, "damaged or truncated"),
    "one.png": (one_pixel, "at least 8 pixels"),
    "bomb.png": (bomb, "too large to decode safely|decompression-bomb"),
}
"""Uploads that must be refused, with a regex the message must match."""
