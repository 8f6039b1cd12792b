"""Server-side caches: loaded models (read-only) and analyses (content-addressed, bounded by memory).

Per-user state lives in ``gr.State`` as a small :class:`Session`: keys only (a few hundred bytes, whatever the
photo). The heavy :class:`~cam_core.cam.Analysis` objects sit in one :class:`AnalysisCache` keyed by the hash of
the image pixels, the model name and the analysis :class:`~app.models.Resolution`: a key can only ever map
to the analysis of those exact pixels, so sessions cannot see each other's results, and a repeated image
(same photo, example or API call) reuses its forward pass. The cache is an LRU bounded in bytes; an evicted
entry is recomputed from the photo's display copy on next use. The display copies sit in :data:`DISPLAYS`, an
LRU bounded in bytes keyed by the same pixel hash; a session whose copy was evicted is told to upload the photo
again (:class:`PhotoExpiredError`), never shown another photo.

Models live in :mod:`app.model_cache` (loaded in the background, never inside an event); :func:`get_model` and
:func:`register_model` are re-exported here.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

import cam_core
from app import models
from app.model_cache import CACHE_ONLY_FLAG, MODELS, ModelLoading, NotCached, cache_only, get_model, register_model
from app.models import CHECKPOINT_DIR, Resolution, checkpoint_names
from cam_core.cam import Analysis

__all__ = [  # re-exported: older imports read them here
    "CHECKPOINT_DIR",
    "MODELS",
    "ModelLoading",
    "NotCached",
    "Resolution",
    "cache_only",
    "checkpoint_names",
    "get_model",
    "register_model",
]

T = TypeVar("T")
CACHE_BYTES = int(float(os.environ.get("CAM_CACHE_MB", "768")) * 2**20)
"""Memory budget of the analysis cache (env ``CAM_CACHE_MB``, default 768 MiB)."""
DISPLAY_BYTES = int(float(os.environ.get("CAM_DISPLAY_CACHE_MB", "128")) * 2**20)
"""Memory budget of the display copies (env ``CAM_DISPLAY_CACHE_MB``, default 128 MiB: at least 170 photos)."""
PHOTO_EXPIRED = (
    "This photo is no longer held on the server (photos expire when many others have been uploaded since): "
    "upload it again."
)


class PhotoExpiredError(cam_core.InvalidImageError):
    """The session's display copy was evicted from :data:`DISPLAYS`: the photo must be uploaded again."""


@dataclass(frozen=True, eq=False)
class Session:
    """What one browser session (or API client) remembers between events: keys, never pixels.

    Attributes:
        image_hash: sha1 of the decoded RGB pixels and their shape; the key of the photo's display copy and
            analyses.
        name: the upload's file name (the export's JSON says it); the file itself is never read again.
        model: model name of the plain (baseline) analysis (a menu value: a checkpoint stands for its family).
        size: ``(H, W)`` of the photo as given (upright), even when it was analysed smaller (over 4 MP): the
            frame of every box the app reports or accepts.
        size_on_screen: ``(h, w)`` of :attr:`display`.
        resolution: the analysis resolution of every view of this photo (the Resolution control's value).
    """

    image_hash: str
    name: str
    model: str
    size: tuple[int, int]
    size_on_screen: tuple[int, int]
    resolution: Resolution

    @property
    def display(self) -> np.ndarray:
        """uint8 (h, w, 3), the photo at display size (long side <= 512 px, <= 786 kB), from :data:`DISPLAYS`.

        No event but an upload decodes a file: on an analysis-cache miss (a model or resolution change, the first
        TAP toggle) the app analyses this copy.

        Raises:
            PhotoExpiredError: the copy was evicted (the message asks for the photo again).
        """
        return DISPLAYS.need(self.image_hash)


class DisplayCache:
    """Thread-safe LRU of read-only display copies keyed by image hash, bounded by ``max_bytes``.

    The newest copy is always kept, so the session that just uploaded it can use it whatever the budget.
    """

    def __init__(self, max_bytes: int = DISPLAY_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._pinned: dict[str, np.ndarray] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def pin(self, key: str, display: np.ndarray) -> None:
        """Keep ``display`` under ``key`` for the life of the process, outside the budget (the opening example's:
        every visitor's first photo, never evicted by uploads)."""
        display.flags.writeable = False
        with self._lock:
            self._pinned[key] = display

    def put(self, key: str, display: np.ndarray) -> None:
        """Keep ``display`` (uint8 (h, w, 3), made read-only) under ``key``, evicting the least recently used
        copies beyond the budget; a key already held keeps its copy (same pixels) and is marked recently used."""
        with self._lock:
            if key in self._pinned:
                return
            if key in self._entries:
                self._entries.move_to_end(key)
                return
            display.flags.writeable = False
            self._entries[key] = display
            self._bytes += display.nbytes
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes

    def need(self, key: str) -> np.ndarray:
        """The copy under ``key``, marked recently used.

        Raises:
            PhotoExpiredError: not held (evicted, or never put).
        """
        with self._lock:
            if key in self._pinned:
                return self._pinned[key]
            display = self._entries.get(key)
            if display is None:
                raise PhotoExpiredError(PHOTO_EXPIRED)
            self._entries.move_to_end(key)
            return display

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


def image_hash(image: np.ndarray) -> str:
    """sha1 hex digest of an RGB uint8 (H, W, 3) array's shape and bytes."""
    digest = hashlib.sha1(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


def _size_of(analysis: Analysis) -> int:
    # class_weights is a shared read-only view of the model's weights: not counted per entry
    return analysis.image.nbytes + analysis.feature_maps.nbytes + 3 * analysis.logits.nbytes


AnalysisKey = tuple[str, Resolution, str]
"""``(model, resolution, image_hash)``: ``model`` the checkpoint or registry name the analysis was made with."""


class AnalysisCache:
    """Thread-safe LRU of analyses keyed by ``(model, resolution, image_hash)``, bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[AnalysisKey, Analysis] = OrderedDict()
        self._pinned: dict[AnalysisKey, Analysis] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def pin(self, model: str, resolution: Resolution, key: str, analysis: Analysis) -> None:
        """Keep ``analysis`` for the life of the process, outside the budget: the opening example's, which every
        visitor's first page load shows (uploads can never evict it, so a page load never costs a forward pass)."""
        with self._lock:
            self._pinned[(model, resolution, key)] = analysis

    def get(self, model: str, resolution: Resolution, key: str) -> Analysis | None:
        """Return the cached analysis (a pinned one first) and mark it recently used, or ``None``."""
        with self._lock:
            pinned = self._pinned.get((model, resolution, key))
            if pinned is not None:
                return pinned
            entry = self._entries.get((model, resolution, key))
            if entry is not None:
                self._entries.move_to_end((model, resolution, key))
            return entry

    def put(self, model: str, resolution: Resolution, key: str, analysis: Analysis) -> None:
        """Insert (or refresh) an entry, evicting least recently used ones beyond the budget."""
        with self._lock:
            old = self._entries.pop((model, resolution, key), None)
            self._bytes -= _size_of(old) if old is not None else 0
            self._entries[(model, resolution, key)] = analysis
            self._bytes += _size_of(analysis)
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= _size_of(evicted)

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


class SmallLRU:
    """Thread-safe LRU of at most ``size`` derived pictures (e.g. histogram plots), keyed by tuples."""

    def __init__(self, size: int = 64, on_evict: Callable[[Any], None] | None = None) -> None:
        self.size = size
        self.on_evict = on_evict
        self._entries: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key: tuple[object, ...], make: Callable[[], T]) -> T:
        """Return the cached value for ``key``, computing and storing it with ``make()`` on a miss."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]  # type: ignore[return-value]
        value = make()
        evicted = []
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.size:
                evicted.append(self._entries.popitem(last=False)[1])
        for old in evicted:
            if self.on_evict is not None:
                self.on_evict(old)
        return value

    def clear(self) -> None:
        """Forget every entry without calling ``on_evict`` (their files are already gone:
        :func:`app.files.remove_render_dir`)."""
        with self._lock:
            self._entries.clear()


ANALYSES = AnalysisCache()
DISPLAYS = DisplayCache()


def keep_display(key: str, display: np.ndarray) -> None:
    """Put a photo's display copy (uint8 (h, w, 3)) into :data:`DISPLAYS` under its image hash ``key``."""
    DISPLAYS.put(key, display)


def analysis_key(analysis: Analysis) -> tuple[object, ...]:
    """What tells two analyses of one photo apart in the caches of derived views: the model, and the resolution it
    ran at (one model's maps at 224 / 32 and at 448 / 16 are different maps)."""
    return analysis.model_name, analysis.input_size, analysis.output_stride, analysis.pooling, analysis.tap_tau


def analysis_model(session: Session, model: str) -> str:
    """The checkpoint or registry name whose analysis stands for menu value ``model`` at the session's resolution
    (:func:`app.models.member`: the family member trained there, or the nearest)."""
    return models.member(model, session.resolution)


def get_analysis(session: Session, model: str) -> Analysis:
    """The analysis of the session's photo under ``model`` at ``session.resolution``: from the cache, else one
    forward pass. ``model`` is a menu value; a checkpoint family is resolved by :func:`analysis_model`.

    A miss (the first TAP toggle, a resolution change, or an entry evicted under memory pressure) analyses the
    session's display-size copy, never the file: no event but an upload decodes, so no slider move can cost a
    decode. That copy (long side 512 px) is as large as the largest analysis square offered (512) along its
    long side; the short side may be stretched up (a 512 x 384 copy to 448 x 448), so a miss can differ
    slightly from the analysis of the full photo that an upload makes. Boxes stay in the frame of ``session.size``.
    """
    name, resolution = analysis_model(session, model), session.resolution
    cached = ANALYSES.get(name, resolution, session.image_hash)
    if cached is not None:
        return cached
    if CACHE_ONLY_FLAG.get():  # an unqueued event: no forward pass here, the queue runs it (app.lanes)
        raise NotCached(f"no analysis of this photo with {name} at {resolution.value}")
    loaded = get_model(name, resolution.output_stride)
    analysis = cam_core.analyze(loaded, session.display, input_size=resolution.input_size)
    ANALYSES.put(name, resolution, session.image_hash, analysis)
    return analysis
