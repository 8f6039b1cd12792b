"""Server-side caches: loaded models (read-only) and analyses (content-addressed, bounded by memory).

Per-user state lives in ``gr.State`` as a small :class:`Session` (keys and the upload's path). The
heavy :class:`~cam_core.cam.Analysis` objects sit in one :class:`AnalysisCache` keyed by the hash of
the image pixels, the model name and the analysis :class:`~app.models.Resolution`: a key can only ever map
to the analysis of those exact pixels, so sessions cannot see each other's results, and a repeated image
(same photo, example or API call) reuses its forward pass. The cache is an LRU bounded in bytes; an evicted
entry is recomputed from the session's display copy on next use.

Models are cached by ``(name, output_stride)`` (the stride builds another network; the input size does not:
it is :func:`cam_core.with_input_size`'s business, per analysis).
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
from typing import Any, TypeVar

import numpy as np

import cam_core
from app import models
from app.models import CHECKPOINT_DIR, Resolution, checkpoint_names
from cam_core.cam import Analysis
from cam_core.resolution import check_output_stride

__all__ = ["CHECKPOINT_DIR", "Resolution", "checkpoint_names"]  # re-exported: older imports read them here

T = TypeVar("T")
CACHE_BYTES = int(float(os.environ.get("CAM_CACHE_MB", "768")) * 2**20)
"""Memory budget of the analysis cache (env ``CAM_CACHE_MB``, default 768 MiB)."""


@dataclass(frozen=True, eq=False)
class Session:
    """What one browser session (or API client) remembers between events.

    Attributes:
        image_hash: sha1 of the decoded RGB pixels and their shape.
        source: checked real path of the upload; only queued events (a model change) read it again.
        model: model name of the plain (baseline) analysis (a menu value: a checkpoint stands for its family).
        display: uint8 (h, w, 3), the photo at display size (long side <= 512 px, <= 786 kB). Instant
            (unqueued) events never decode a file: on an analysis-cache miss they analyse this copy.
        size: ``(H, W)`` of the photo as given (upright), even when it was analysed smaller (over 4 MP): the
            frame of every box the app reports or accepts.
        resolution: the analysis resolution of every view of this photo (the Resolution control's value).
    """

    image_hash: str
    source: str
    model: str
    display: np.ndarray
    size: tuple[int, int]
    resolution: Resolution

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


AnalysisKey = tuple[str, Resolution, str]
"""``(model, resolution, image_hash)``: ``model`` the checkpoint or registry name the analysis was made with."""


class AnalysisCache:
    """Thread-safe LRU of analyses keyed by ``(model, resolution, image_hash)``, bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[AnalysisKey, Analysis] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, model: str, resolution: Resolution, key: str) -> Analysis | None:
        """Return the cached analysis and mark it recently used, or ``None``."""
        with self._lock:
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
MAX_MODELS = 4
"""Loaded models kept beyond the default model (each stride of a model counts once)."""
LOAD_TIMEOUT_S = float(os.environ.get("CAM_LOAD_TIMEOUT_S", "120"))
"""How long an event waits for a model to load (a hub download) before it says so; the load goes on."""
FAILURE_MEMORY_S = 300.0
"""A failed load is answered from memory for this long instead of being retried (one slow offline pick
must not stall the page again on every click)."""

ModelKey = tuple[str, int]
"""``(name, output_stride)``: a dilated network is another network (same weights)."""


class ModelCache:
    """Models by ``(menu name, output_stride)``, loaded at most once each, outside any lock that other models need.

    Each key has its own future: a slow hub download of one model never blocks the default model
    or another user's upload, and a caller waits at most :data:`LOAD_TIMEOUT_S`. Failures are
    remembered for :data:`FAILURE_MEMORY_S`. Names are checked against the menu before anything loads.
    """

    def __init__(self, max_models: int = MAX_MODELS) -> None:
        self.max_models = max_models
        self._futures: OrderedDict[ModelKey, Future[cam_core.LoadedModel]] = OrderedDict()
        self._failed_at: dict[ModelKey, float] = {}
        self._registered: dict[ModelKey, cam_core.LoadedModel] = {}
        # guards the dicts only; never held while a model loads. Reentrant: a load that fails at once (a stride
        # the architecture refuses) is done before `add_done_callback`, which then runs `_finished` right there
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="model-load")

    def known(self) -> set[str]:
        """Names that may be loaded: the registry, the shipped checkpoints with a card, registered models."""
        with self._lock:
            registered = {name for name, _ in self._registered}
        return set(cam_core.MODELS) | set(checkpoint_names()) | registered

    def register(self, name: str, loaded: cam_core.LoadedModel) -> None:
        """Make an already loaded model available under ``name`` at its own output stride (benchmarks and tests:
        tiny or offline models); asked for at another stride, ``name`` is refused, never rebuilt."""
        with self._lock:
            self._registered[(name, loaded.output_stride)] = loaded

    def get(self, name: Any, output_stride: int = 32) -> cam_core.LoadedModel:
        """The loaded model ``name`` (a menu value) built with ``output_stride``, loading it on first use.

        Raises:
            UnknownModelError: not a menu value (never treated as a path or a hub name).
            ParameterError: ``output_stride`` not 32 / 16 / 8, not supported by the architecture, or a
                registered model asked for at a stride it was not built with.
            WeightsUnavailableError: the load did not finish within :data:`LOAD_TIMEOUT_S`.
            CamError: the load failed (the same error for :data:`FAILURE_MEMORY_S`).
        """
        if not isinstance(name, str) or name not in self.known():
            menu = sorted(set(cam_core.MODELS) | set(checkpoint_names()))
            raise cam_core.UnknownModelError(f"Unknown model {str(name)[:60]!r}: `model` must be one of {menu}.")
        key = (name, check_output_stride(output_stride))
        with self._lock:
            if key in self._registered:
                return self._registered[key]
            if any(registered == name for registered, _ in self._registered):
                raise cam_core.ParameterError(f"{name} is registered with another output stride than {output_stride}.")
            future = self._futures.get(key)
            failed = future is not None and future.done() and future.exception() is not None
            if future is None or (failed and time.monotonic() - self._failed_at.get(key, 0.0) > FAILURE_MEMORY_S):
                future = self._pool.submit(_load, *key)
                future.add_done_callback(functools.partial(self._finished, key))
                self._futures[key] = future
            self._futures.move_to_end(key)
        try:
            return future.result(timeout=LOAD_TIMEOUT_S)
        except FutureTimeout:
            raise cam_core.WeightsUnavailableError(
                f"Loading {name} did not finish within {LOAD_TIMEOUT_S:.0f} s (its weights download from the "
                "Hugging Face Hub; is this server offline?). The other models keep working."
            ) from None

    def _finished(self, key: ModelKey, future: Future[cam_core.LoadedModel]) -> None:
        with self._lock:
            if future.exception() is not None:
                self._failed_at[key] = time.monotonic()
            loaded = [k for k, f in self._futures.items() if f.done() and f.exception() is None]
            for old in loaded[: max(0, len(loaded) - self.max_models)]:
                if old != key and old[0] != cam_core.DEFAULT_MODEL:
                    del self._futures[old]


MODELS = ModelCache()


def get_model(name: Any, output_stride: int = 32) -> cam_core.LoadedModel:
    """Load (once) and return a model by menu value (registry name or shipped checkpoint) and output stride;
    read-only afterwards. A checkpoint name is taken as it is here (:func:`get_analysis` picks the family member).

    Raises:
        cam_core.CamError: not a menu value, weights unavailable or too slow, inexact head, bad checkpoint,
            an output stride the architecture cannot be built with.
    """
    return MODELS.get(name, output_stride)


def register_model(name: str, loaded: cam_core.LoadedModel) -> None:
    """Put an already loaded model into the cache under ``name`` (benchmarks: random-init hub models offline)."""
    MODELS.register(name, loaded)


def _load(name: str, output_stride: int) -> cam_core.LoadedModel:
    try:
        if name in checkpoint_names():  # a menu value: never a path
            from cam_core.checkpoint import load_checkpoint

            return load_checkpoint(models.CHECKPOINT_DIR / f"{name}.safetensors", output_stride=output_stride)
        return cam_core.load_model(name, output_stride=output_stride)
    except cam_core.ParameterError as exc:  # the library says `output_stride=32`; the page calls it Resolution
        if output_stride == 32:
            raise
        raise cam_core.ParameterError(f"{exc} In the app: pick a Resolution with stride 32 for it.") from exc


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
    loaded = get_model(name, resolution.output_stride)
    analysis = cam_core.analyze(loaded, session.display, input_size=resolution.input_size)
    ANALYSES.put(name, resolution, session.image_hash, analysis)
    return analysis
