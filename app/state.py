"""Server-side caches: loaded models (read-only) and analyses (content-addressed, bounded by memory).

Per-user state lives in ``gr.State`` as a small :class:`Session` (keys and the upload's path). The
heavy :class:`~cam_core.cam.Analysis` objects sit in one :class:`AnalysisCache` keyed by the hash of
the image pixels and the model name: a key can only ever map to the analysis of those exact pixels, so
sessions cannot see each other's results, and a repeated image (same photo, example or API call) reuses
its forward pass. The cache is an LRU bounded in bytes; an evicted entry is recomputed from the
session's upload on next use.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

import cam_core
from cam_core.cam import Analysis

T = TypeVar("T")
CACHE_BYTES = int(float(os.environ.get("CAM_CACHE_MB", "768")) * 2**20)
"""Memory budget of the analysis cache (env ``CAM_CACHE_MB``, default 768 MiB)."""

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "assets" / "checkpoints"


@dataclass(frozen=True)
class Session:
    """What one browser session (or API client) remembers between events.

    Attributes:
        image_hash: sha1 of the decoded RGB pixels and their shape.
        source: path of the uploaded file, used to recompute an evicted analysis.
        model: model name of the plain (baseline) analysis.
    """

    image_hash: str
    source: str
    model: str


def image_hash(image: np.ndarray) -> str:
    """sha1 hex digest of an RGB uint8 (H, W, 3) array's shape and bytes."""
    digest = hashlib.sha1(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


def _size_of(analysis: Analysis) -> int:
    # class_weights is a shared read-only view of the model's weights: not counted per entry
    return analysis.image.nbytes + analysis.feature_maps.nbytes + 3 * analysis.logits.nbytes


class AnalysisCache:
    """Thread-safe LRU of analyses keyed by ``(model, image_hash)``, bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], Analysis] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, model: str, key: str) -> Analysis | None:
        """Return the cached analysis and mark it recently used, or ``None``."""
        with self._lock:
            entry = self._entries.get((model, key))
            if entry is not None:
                self._entries.move_to_end((model, key))
            return entry

    def put(self, model: str, key: str, analysis: Analysis) -> None:
        """Insert (or refresh) an entry, evicting least recently used ones beyond the budget."""
        with self._lock:
            old = self._entries.pop((model, key), None)
            self._bytes -= _size_of(old) if old is not None else 0
            self._entries[(model, key)] = analysis
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


ANALYSES = AnalysisCache()
_MODEL_LOCK = threading.Lock()
_MODELS: dict[str, cam_core.LoadedModel] = {}
MAX_MODELS = 3


def get_model(name: str) -> cam_core.LoadedModel:
    """Load (once) and return a model by registry name or checkpoint label; read-only afterwards.

    Raises:
        cam_core.CamError: unknown model, weights unavailable, inexact head, bad checkpoint.
    """
    with _MODEL_LOCK:
        if name not in _MODELS:
            if len(_MODELS) >= MAX_MODELS:
                _MODELS.pop(next(iter(_MODELS)))
            _MODELS[name] = _load(name)
        return _MODELS[name]


def register_model(name: str, loaded: cam_core.LoadedModel) -> None:
    """Put an already loaded model into the cache under ``name`` (benchmarks: random-init hub models offline)."""
    with _MODEL_LOCK:
        _MODELS[name] = loaded


def _load(name: str) -> cam_core.LoadedModel:
    checkpoint = CHECKPOINT_DIR / f"{name}.safetensors"
    if checkpoint.is_file():
        from cam_core.checkpoint import load_checkpoint

        return load_checkpoint(checkpoint)
    return cam_core.load_model(name)


def get_analysis(session: Session, model: str) -> Analysis:
    """The analysis of the session's image under ``model``: from the cache, else one forward pass."""
    cached = ANALYSES.get(model, session.image_hash)
    if cached is not None:
        return cached
    try:
        image = cam_core.load_image(session.source)
    except cam_core.InvalidImageError as exc:
        raise cam_core.InvalidImageError("This session's photo is no longer available: upload it again.") from exc
    analysis = cam_core.analyze(get_model(model), image)
    ANALYSES.put(model, session.image_hash, analysis)
    return analysis
