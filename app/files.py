"""Picture and archive files the app writes for the browser, in one private folder made on first use.

Nothing happens at import: :func:`render_dir` creates the folder the first time something is written
(or when :func:`app.ui.build_demo` registers it as a static path). Two kinds of file live there:

* **kept** pictures (``keep=True``) in :func:`render_dir` itself: the heatmap overlays, photos and
  histogram plots that views keep referring to; their owner deletes them (the statics cache in
  :mod:`app.views`, through :func:`delete_static`);
* **one-shot** outputs (plots, swipe pictures, API overlays, zips) in :func:`output_dir`, numbered in
  order; only the newest :data:`MAX_OUTPUTS` are kept (:func:`prune_outputs`).

The folder goes when the server does (:func:`remove_render_dir`): at ``demo.close()`` (see
:meth:`app.hosting.ExplainerBlocks.close`) and at the process's exit, so no run leaves its pictures behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable

import cv2
import numpy as np

MAX_OUTPUTS = 1000
"""One-shot outputs kept in :func:`output_dir` (the newest by name)."""
_PRUNE_EVERY = 50
_FOLDER = threading.Lock()
_render_dir: str | None = None
_OUTPUTS = threading.Lock()
_outputs_written = 0
_ON_REMOVE: list[Callable[[], None]] = []


def render_dir() -> str:
    """The app's private folder of pictures (``cam-explainer-*`` in the temp folder), created on first call."""
    global _render_dir
    with _FOLDER:
        if _render_dir is None:
            _render_dir = tempfile.mkdtemp(prefix="cam-explainer-")
            os.makedirs(os.path.join(_render_dir, "out"), exist_ok=True)
            atexit.register(remove_render_dir)  # once per folder; a no-op once the folder is gone
        return _render_dir


def on_remove(forget: Callable[[], None]) -> None:
    """Call ``forget`` whenever :func:`remove_render_dir` removes the folder (caches of URLs into it drop them)."""
    _ON_REMOVE.append(forget)


def remove_render_dir() -> None:
    """Delete the render folder and everything in it; the next :func:`render_dir` call makes a new one.

    Run at ``demo.close()`` and at exit. Caches that hand out URLs into the folder are emptied first
    (:func:`on_remove`), so none hands out a URL to a deleted picture afterwards.
    """
    global _render_dir
    with _FOLDER:
        folder, _render_dir = _render_dir, None
    if folder is None:
        return
    for forget in _ON_REMOVE:
        forget()
    shutil.rmtree(folder, ignore_errors=True)


def output_dir() -> str:
    """``render_dir()/out``: the one-shot outputs, pruned to the newest :data:`MAX_OUTPUTS`."""
    return os.path.join(render_dir(), "out")


def prune_outputs(keep: int | None = None) -> int:
    """Delete all but the ``keep`` (default :data:`MAX_OUTPUTS`) newest files of :func:`output_dir`.

    Newest by name: :func:`new_path` numbers the files it hands out. Returns how many were deleted.
    """
    keep = MAX_OUTPUTS if keep is None else keep
    folder = output_dir()
    names = sorted(os.listdir(folder), reverse=True)
    for name in names[keep:]:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, name))
    return max(0, len(names) - keep)


def new_path(suffix: str, keep: bool = False, name: str = "") -> str:
    """A fresh, unguessable file path with ``suffix``.

    In :func:`output_dir` (numbered in order and pruned to the newest :data:`MAX_OUTPUTS` every
    :data:`_PRUNE_EVERY` files), or in :func:`render_dir` itself with ``keep``. ``name``: what a download of the
    file is called (:func:`readable_name` of it follows the unguessable prefix; the browser drops that prefix:
    :data:`app.events.DOWNLOAD_JS`).
    """
    global _outputs_written
    if keep:
        return os.path.join(render_dir(), f"{uuid.uuid4().hex}{suffix}")
    with _OUTPUTS:
        _outputs_written += 1
        number = _outputs_written
        if number % _PRUNE_EVERY == 0:
            prune_outputs()
    tail = f"{DOWNLOAD_SEPARATOR}{readable_name(name)}" if name else ""
    return os.path.join(output_dir(), f"{number:012d}-{uuid.uuid4().hex}{tail}{suffix}")


DOWNLOAD_SEPARATOR = "--"
"""Between a file's unguessable prefix and the name its download is given (:func:`new_path`)."""


def readable_name(text: str, limit: int = 60) -> str:
    """``text`` as a safe file-name stem: lower-case ASCII letters, digits and single hyphens (``"file"`` if none
    is left), at most ``limit`` characters; e.g. ``"cam-explanation-ilsvrc2012-val-00000001"``."""
    stem = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return stem or "file"


def save_png(image: np.ndarray, keep: bool = False) -> str:
    """Write RGB uint8 (H, W, 3) or grey uint8 (H, W) as a fast-compressed PNG (plots, heatmap levels);
    return its path (see :func:`new_path`)."""
    path = new_path(".png", keep)
    pixels = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    cv2.imwrite(path, pixels, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return path


def save_jpeg(image: np.ndarray, keep: bool = False) -> str:
    """Write RGB uint8 (H, W, 3) as JPEG (quality 92; for photo-like pictures, ~20x faster than PNG)."""
    path = new_path(".jpg", keep)
    cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def static_url(image: np.ndarray, kind: str = "jpeg") -> str:
    """Write RGB uint8 (H, W, 3) (or grey (H, W), as PNG) as a kept picture; return the URL Gradio serves it at."""
    path = save_jpeg(image, keep=True) if kind == "jpeg" else save_png(image, keep=True)
    return f"gradio_api/file={path}"


def delete_static(url: str) -> None:
    """Remove a file made by :func:`static_url` (cache eviction); anything outside :func:`render_dir` is left."""
    path = url.removeprefix("gradio_api/file=")
    if os.path.dirname(path) == render_dir():
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
