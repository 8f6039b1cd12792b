"""Turning whatever a user supplies into a clean RGB uint8 array, or a clear error, in bounded memory.

Every image leaves this module as ``uint8 (H, W, 3)`` RGB, upright (EXIF orientation applied unless the
caller asks for stored order), transparency composited onto white, and at most ``max_pixels`` pixels
(downscaled with area averaging when larger). Damaged files, non-images and decompression bombs raise
:class:`~cam_core.errors.InvalidImageError` with a message a user can act on.

Memory rule (issue #11: a 280 kB PNG must not cost gigabytes). Pixels are converted and box-resized
:data:`STRIP_PIXELS` at a time (the same result as one ``resize``), so no full-size RGB, float or 16-bit copy
is made. JPEG decodes at 1/2, 1/4 or 1/8 scale (``draft``). PNG that is not interlaced and has at most 4
bytes per pixel (every grey, palette and grey+alpha depth, 8-bit RGB/RGBA) is also *decoded* strip by strip.
Anything else (other formats, interlaced or 16-bit colour PNG) Pillow decodes whole, so it is refused before
decoding when that buffer would exceed :data:`FULL_DECODE_BUDGET` or ``4 * max_pixels`` bytes, whichever is
larger. Measured in ``bench/bench_decode.py``, enforced in ``tests/test_image_memory.py``: a 12000 x 12000
16-bit grey PNG, a 12000 x 12000 RGB PNG and a 150-megapixel 1-bit PNG each cost under 100 MB above idle.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cam_core.errors import InvalidImageError

DEFAULT_MAX_PIXELS = 4_000_000
"""Images above this many pixels are downscaled (aspect kept) before analysis."""
MAX_DECODE_PIXELS = 150_000_000
"""Files declaring more pixels than this are refused before decoding (decompression-bomb guard; a
12000 x 12000 photo still passes). PIL's own hard limit, 2 x ``Image.MAX_IMAGE_PIXELS``, applies too."""
MIN_SIDE = 8
"""Smallest accepted side in pixels: below this the network sees only interpolation artefacts."""
FULL_DECODE_BUDGET = 192 * 2**20
"""Largest decoded buffer (bytes) accepted for a file that Pillow must decode whole (see the module notes)."""
STRIP_PIXELS = 2_000_000
"""Pixels converted at a time: bounds every intermediate copy to a few tens of megabytes."""

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation -> the transpose that shows the picture upright (as ``ImageOps.exif_transpose``)."""
_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_UNFILTER_MODES = {1: ("L", "L"), 2: ("F", "F;16B"), 3: ("RGB", "RGB"), 4: ("RGBA", "RGBA")}
"""(mode, raw mode) that keep the stored bytes recoverable, by PNG filter unit (bytes per pixel). Two-byte
pixels unfilter as exact integers in float32: cheaper to allocate than ``I;16``, and the working mode of 16-bit grey."""


def load_image(
    source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS, *, exif_transpose: bool = True
) -> np.ndarray:
    """Decode an image file and return it as RGB uint8 (H, W, 3), in bounded memory.

    Args:
        source: a file path, or the file's bytes.
        max_pixels: downscale target (see :func:`to_rgb_array`).
        exif_transpose: apply the EXIF orientation (upright picture); ``False`` keeps the stored pixel order.

    Returns:
        uint8 (H, W, 3) RGB in [0, 255], C-contiguous, ``H * W <= max_pixels`` (up to rounding).

    Raises:
        InvalidImageError: missing, empty, not an image, truncated/damaged, too small, a decompression bomb,
            or too large to decode within the memory budget.
    """
    return load_image_with_size(source, max_pixels, exif_transpose=exif_transpose)[0]


def load_image_with_size(
    source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS, *, exif_transpose: bool = True
) -> tuple[np.ndarray, tuple[int, int]]:
    """Like :func:`load_image`, and also the size of the photo as the user gave it.

    Args:
        source: a file path, or the file's bytes.
        max_pixels: downscale target (see :func:`to_rgb_array`).
        exif_transpose: apply the EXIF orientation; ``False`` keeps the stored pixel order.

    Returns:
        ``(pixels, (height, width))``: pixels as :func:`load_image`; the full size of the file's picture, upright
        when ``exif_transpose`` (stored order otherwise), before any downscaling. Scale boxes from ``pixels``
        to the original by ``height / pixels.shape[0]`` and ``width / pixels.shape[1]``.

    Raises:
        InvalidImageError: as :func:`load_image`.
    """
    data = _read(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we apply our own limit below
        try:
            image = Image.open(io.BytesIO(data))
            _check_declared_size(image)
            return _decode(image, data, max_pixels, exif_transpose)
        except InvalidImageError:
            raise
        except Image.DecompressionBombError as exc:
            raise InvalidImageError(
                f"The image is too large to decode safely ({exc}); upload a smaller photo."
            ) from exc
        except UnidentifiedImageError as exc:
            raise InvalidImageError(
                "The file is not an image format this app can read (PNG, JPEG, WebP, GIF, BMP, TIFF)."
            ) from exc
        except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as exc:
            raise InvalidImageError(f"The image file is damaged or truncated and cannot be decoded ({exc}).") from exc


def _read(source: str | Path | bytes) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:  # name the file, never the server's folders
            raise InvalidImageError(f"Cannot read image file {Path(source).name!r}: {exc.strerror or exc}") from exc
    if not data:
        raise InvalidImageError("The image file is empty (0 bytes).")
    return data


def _check_declared_size(image: Image.Image) -> None:
    width, height = image.size
    if width * height > MAX_DECODE_PIXELS:
        raise InvalidImageError(
            f"The image declares {width}x{height} pixels, more than the {MAX_DECODE_PIXELS // 1_000_000} megapixels "
            "this app decodes (decompression-bomb guard); upload a smaller photo."
        )
    _check_min_side(width, height)


def _check_min_side(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise InvalidImageError(f"The image is {width}x{height} pixels; each side must be at least {MIN_SIDE} pixels.")


def _decode(image: Image.Image, data: bytes, max_pixels: int, exif: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """Convert, downscale and orient an opened (not yet decoded) image; returns pixels and the full (H, W)."""
    width, height = image.size
    orientation = _orientation(image, data) if exif else 1
    target = _target((width, height), max_pixels)
    strips = _png_strips(image, data) if image.format == "PNG" else None
    if strips is None:
        if image.format == "JPEG":  # decode big JPEGs at 1/2, 1/4 or 1/8 scale directly (cheap)
            image.draft("RGB", target)
        _check_budget(image, max_pixels)
        image.load()  # decode now: truncated files fail here, not later
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        strips = _crop_strips(image)
    pixels = _finish(_resize_strips(strips, image.size, target), orientation)
    return pixels, ((height, width) if orientation < 5 else (width, height))


def _orientation(image: Image.Image, data: bytes) -> int:
    """EXIF orientation 1..8 without decoding pixels (Pillow's ``getexif`` decodes a whole PNG to find it)."""
    if image.format == "PNG":
        raw = image.info.get("exif") or next((bytes(p) for kind, p in _png_chunks(data) if kind == b"eXIf"), None)
        exif = Image.Exif()
        if raw:
            exif.load(raw)
    else:
        exif = image.getexif()
    orientation = exif.get(0x0112, 1)
    return orientation if orientation in _TRANSPOSE else 1


def _check_budget(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    per_pixel = 1 if image.mode in ("1", "L", "P") else 2 if image.mode.startswith("I;16") else 4
    budget = max(FULL_DECODE_BUDGET, 4 * max_pixels)
    if width * height * per_pixel > budget:
        kind = f"{image.format} {image.mode}" if image.format else image.mode
        raise InvalidImageError(
            f"The image ({width}x{height} pixels, {kind}) would need {width * height * per_pixel // 2**20} MB to "
            f"decode, more than the {budget // 2**20} MB allowed; upload a JPEG, a plain PNG or a smaller picture."
        )


def _target(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """Output (W, H): ``size`` scaled (aspect kept) to at most ``max_pixels`` pixels, sides at least ``MIN_SIDE``."""
    width, height = size
    if width * height <= max_pixels:
        return size
    scale = (max_pixels / (width * height)) ** 0.5
    return max(MIN_SIDE, int(width * scale)), max(MIN_SIDE, int(height * scale))


def _crop_strips(image: Image.Image) -> Iterator[Image.Image]:
    width, height = image.size
    rows = _strip_rows(width)
    for top in range(0, height, rows):
        yield image.crop((0, top, width, min(height, top + rows)))


def _strip_rows(width: int) -> int:
    """Rows per strip: about :data:`STRIP_PIXELS` pixels."""
    return max(1, STRIP_PIXELS // width)


def _working(strip: Image.Image) -> Image.Image:
    """One strip in a mode to resize in: ``F`` for high bit depths, else ``L`` or ``RGB`` (alpha on white)."""
    if strip.mode in _HIGH_DEPTH:
        return strip if strip.mode == "F" else strip.convert("F")
    if strip.mode == "P" and "transparency" in strip.info:
        strip = strip.convert("RGBA")
    if strip.mode in _ALPHA:
        rgba = strip.convert("RGBA")
        strip = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    mode = "L" if strip.mode in ("1", "L") else "RGB"
    return strip if strip.mode == mode else strip.convert(mode)


def _resize_strips(strips: Iterator[Image.Image], size: tuple[int, int], target: tuple[int, int]) -> np.ndarray:
    """Convert strip by strip and box-resize (W, H) ``size`` to (W', H') ``target``, the same as one ``resize``.

    Pillow's box filter takes output row ``i`` from the source rows whose centres lie in ``[i * s, (i + 1) * s)``,
    ``s = H / H'``: each batch of output rows is resized from just the source rows under it (``box=``).

    Returns:
        uint8 (H', W') grey or uint8 (H', W', 3) RGB; high bit depths are resized in float32 and scaled to
        [0, 255] by their full-resolution maximum.
    """
    scale, done, first, peak = size[1] / target[1], 0, 0, 0.0
    out: np.ndarray | None = None
    pending: list[np.ndarray] = []
    for strip in strips:
        working = _working(strip)
        if working.mode == "F":
            peak = max(peak, float(working.getextrema()[1]))  # type: ignore[arg-type]
        pending.append(np.asarray(working))
        available = first + sum(len(part) for part in pending)  # source rows [first, available) are at hand
        end = target[1] if available == size[1] else min(target[1], int(available / scale))
        while end > done and min(size[1], math.ceil(end * scale)) > available:
            end -= 1
        if end <= done:
            continue
        block = np.concatenate(pending)
        box = (0.0, done * scale - first, float(size[0]), min(end * scale, available) - first)
        part = np.asarray(Image.fromarray(block).resize((target[0], end - done), Image.Resampling.BOX, box))
        out = np.empty((target[1], *part.shape[1:]), part.dtype) if out is None else out
        out[done:end], done = part, end
        keep = min(int(end * scale), available)  # the next batch's window starts inside this row
        pending, first = [block[keep - first :]], keep
    if out is None or done != target[1]:
        raise ValueError("image data ends early")
    return _to_uint8(out, peak)


def _to_uint8(array: np.ndarray, peak: float) -> np.ndarray:
    """uint8 as is; float32 scaled so that ``peak`` maps to 255 (in place: no temporaries)."""
    if array.dtype == np.uint8:
        return array
    np.multiply(array, np.float32(255.0 / (peak or 1.0)), out=array)
    np.clip(np.rint(array, out=array), 0, 255, out=array)
    return array.astype(np.uint8)


def _finish(resized: np.ndarray, orientation: int) -> np.ndarray:
    """uint8 (H, W, 3) RGB, C-contiguous, of a resized uint8 array shown upright for EXIF ``orientation``."""
    image = Image.fromarray(resized)
    if orientation in _TRANSPOSE:
        image = image.transpose(_TRANSPOSE[orientation])
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def to_rgb_array(image: Image.Image | np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Normalise a PIL image or array to upright RGB uint8 (H, W, 3).

    Args:
        image: a PIL image (any mode; the first frame of an animation), or an array
            uint8/float (H, W), (H, W, 1), (H, W, 3) or (H, W, 4). Float arrays must lie in ``[0, 1]``.
        max_pixels: larger images are downscaled (area resampling, aspect kept) to at most this many pixels.

    Returns:
        uint8 (H, W, 3) RGB, C-contiguous.

    Raises:
        InvalidImageError: wrong type, shape, dtype or value range, or a side shorter than ``MIN_SIDE``.
    """
    if isinstance(image, np.ndarray):
        image = Image.fromarray(_array_to_uint8(image))
    elif not isinstance(image, Image.Image):
        raise InvalidImageError(f"`image` must be a PIL image or a numpy array, got {type(image).__name__}")
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    _check_min_side(*image.size)
    orientation = image.getexif().get(0x0112, 1)
    return _finish(_resize_strips(_crop_strips(image), image.size, _target(image.size, max_pixels)), orientation)


def _array_to_uint8(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidImageError(f"`image` array must be (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
            raise InvalidImageError("A float `image` array must be finite and lie in [0, 1].")
        return (array * 255.0).round().astype(np.uint8)
    if array.dtype == np.uint16:  # round(v / 257) in integers: no float64 copy
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    raise InvalidImageError(f"`image` array dtype must be uint8, uint16 or float, got {array.dtype}")


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """``(type, payload)`` of each chunk of a PNG file, payloads as views (no copies), up to IEND."""
    view, position = memoryview(data), 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = bytes(data[position + 4 : position + 8])
        yield kind, view[position + 8 : position + 8 + length]
        if kind == b"IEND":
            return
        position += 12 + length


def _png_strips(image: Image.Image, data: bytes) -> Iterator[Image.Image] | None:
    """Strips of a PNG decoded without ever holding it whole, or None where this cannot stream it.

    Pillow's zlib decoder unfilters each strip: the strip's filtered rows are re-wrapped (stored, level 0)
    behind the previous strip's last unfiltered row, which serves as the prior row of the first.
    """
    bit_depth, color_type, interlace = data[24], data[25], data[28]
    unit = max(1, bit_depth * _PNG_CHANNELS.get(color_type, 8) // 8)  # filter unit: bytes per pixel, >= 1
    tile = getattr(image, "tile", [])  # an ImageFile attribute: the undecoded pixel data
    animated = getattr(image, "n_frames", 1) > 1  # APNG
    if interlace or animated or unit not in _UNFILTER_MODES or len(tile) != 1 or tile[0][0] != "zip":
        return None  # Adam7 passes or 16-bit colour: Pillow decodes these whole
    return _stream_png(image, data, unit, str(tile[0][3]), _strip_rows(image.width))


def _stream_png(image: Image.Image, data: bytes, unit: int, rawmode: str, rows: int) -> Iterator[Image.Image]:
    width, height = image.size
    row_bytes = (width * data[24] * _PNG_CHANNELS[data[25]] + 7) // 8
    unfilter_mode, unfilter_raw = _UNFILTER_MODES[unit]
    payloads = (payload for kind, payload in _png_chunks(data) if kind == b"IDAT")
    inflate = zlib.decompressobj()
    previous = bytes(row_bytes)  # the row above the first is zeros (PNG spec)
    for top in range(0, height, rows):
        count = min(rows, height - top)
        filtered = b"\0" + previous + _inflate(inflate, payloads, count * (row_bytes + 1))
        size = (row_bytes // unit, count + 1)  # one row per line, the previous strip's last row on top
        unfiltered = Image.frombytes(unfilter_mode, size, _stored_zlib(filtered), "zip", unfilter_raw)
        del filtered
        previous = _stored_bytes(unfiltered.crop((0, count, size[0], count + 1)))
        if rawmode in (unfilter_raw, "I;16B"):  # L, RGB, RGBA, 16-bit grey: already pixels
            strip = unfiltered.crop((0, 1, width, count + 1))
        else:
            strip = Image.frombytes(image.mode, (width, count), _stored_bytes(unfiltered)[row_bytes:], "raw", rawmode)
        if image.mode == "P" and image.palette is not None:
            strip.putpalette(image.palette.palette, image.palette.rawmode or image.palette.mode)
            if "transparency" in image.info:
                strip.info["transparency"] = image.info["transparency"]
        yield strip


def _stored_bytes(unfiltered: Image.Image) -> bytes:
    """The bytes of unfiltered rows as the file stores them (two-byte units are big-endian integers)."""
    return np.asarray(unfiltered).astype(">u2").tobytes() if unfiltered.mode == "F" else unfiltered.tobytes()


def _stored_zlib(data: bytes) -> bytes:
    """``data`` as a zlib stream of stored (uncompressed) deflate blocks: a copy and a checksum, no compression."""
    view, block = memoryview(data), 65535
    parts: list[bytes | memoryview] = [b"\x78\x01"]
    for start in range(0, len(data), block):
        piece = view[start : start + block]
        final = start + block >= len(data)
        parts += [struct.pack("<BHH", final, len(piece), 0xFFFF ^ len(piece)), piece]
    return b"".join(parts) + struct.pack(">I", zlib.adler32(data))


def _inflate(inflate: zlib._Decompress, payloads: Iterator[memoryview], size: int) -> bytes:
    """Exactly ``size`` more bytes of the PNG's zlib stream (ValueError when the file ends first)."""
    parts = []
    while size:
        source = inflate.unconsumed_tail or next(payloads, None)
        if source is None or inflate.eof:
            raise ValueError("image data ends early")
        part = inflate.decompress(source, size)
        parts.append(part)
        size -= len(part)
    return b"".join(parts)
