"""Loaded models (read-only, shared by every session), each loaded in a background worker, never inside an event.

:class:`ModelCache` keys models by ``(menu name, output_stride)`` (the stride builds another network; the input
size does not: it is :func:`cam_core.with_input_size`'s business, per analysis). An event that needs a model
not yet loaded starts its load and waits at most :data:`LOAD_WAIT_S`; then it gets :class:`ModelLoading` with an
estimate ("about N s": the model's last load time, else :func:`estimate_load_s`), and the load goes on. The page
polls :meth:`ModelCache.status` and finishes the switch when the model is ready (:mod:`app.model_loading`).

An unqueued event runs under :func:`cache_only`: a missing analysis or model raises :class:`NotCached` there,
and the event is run again through the queue (:func:`app.lanes.install_lanes`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import cam_core
from app import models
from app.models import checkpoint_names
from cam_core.resolution import check_output_stride

MAX_MODELS = 4
"""Loaded models kept beyond the default model (each stride of a model counts once)."""
LOAD_WAIT_S = float(os.environ.get("CAM_LOAD_WAIT_S", "1"))
"""How long a fast-lane event waits for a model loading from local files before it answers "loading, about N s"
and lets the load go on in the background (a local build takes 0.7-2.6 s here). A download is never waited for."""
DOWNLOAD_WAIT_S = 0.25
"""How long any event waits for a load that downloads weights: enough for an instant failure (offline mode) to be
said at once, never for the download."""
LONG_JOB_LOAD_WAIT_S = 30.0
"""The same for a slow-lane job (Evaluate), which holds its lane for seconds anyway."""
FAILURE_MEMORY_S = 300.0
"""A failed load is answered from memory for this long instead of being retried (one slow offline pick
must not stall the page again on every click)."""
MAX_PENDING_LOADS = 4
"""Loads waiting or running at once; one more model is refused until one finishes (loads are CPU and network)."""
DOWNLOAD_MB_PER_S = 20.0
"""The download speed the estimate of a hub model's first load assumes (a stated estimate, not a measurement)."""
LOCAL_LOAD_S = 3.0
"""The estimate of a load from local files (bundled weights, a checkpoint, the hub cache) before one was timed."""

ModelKey = tuple[str, int]
"""``(name, output_stride)``: a dilated network is another network (same weights)."""
CACHE_ONLY_FLAG: ContextVar[bool] = ContextVar("cam_cache_only", default=False)
"""Set by :func:`cache_only`; read by :func:`app.state.get_analysis` too."""


class NotCached(Exception):  # noqa: N818  (a signal for app.lanes, not an error shown to anyone)
    """An event that may only read the caches (:func:`cache_only`) needs an analysis or a model that is not there:
    the event is run again through the queue (:func:`app.lanes.install_lanes`)."""


@contextlib.contextmanager
def cache_only() -> Iterator[None]:
    """Within the block (this thread or task), a cache miss raises :class:`NotCached` instead of running a forward
    pass or loading a model: what every unqueued event runs under."""
    token = CACHE_ONLY_FLAG.set(True)
    try:
        yield
    finally:
        CACHE_ONLY_FLAG.reset(token)


class ModelLoading(cam_core.WeightsUnavailableError):
    """A model is loading in the background; the event that needs it answers at once instead of waiting.

    Attributes:
        name: the menu value being loaded.
        output_stride: the stride it is built with.
        remaining_s: the estimated seconds until it is ready (>= 1).
        source: where the weights come from, in words (``"download from the Hugging Face Hub, 45 MB"``).
    """

    def __init__(self, name: str, output_stride: int, remaining_s: float, source: str) -> None:
        self.name, self.output_stride, self.remaining_s, self.source = name, output_stride, remaining_s, source
        super().__init__(f"Loading {name} ({source}): about {remaining_s:.0f} s. Try again then.")


@dataclass(frozen=True)
class LoadStatus:
    """Where the load of one model stands: ``ready``, ``failed`` (with ``error``) or ``loading`` (with the estimate)."""

    state: str
    error: str = ""
    remaining_s: float = 0.0
    elapsed_s: float = 0.0  # since the load started (``loading`` only)
    expected_s: float = 0.0  # the estimate of the whole load: the last load's time, else estimate_load_s


class ModelCache:
    """Models by ``(menu name, output_stride)``, each loaded once in a background worker, never inside an event.

    Each key has its own future: a slow hub download of one model never blocks the default model or another
    user's upload, and an event waits at most :data:`LOAD_WAIT_S` for it, then gets :class:`ModelLoading`
    (with an estimate) and the load goes on. Failures are remembered for :data:`FAILURE_MEMORY_S`. Names are
    checked against the menu before anything loads.
    """

    def __init__(self, max_models: int = MAX_MODELS) -> None:
        self.max_models = max_models
        self._futures: OrderedDict[ModelKey, Future[cam_core.LoadedModel]] = OrderedDict()
        self._failed_at: dict[ModelKey, float] = {}
        self._started_at: dict[ModelKey, float] = {}
        self._took: dict[str, float] = {}  # name -> seconds of its last load (any stride)
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

    def get(self, name: Any, output_stride: int = 32, wait_s: float | None = None) -> cam_core.LoadedModel:
        """The loaded model ``name`` (a menu value) built with ``output_stride``, its load started on first use.

        The caller waits at most ``wait_s`` (default :data:`LOAD_WAIT_S`) for a load from local files, and at most
        :data:`DOWNLOAD_WAIT_S` for one that downloads weights: both go on in the background.

        Raises:
            UnknownModelError: not a menu value (never treated as a path or a hub name).
            ParameterError: ``output_stride`` not 32 / 16 / 8, not supported by the architecture, or a
                registered model asked for at a stride it was not built with.
            ModelLoading: not loaded within the wait; the load goes on.
            WeightsUnavailableError: :data:`MAX_PENDING_LOADS` other loads are under way.
            NotCached: not loaded, and the caller runs under :func:`cache_only` (nothing is started).
            CamError: the load failed (the same error for :data:`FAILURE_MEMORY_S`).
        """
        key, future = self._future(name, output_stride)
        if isinstance(future, cam_core.LoadedModel):
            return future
        if not future.done() and CACHE_ONLY_FLAG.get():
            raise NotCached(f"{name} is not loaded")
        wait = LOAD_WAIT_S if wait_s is None else wait_s
        try:
            return future.result(timeout=min(wait, DOWNLOAD_WAIT_S) if not future.done() and downloads(name) else wait)
        except FutureTimeout:
            raise ModelLoading(name, key[1], self.status(name, key[1]).remaining_s, weights_source(name)) from None

    def _future(self, name: Any, output_stride: int) -> tuple[ModelKey, Any]:
        """The key and the load's future (started if needed), or the registered model itself."""
        if not isinstance(name, str) or name not in self.known():
            menu = sorted(set(cam_core.MODELS) | set(checkpoint_names()))
            raise cam_core.UnknownModelError(f"Unknown model {str(name)[:60]!r}: `model` must be one of {menu}.")
        key = (name, check_output_stride(output_stride))
        with self._lock:
            if key in self._registered:
                return key, self._registered[key]
            if any(registered == name for registered, _ in self._registered):
                raise cam_core.ParameterError(f"{name} is registered with another output stride than {output_stride}.")
            future = self._futures.get(key)
            failed = future is not None and future.done() and future.exception() is not None
            if future is None or (failed and time.monotonic() - self._failed_at.get(key, 0.0) > FAILURE_MEMORY_S):
                if future is None and CACHE_ONLY_FLAG.get():
                    raise NotCached(f"{name} is not loaded")
                pending = sum(not f.done() for f in self._futures.values())
                if pending >= MAX_PENDING_LOADS:
                    raise cam_core.WeightsUnavailableError(
                        f"The server is loading {pending} other models; try {name} again in a minute."
                    )
                self._started_at[key] = time.monotonic()
                future = self._pool.submit(_load, *key)
                future.add_done_callback(functools.partial(self._finished, key))
                self._futures[key] = future
            self._futures.move_to_end(key)
        return key, future

    def status(self, name: str, output_stride: int) -> LoadStatus:
        """Where ``name``'s load at ``output_stride`` stands, without starting one (``loading`` for an unknown key:
        nothing to report yet)."""
        key = (name, output_stride)
        with self._lock:
            if key in self._registered:
                return LoadStatus("ready")
            future, started = self._futures.get(key), self._started_at.get(key, time.monotonic())
            took = self._took.get(name)
        if future is not None and future.done():
            error = future.exception()
            return LoadStatus("ready") if error is None else LoadStatus("failed", str(error))
        estimate, elapsed = (took if took is not None else estimate_load_s(name)), time.monotonic() - started
        return LoadStatus("loading", remaining_s=max(1.0, estimate - elapsed), elapsed_s=elapsed, expected_s=estimate)

    def _finished(self, key: ModelKey, future: Future[cam_core.LoadedModel]) -> None:
        with self._lock:
            if future.exception() is not None:
                self._failed_at[key] = time.monotonic()
            else:
                self._took[key[0]] = time.monotonic() - self._started_at.get(key, time.monotonic())
            loaded = [k for k, f in self._futures.items() if f.done() and f.exception() is None]
            for old in loaded[: max(0, len(loaded) - self.max_models)]:
                if old != key and old[0] != cam_core.DEFAULT_MODEL:
                    del self._futures[old]


MODELS = ModelCache()


def weights_source(name: str) -> str:
    """Where ``name``'s weights come from, in words, with a hub model's download size when it is not cached."""
    spec = cam_core.MODELS.get(name)
    if spec is None or spec.weights == "bundled":
        return "local weights"
    if hub_weights_cached(spec.arch):
        return "weights from this server's Hugging Face cache"
    return f"weights download from the Hugging Face Hub, {weights_mb(spec.arch):.0f} MB"


def downloads(name: str) -> bool:
    """Whether loading ``name`` downloads its weights (a hub model not in this server's Hugging Face cache)."""
    spec = cam_core.MODELS.get(name)
    return spec is not None and spec.weights == "hub" and not hub_weights_cached(spec.arch)


def estimate_load_s(name: str) -> float:
    """Seconds a first load of ``name`` is estimated to take: :data:`LOCAL_LOAD_S`, plus for hub weights not yet
    cached their size at :data:`DOWNLOAD_MB_PER_S` (a stated estimate, used until one load was timed)."""
    spec = cam_core.MODELS.get(name)
    if spec is None or not downloads(name):
        return LOCAL_LOAD_S
    return LOCAL_LOAD_S + weights_mb(spec.arch) / DOWNLOAD_MB_PER_S


@functools.lru_cache(maxsize=32)
def weights_mb(arch: str) -> float:
    """float32 size of ``arch``'s parameters in MiB (built on the meta device: no memory, no download)."""
    import timm
    import torch

    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False)
    return sum(p.numel() for p in model.parameters()) * 4 / 2**20


def hub_weights_cached(arch: str) -> bool:
    """Whether timm's pretrained weights of ``arch`` are already in the local Hugging Face cache."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(arch)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        return False
    files = ("open_clip_pytorch_model.bin", "model.safetensors", "pytorch_model.bin")
    return any(isinstance(try_to_load_from_cache(repo, name), str) for name in files)


def get_model(name: Any, output_stride: int = 32, wait_s: float | None = None) -> cam_core.LoadedModel:
    """Load (once) and return a model by menu value (registry name or shipped checkpoint) and output stride;
    read-only afterwards. A checkpoint name is taken as it is here (:func:`get_analysis` picks the family member).

    Raises:
        ModelLoading: still loading after ``wait_s`` (default :data:`LOAD_WAIT_S`; none for a download), the load
            going on in the background.
        cam_core.CamError: not a menu value, weights unavailable, inexact head, bad checkpoint, an output stride
            the architecture cannot be built with.
    """
    return MODELS.get(name, output_stride) if wait_s is None else MODELS.get(name, output_stride, wait_s)


def register_model(name: str, loaded: cam_core.LoadedModel) -> None:
    """Put an already loaded model into the cache under ``name`` (benchmarks: random-init hub models offline)."""
    MODELS.register(name, loaded)


OFFLINE_CAUSES = ("LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectError", "ConnectionError",
                  "Name or service not known", "Temporary failure in name resolution", "gaierror")  # fmt: skip


def _load(name: str, output_stride: int) -> cam_core.LoadedModel:
    import torch

    torch.set_num_threads(1)  # a background load shares the CPU with the lanes (this pool's threads only)
    try:
        if name in checkpoint_names():  # a menu value: never a path
            from cam_core.train.checkpoint import load_checkpoint

            return load_checkpoint(models.CHECKPOINT_DIR / f"{name}.safetensors", output_stride=output_stride)
        return cam_core.load_model(name, output_stride=output_stride)
    except cam_core.ParameterError as exc:  # the library says `output_stride=32`; the page calls it Resolution
        if output_stride == 32:
            raise
        raise cam_core.ParameterError(f"{exc} In the app: pick a Resolution with stride 32 for it.") from exc
    except cam_core.WeightsUnavailableError as exc:
        if any(cause in str(exc) for cause in OFFLINE_CAUSES):
            raise cam_core.WeightsUnavailableError(
                f"{name}'s weights must be downloaded from the Hugging Face Hub, and this server has no network "
                f"access. The offline default {cam_core.DEFAULT_MODEL} works without it."
            ) from exc
        raise
