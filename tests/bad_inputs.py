"""Generators of awkward uploads, shared by the library, callback and API robustness tests, and of big PNGs that
cost gigabytes to decode but milliseconds to write (zlib directly: a block of rows compressed once up to a full flush,
the compressed bytes repeated)."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
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


# ---------------------------------------------------------------- big PNGs, written in milliseconds


def write_png(path: Path, height: int, block: np.ndarray, bit_depth: int, color_type: int) -> Path:
    """Write a PNG whose rows repeat ``block`` (uint8 (R, row_bytes), raw unfiltered rows) down ``height`` rows."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    width = block.shape[1] * 8 // (bit_depth * channels)
    rows = np.concatenate([np.zeros((len(block), 1), np.uint8), block], axis=1).tobytes()  # filter 0 per row
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    piece = deflate.compress(rows) + deflate.flush(zlib.Z_FULL_FLUSH)  # no back-reference crosses this point
    repeats, rest = divmod(height, len(block))
    tail = rows[: rest * (block.shape[1] + 1)]
    checksum = 1
    for _ in range(repeats):
        checksum = zlib.adler32(rows, checksum)
    stream = b"\x78\x01" + piece * repeats + deflate.compress(tail) + deflate.flush()
    stream += struct.pack(">I", zlib.adler32(tail, checksum))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b""))
    return path


def gray16_png(path: Path, side: int = 12000) -> Path:
    """16-bit grey, ``side`` x ``side``: a horizontal ramp over the full 16-bit range, banded every 64 rows."""
    ramp = np.linspace(0, 65535, side) // 257 * 257  # 256 steps: compresses well
    block = np.stack([ramp, ramp // 2]).repeat(32, axis=0).astype(">u2")
    return write_png(path, side, block.view(np.uint8), 16, 0)


def rgb_png(path: Path, side: int = 12000) -> Path:
    """8-bit RGB, ``side`` x ``side``: red ramp, green bands, constant blue."""
    block = np.zeros((64, side, 3), np.uint8)
    block[:, :, 0] = np.linspace(0, 255, side).astype(np.uint8)  # 256 steps
    block[32:, :, 1] = 200
    block[:, :, 2] = 90
    return write_png(path, side, block.reshape(64, -1), 8, 2)


def bilevel_png(path: Path, width: int = 15000, height: int = 10000) -> Path:
    """1-bit, 150 megapixels: vertical stripes 8 pixels wide, inverted every 64 rows."""
    block = np.full((64, width // 8), 0xFF, np.uint8)
    block[:, ::2] = 0
    block[32:] ^= 0xFF
    return write_png(path, height, block, 1, 0)


# ---------------------------------------------------------------- decoding cost, in a fresh interpreter

MEASURE = """
import json, resource, sys, time
import cam_core

def rss_mb(field):
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(field)).split()[1]) / 1024

idle = rss_mb("VmRSS")
try:  # reset the high-water mark so the import's own peak does not count
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
except OSError:
    pass
start, cpu = time.perf_counter(), time.process_time()
try:
    shape, error = list(cam_core.load_image(sys.argv[1]).shape), None
except cam_core.InvalidImageError as exc:
    shape, error = None, str(exc)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = min(rss_mb("VmHWM"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps({"peak_mb": peak - idle, "seconds": seconds, "cpu_seconds": cpu, "shape": shape, "error": error}))
"""


BIG_FILES = {"gray16.png": gray16_png, "rgb.png": rgb_png, "bilevel.png": bilevel_png}


def measure(path: Path, root: Path | None = None) -> dict:
    """Decode ``path`` with ``load_image`` in a fresh interpreter: peak MB above idle, seconds, shape or error.

    ``root`` is the source tree whose ``cam_core`` is imported (default: this one).
    """
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    root = root or Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, env=env, cwd=root, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
