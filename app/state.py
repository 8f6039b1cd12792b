"""Server-side caches: loaded models (read-only) and analyses (content-addressed, bounded by memory).

Per-user state lives in ``gr.State`` as a small :class:`Session` (keys and the upload's path). The
heavy :class:`~cam_core.cam.Analysis` objects sit in one :class:`AnalysisCache` keyed by the hash of
the image pixels and the model name: a key can only ever map to the analysis of those exact pixels, so
sessions cannot see each other's results, and a repeated image (same photo, example or API call) reuses
its forward pass. The cache is an LRU bounded in bytes; an evicted entry is recomputed from the
session's upload on next use.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
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


@dataclass(frozen=True, eq=False)
class Session:
    """What one browser session (or API client) remembers between events.

    Attributes:
        image_hash: sha1 of the decoded RGB pixels and their shape.
        source: checked real path of the upload; only queued events (a model change) read it again.
        model: model name of the plain (baseline) analysis.
        display: uint8 (h, w, 3), the photo at display size (long side <= 512 px, <= 786 kB). Instant
            (unqueued) events never decode a file: on an analysis-cache miss they analyse this copy.
        size: ``(H, W)`` of the photo as given (upright), even when it was analysed smaller (over 4 MP): the
            frame of every box the app reports or accepts.
    """

    image_hash: str
    source: str
    model: str
    display: np.ndarray
    size: tuple[int, int]

    @property
    def size_on_screen(self) -> tuple[int, int]:
        """``(h, w)`` of :attr:`display`."""
        return int(self.display.shape[0]), int(self.display.shape[1])


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
MAX_MODELS = 3
LOAD_TIMEOUT_S = float(os.environ.get("CAM_LOAD_TIMEOUT_S", "120"))
"""How long an event waits for a model to load (a hub download) before it says so; the load goes on."""
FAILURE_MEMORY_S = 300.0
"""A failed load is answered from memory for this long instead of being retried (one slow offline pick
must not stall the page again on every click)."""


class ModelCache:
    """Models by menu name, loaded at most once each, outside any lock that other models need.

    Each name has its own future: a slow hub download of one model never blocks the default model
    or another user's upload, and a caller waits at most :data:`LOAD_TIMEOUT_S`. Failures are
    remembered for :data:`FAILURE_MEMORY_S`. Names are checked against the menu before anything loads.
    """

    def __init__(self, max_models: int = MAX_MODELS) -> None:
        self.max_models = max_models
        self._futures: OrderedDict[str, Future[cam_core.LoadedModel]] = OrderedDict()
        self._failed_at: dict[str, float] = {}
        self._registered: dict[str, cam_core.LoadedModel] = {}
        self._lock = threading.Lock()  # guards the dicts only; never held while a model loads
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="model-load")

    def known(self) -> set[str]:
        """Names that may be loaded: the registry, the shipped checkpoints with a card, registered models."""
        with self._lock:
            registered = set(self._registered)
        return set(cam_core.MODELS) | set(checkpoint_names()) | registered

    def register(self, name: str, loaded: cam_core.LoadedModel) -> None:
        """Make an already loaded model available under ``name`` (benchmarks and tests: tiny or offline models)."""
        with self._lock:
            self._registered[name] = loaded

    def get(self, name: Any) -> cam_core.LoadedModel:
        """The loaded model ``name`` (a menu value), loading it on first use.

        Raises:
            UnknownModelError: not a menu value (never treated as a path or a hub name).
            WeightsUnavailableError: the load did not finish within :data:`LOAD_TIMEOUT_S`.
            CamError: the load failed (the same error for :data:`FAILURE_MEMORY_S`).
        """
        if not isinstance(name, str) or name not in self.known():
            menu = sorted(set(cam_core.MODELS) | set(checkpoint_names()))
            raise cam_core.UnknownModelError(f"Unknown model {str(name)[:60]!r}: `model` must be one of {menu}.")
        with self._lock:
            if name in self._registered:
                return self._registered[name]
            future = self._futures.get(name)
            failed = future is not None and future.done() and future.exception() is not None
            if future is None or (failed and time.monotonic() - self._failed_at.get(name, 0.0) > FAILURE_MEMORY_S):
                future = self._pool.submit(_load, name)
                future.add_done_callback(functools.partial(self._finished, name))
                self._futures[name] = future
            self._futures.move_to_end(name)
        try:
            return future.result(timeout=LOAD_TIMEOUT_S)
        except FutureTimeout:
            raise cam_core.WeightsUnavailableError(
                f"Loading {name} did not finish within {LOAD_TIMEOUT_S:.0f} s (its weights download from the "
                "Hugging Face Hub; is this server offline?). The other models keep working."
            ) from None

    def _finished(self, name: str, future: Future[cam_core.LoadedModel]) -> None:
        with self._lock:
            if future.exception() is not None:
                self._failed_at[name] = time.monotonic()
            loaded = [n for n, f in self._futures.items() if f.done() and f.exception() is None]
            for old in loaded[: max(0, len(loaded) - self.max_models)]:
                if old != name and old != cam_core.DEFAULT_MODEL:
                    del self._futures[old]


def checkpoint_names() -> list[str]:
    """Shipped checkpoints: ``assets/checkpoints/NAME.safetensors`` with a ``NAME.json`` card beside it."""
    return [p.stem for p in sorted(CHECKPOINT_DIR.glob("*.safetensors")) if p.with_suffix(".json").is_file()]


MODELS = ModelCache()


def get_model(name: Any) -> cam_core.LoadedModel:
    """Load (once) and return a model by menu value (registry name or shipped checkpoint); read-only afterwards.

    Raises:
        cam_core.CamError: not a menu value, weights unavailable or too slow, inexact head, bad checkpoint.
    """
    return MODELS.get(name)


def register_model(name: str, loaded: cam_core.LoadedModel) -> None:
    """Put an already loaded model into the cache under ``name`` (benchmarks: random-init hub models offline)."""
    MODELS.register(name, loaded)


def _load(name: str) -> cam_core.LoadedModel:
    if name in checkpoint_names():  # a menu value: never a path
        from cam_core.checkpoint import load_checkpoint

        return load_checkpoint(CHECKPOINT_DIR / f"{name}.safetensors")
    return cam_core.load_model(name)


def get_analysis(session: Session, model: str) -> Analysis:
    """The analysis of the session's photo under ``model``: from the cache, else one forward pass.

    A miss (the first TAP toggle, or an entry evicted under memory pressure) analyses the session's
    display-size copy, never the file: no event but an upload decodes, so no slider move can cost a
    decode. That copy (long side 512 px) is at least as large as the network inputs used here, so the
    network sees the same photo up to resampling; boxes stay in the frame of ``session.size``.
    """
    cached = ANALYSES.get(model, session.image_hash)
    if cached is not None:
        return cached
    analysis = cam_core.analyze(get_model(model), session.display)
    ANALYSES.put(model, session.image_hash, analysis)
    return analysis
