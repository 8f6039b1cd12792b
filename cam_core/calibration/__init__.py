"""Calibrated probabilities: one temperature per (model, input size, output stride), fitted by NLL.

A network trained at 224 px and run at 448 px / stride 16 ranks classes *better* but its logits shrink in scale
(the train/test resolution discrepancy, Touvron et al., "Fixing the train-test resolution discrepancy", 2019):
its softmax top-1 probability falls to a few percent on photos it classifies correctly. Temperature scaling
(Guo et al., "On calibration of modern neural networks", 2017) fixes the scale with one scalar ``T > 0``:

    ``p = softmax(z / T)``, ``T = argmin_T  mean_i  -log softmax(z_i / T)[y_i]``  (the NLL on held-out photos)

Dividing by a positive scalar keeps every ranking (the top-1 class, the top-5 order), every CAM, every box: only
the probabilities change. The fitted temperatures ship in ``temperatures.json`` beside this file with their
provenance (fit set, number of photos, date, commit); :func:`temperature` looks one up and returns ``None`` for a
setting without one ("uncalibrated": never a silent ``T = 1`` that would look calibrated). Refit with
(:mod:`cam_core.calibration.cli`)::

    python -m cam_core.calibration --fit-on ../shared/data/imagenet_val_1k --limit 200 \
        --out cam_core/calibration/temperatures.json

``docs/calibration.md`` keeps the measured before/after table (``bench/bench_calibration.py``).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cam_core.errors import ParameterError

CALIBRATION_FILE = Path(__file__).resolve().parent / "temperatures.json"
"""The shipped temperatures (package data of the wheel)."""
T_BOUNDS = (0.02, 50.0)
"""The search interval of :func:`fit_temperature`; an optimum at either edge raises (no silent edge value)."""


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or y.shape != (z.shape[0],) or z.shape[0] == 0:
        raise ParameterError(f"`logits` must be (N, K) and `labels` (N,), N >= 1; got {z.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= z.shape[1]:
        raise ParameterError(f"`labels` must be class indices in [0, {z.shape[1]})")
    if not np.isfinite(z).all():
        raise ParameterError("`logits` must be finite")
    return z, y.astype(np.int64)


def softmax(logits: np.ndarray, temperature: float | None = None) -> np.ndarray:
    """``softmax(z / T)`` along the last axis, computed stably in float64.

    Args:
        logits: float (..., K).
        temperature: ``T > 0``; ``None`` means no calibration (``T = 1``).

    Returns:
        float64 (..., K), each row sums to 1.
    """
    t = 1.0 if temperature is None else float(temperature)
    if not t > 0:
        raise ParameterError(f"`temperature` must be > 0, got {temperature!r}")
    z = np.asarray(logits, dtype=np.float64) / t
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll_per_photo(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``-log softmax(z_i / T)[y_i]`` for each photo: float64 (N,), >= 0 (natural log)."""
    z, y = _check(logits, labels)
    s = z / float(temperature)
    m = s.max(axis=1)
    log_z = m + np.log(np.exp(s - m[:, None]).sum(axis=1))
    return log_z - s[np.arange(len(y)), y]


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under ``softmax(z / T)`` (nats per photo).

    Args:
        logits: float (N, K); labels: int (N,) in ``[0, K)``; temperature: ``T > 0``.
    """
    return float(nll_per_photo(logits, labels, temperature).mean())


def ece_terms(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Per photo: its bin (0..bins-1 by top-1 confidence in ``(k / bins, (k + 1) / bins]``) and ``conf - correct``.

    Returns:
        int64 (N,) bins, float64 (N,) ``top-1 probability - [top-1 class == label]``.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or y.shape != (p.shape[0],) or p.shape[0] == 0:
        raise ParameterError(f"`probabilities` must be (N, K) and `labels` (N,), N >= 1; got {p.shape}, {y.shape}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ParameterError(f"`bins` must be an int >= 1, got {bins!r}")
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    return which, confidence - correct


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): ``sum_b |B_b| / N · |acc(B_b) - conf(B_b)|`` over equal-width confidence bins.

    Args:
        probabilities: float (N, K) rows summing to 1; labels: int (N,); bins: number of bins of ``(0, 1]``.

    Returns:
        ECE in ``[0, 1]``.
    """
    which, gap = ece_terms(probabilities, labels, bins)
    sums = np.bincount(which, weights=gap, minlength=bins)
    return float(np.abs(sums).sum() / len(gap))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, tol: float = 1e-7) -> float:
    """The ``T`` minimising :func:`nll`, by golden-section search over ``log T`` in :data:`T_BOUNDS`.

    The NLL is convex in ``1 / T`` (a log-sum-exp minus a linear term), hence unimodal in ``log T``: the
    bounded 1-D search finds the global minimum.

    Args:
        logits: float (N, K); labels: int (N,) in ``[0, K)``; tol: the search's tolerance on ``log T``.

    Returns:
        ``T`` (> 0).

    Raises:
        ParameterError: bad shapes, or the optimum lies at an edge of :data:`T_BOUNDS` (e.g. every photo
            right: the NLL falls without bound as ``T -> 0``).
    """
    z, y = _check(logits, labels)
    lo, hi = math.log(T_BOUNDS[0]), math.log(T_BOUNDS[1])
    g = (math.sqrt(5) - 1) / 2
    a, b = lo + (1 - g) * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(z, y, math.exp(a)), nll(z, y, math.exp(b))
    while hi - lo > tol:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - g) * (hi - lo)
            fa = nll(z, y, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(z, y, math.exp(b))
    best = (lo + hi) / 2
    edge = 1e-3
    if best < math.log(T_BOUNDS[0]) + edge or best > math.log(T_BOUNDS[1]) - edge:
        raise ParameterError(f"the NLL's minimum lies at the edge of T in {T_BOUNDS}: no finite temperature fits")
    return math.exp(best)


def key(model_name: str, input_size: int, output_stride: int) -> str:
    """The stored table's key: ``"tf_efficientnet_lite0@448/16"``."""
    return f"{model_name}@{int(input_size)}/{int(output_stride)}"


@lru_cache(maxsize=4)
def _table(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("temperatures"), dict):
        raise ValueError(f"{path}: no 'temperatures' table")
    return data


def calibration_entry(model_name: str, input_size: int, output_stride: int) -> dict[str, Any] | None:
    """The stored fit of a setting: ``{"temperature", "fit_on", "n_photos", "date", "commit", ...}``, or ``None``."""
    entry = _table(CALIBRATION_FILE)["temperatures"].get(key(model_name, input_size, output_stride))
    return dict(entry) if isinstance(entry, dict) else None


def temperature(model_name: str, input_size: int | tuple[int, int], output_stride: int) -> float | None:
    """The fitted ``T`` of a model at an analysis resolution, or ``None`` (uncalibrated: no fit stored).

    Args:
        model_name: the :class:`~cam_core.models.LoadedModel` name (a registry name, or a checkpoint card's name).
        input_size: N (a square input) or ``(H, W)``; a non-square input has no stored fit.
        output_stride: 32, 16 or 8.
    """
    if isinstance(input_size, tuple):
        if input_size[0] != input_size[1]:
            return None
        input_size = input_size[0]
    entry = calibration_entry(model_name, int(input_size), output_stride)
    return None if entry is None else float(entry["temperature"])


def describe(temperature_value: float | None) -> str:
    """``"calibrated, T = 0.31"`` or ``"uncalibrated"``: how a probability's scale is named wherever T is shown."""
    return "uncalibrated" if temperature_value is None else f"calibrated, T = {temperature_value:.2f}"
