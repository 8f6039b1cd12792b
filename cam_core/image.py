"""Turning whatever a user supplies into a clean RGB uint8 array, or a clear error.

Every image leaves this module as ``uint8 (H, W, 3)`` RGB, upright (EXIF orientation applied),
transparency composited onto white, and at most ``max_pixels`` pixels (downscaled with area
averaging when larger). Damaged files, non-images and decompression bombs raise
:class:`~cam_core.errors.InvalidImageError` with a message a user can act on.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cam_core.errors import InvalidImageError

DEFAULT_MAX_PIXELS = 4_000_000
"""Images above this many pixels are downscaled (aspect kept) before analysis."""
MAX_DECODE_PIXELS = 150_000_000
"""Files declaring more pixels than this are refused before decoding (decompression-bomb guard; a
12000 x 12000 photo still passes). PIL's own hard limit, 2 x ``Image.MAX_IMAGE_PIXELS``, applies too."""
MIN_SIDE = 8
"""Smallest accepted side in pixels: below this the network sees only interpolation artefacts."""


def load_image(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file fully and return it as RGB uint8 (H, W, 3).

    Args:
        source: a file path, or the file's bytes.
        max_pixels: downscale target (see :func:`to_rgb_array`).

    Raises:
        InvalidImageError: missing, empty, not an image, truncated/damaged, or a decompression bomb.
    """
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise InvalidImageError(f"Cannot read image file {str(source)!r}: {exc.strerror or exc}") from exc
    if not data:
        raise InvalidImageError("The image file is empty (0 bytes).")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we apply our own limit below
        try:
            image = Image.open(io.BytesIO(data))
            _check_declared_size(image)
            if image.format == "JPEG":  # decode big JPEGs at 1/2, 1/4 or 1/8 scale directly (cheap)
                scale = (max_pixels / (image.width * image.height)) ** 0.5
                image.draft("RGB", (max(MIN_SIDE, int(image.width * scale)), max(MIN_SIDE, int(image.height * scale))))
            image.load()  # decode now: truncated files fail here, not later
        except Image.DecompressionBombError as exc:
            raise InvalidImageError(
                f"The image is too large to decode safely ({exc}); upload a smaller photo."
            ) from exc
        except UnidentifiedImageError as exc:
            raise InvalidImageError(
                "The file is not an image format this app can read (PNG, JPEG, WebP, GIF, BMP, TIFF)."
            ) from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise InvalidImageError(f"The image file is damaged or truncated and cannot be decoded ({exc}).") from exc
    return to_rgb_array(image, max_pixels=max_pixels)


def _check_declared_size(image: Image.Image) -> None:
    width, height = image.size
    if width * height > MAX_DECODE_PIXELS:
        raise InvalidImageError(
            f"The image declares {width}x{height} pixels, more than the {MAX_DECODE_PIXELS // 1_000_000} megapixels "
            "this app decodes (decompression-bomb guard); upload a smaller photo."
        )


def _pil_to_rgb(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = float(values.max()) or 1.0
        image = Image.fromarray((values / top * 255.0).round().astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "RGBa"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(canvas, rgba)
    return image.convert("RGB")


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
    if isinstance(image, Image.Image):
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        pil = _pil_to_rgb(image)
    elif isinstance(image, np.ndarray):
        pil = _pil_to_rgb(Image.fromarray(_array_to_uint8(image)))
    else:
        raise InvalidImageError(f"`image` must be a PIL image or a numpy array, got {type(image).__name__}")
    width, height = pil.size
    if min(width, height) < MIN_SIDE:
        raise InvalidImageError(f"The image is {width}x{height} pixels; each side must be at least {MIN_SIDE} pixels.")
    if width * height > max_pixels:
        scale = (max_pixels / (width * height)) ** 0.5
        size = (max(MIN_SIDE, int(width * scale)), max(MIN_SIDE, int(height * scale)))
        pil = pil.resize(size, Image.Resampling.BOX)
    return np.ascontiguousarray(np.asarray(pil, dtype=np.uint8))


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
    if array.dtype == np.uint16:
        return (array.astype(np.float64) / 257.0).round().astype(np.uint8)
    raise InvalidImageError(f"`image` array dtype must be uint8, uint16 or float, got {array.dtype}")
