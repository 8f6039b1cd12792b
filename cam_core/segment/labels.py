"""From class maps to labels: the standards, scores and thresholds behind :func:`cam_core.segment.segmentation.segment`.

Array maths only (steps 2 to 4 of :mod:`cam_core.segment.segmentation`, which re-exports every public name here): each
class's standard ``u_c`` (MaS or PaS), its score ``s_c = h_c / u_c``, the 8-bit candidate levels, the label
map (argmax over ``[theta, s_1, ..., s_n]`` among the classes over their threshold) and the CRF's label
distribution.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from cam_core.errors import ParameterError
from cam_core.image import DEFAULT_MAX_PIXELS, MIN_SIDE
from cam_core.threshold import Rule, check_percentile, check_theta, quantize, threshold_8bit

LABEL_PIXELS = DEFAULT_MAX_PIXELS
"""Label maps of a larger photo are computed at this many pixels and resized to the photo (see :func:`label_size`)."""
_STANDARD_FLOOR = 1e-6
_COUNT_PIXELS = 2**22


def standards(maps: np.ndarray, rule: Rule, percentile: float = 90.0) -> np.ndarray:
    """Each map's standard ``u_c``: its maximum (MaS) or its p-th percentile (PaS, module M3).

    Args:
        maps: float (n, H, W) in ``[0, 1]``.
        rule: ``"mas"`` or ``"pas"``.
        percentile: p in ``(0, 100]`` for PaS.

    Returns:
        float64 (n,) in ``[0, 1]``; ``theta · u_c`` is exactly :func:`cam_core.threshold.threshold`.
    """
    if rule == "mas":
        return np.array([float(m.max()) for m in maps])
    if rule == "pas":
        p = check_percentile(percentile)
        return np.array([float(np.percentile(m, p)) for m in maps])
    raise ParameterError(f"`rule` must be 'mas' or 'pas', got {rule!r}")


def _score(heat: np.ndarray, standard: float) -> np.ndarray:
    """``h / max(u, 1e-6)`` in float32 arithmetic; ``heat`` itself when ``u == 1`` (MaS)."""
    return heat if standard == 1.0 else heat / max(float(standard), _STANDARD_FLOOR)


def scores(maps: np.ndarray, standard: np.ndarray) -> np.ndarray:
    """``s_c = h_c / max(u_c, 1e-6)``: float32 (n, H, W) >= 0 from maps float32 (n, H, W) and standards (n,)."""
    return np.stack([_score(m, u) for m, u in zip(maps, standard, strict=True)]).astype(np.float32, copy=False)


def levels_8bit(maps: np.ndarray, rule: Rule, theta: float, percentile: float = 90.0) -> np.ndarray:
    """Each map's wsolevaluation threshold on its 8-bit copy, ``int(theta · max(q))`` or ``int(theta · P_p(q))``.

    Args:
        maps: float (n, H, W) in ``[0, 1]``.
        rule, theta, percentile: as :func:`cam_core.threshold.threshold_8bit`.

    Returns:
        int64 (n,) in ``[0, 255]``: class c is a candidate where ``quantize(h_c) > level_c``.
    """
    return np.array([threshold_8bit(quantize(m), rule, theta, percentile) for m in maps], dtype=np.int64)


Candidate = tuple[np.ndarray, float, int | None]
"""One class's ``(h_c, u_c, level_c)``: float32 (H, W) map in ``[0, 1]``, its standard, its 8-bit level or ``None``."""


def label_map(maps: np.ndarray, standard: np.ndarray, theta: float, levels: np.ndarray | None = None) -> np.ndarray:
    """Slot of each pixel: the class with the largest score among those over their threshold, else 0.

    A class is a candidate where it passes the single-class rule of :func:`cam_core.localize.localize`:
    ``quantize(h_c) > level_c`` with ``levels`` (8-bit, the default rule), else ``h_c > theta · u_c`` (float).
    Among candidates the largest ``s_c`` wins, ties to the earlier class.

    Args:
        maps: float32 (n, H, W) in ``[0, 1]``, n <= 255.
        standard: float (n,) from :func:`standards`.
        theta: threshold fraction in ``[0, 1]`` (the background score).
        levels: int (n,) from :func:`levels_8bit` for the 8-bit rule; ``None`` for the float rule.

    Returns:
        uint8 (H, W) in ``[0, n]``: 0 = background, ``i + 1`` = the i-th class.
    """
    each_level = [None] * len(maps) if levels is None else [int(level) for level in levels]
    return running_labels(zip(maps, standard, each_level, strict=True), maps.shape[1:], theta)


def running_labels(candidates: Iterable[Candidate], shape: tuple[int, ...], theta: float) -> np.ndarray:
    """:func:`label_map` over classes given one at a time: a running maximum, so only one class map need exist at
    once (the caller may make each map as it is asked for, see :func:`cam_core.segment.segmentation.segment`).

    Args:
        candidates: per class, in slot order, ``(h_c, u_c, level_c)`` (see :data:`Candidate`); at most 255.
        shape: ``(H, W)`` of every map.
        theta: threshold fraction in ``[0, 1]`` (the background score; the float rule's threshold is
            ``theta · u_c``).

    Returns:
        uint8 (H, W) in ``[0, n]``: 0 = background, ``i + 1`` = the i-th class.
    """
    theta = check_theta(theta)
    labels = np.zeros(shape, np.uint8)  # (H, W)
    best = np.full(shape, -1.0, np.float32)  # (H, W) score of the current label; -1 = none
    # A running maximum, class by class: an argmax over axis 0 of (n, H, W) is ~10x slower.
    for slot, (heat, u, level) in enumerate(candidates, start=1):
        if slot > 255:
            raise ParameterError("a uint8 label map holds at most 255 classes")
        score = _score(heat, u)
        over = heat > theta * float(u) if level is None else quantize(heat) > level
        wins = over & (score > best)  # strict: the earlier class keeps ties
        np.copyto(labels, np.uint8(slot), where=wins)
        np.copyto(best, score, where=wins)
    return labels


def slot_shares(labels: np.ndarray, n: int) -> np.ndarray:
    """Share of the pixels of each slot ``0..n``, counted a band of rows at a time (``np.bincount`` makes an int64
    copy of what it counts: 1.2 GB for a whole 12000 x 12000 map).

    Args:
        labels: uint8 (H, W) in ``[0, n]``.
        n: number of classes.

    Returns:
        float64 (n + 1,), sums to 1.
    """
    counts = np.zeros(n + 1, np.int64)
    rows = max(1, _COUNT_PIXELS // max(1, labels.shape[1]))
    for top in range(0, labels.shape[0], rows):
        counts += np.bincount(labels[top : top + rows].ravel(), minlength=n + 1)
    return counts / labels.size


def label_probabilities(maps: np.ndarray, standard: np.ndarray, theta: float) -> np.ndarray:
    """The CRF unary's distribution ``p_l = score_l / sum(scores)``, background score ``theta``.

    Args:
        maps: float32 (n, H, W) in ``[0, 1]``.
        standard: float (n,) from :func:`standards`.
        theta: background score in ``[0, 1]``.

    Returns:
        float32 (n + 1, H, W), each pixel summing to 1 (+1e-6 on every score so that 0 / 0 cannot happen);
        its argmax is :func:`label_map` except on exact ties.
    """
    background = np.full((1, *maps.shape[1:]), check_theta(theta), np.float32)
    stacked = np.concatenate([background, scores(maps, standard)]) + np.float32(1e-6)  # (n + 1, H, W)
    return stacked / stacked.sum(0, keepdims=True)


def label_size(size: tuple[int, int], max_pixels: int = LABEL_PIXELS) -> tuple[int, int]:
    """The ``(H', W')`` a photo of ``size`` ``(H, W)`` is segmented at before :meth:`Segmentation.resized` takes its
    labels to ``size``: ``size`` itself up to ``max_pixels`` pixels, else scaled down (aspect kept) as
    :func:`cam_core.load_image` decodes a larger photo for analysis (the CAMs come from a 7 to 56 cell grid: a
    4-megapixel label map holds every boundary they draw).
    """
    height, width = size
    if height * width <= max_pixels:
        return height, width
    scale = (max_pixels / (height * width)) ** 0.5
    return max(MIN_SIDE, int(height * scale)), max(MIN_SIDE, int(width * scale))


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (h, w) slots -> uint8 (H, W) by nearest neighbour (pixel centres: OpenCV's ``INTER_NEAREST_EXACT``).

    Raises:
        ParameterError: ``size`` is not two positive ints.
    """
    height, width = (int(v) for v in size) if len(size) == 2 else (0, 0)
    if height < 1 or width < 1:
        raise ParameterError(f"`size` must be two positive ints (H, W), got {size!r}")
    if (height, width) == labels.shape:
        return labels
    return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


OVERCLAIM_RATIO = 5.0
"""A class *overclaims* when its pixel share exceeds this many times its probability (see :func:`overclaims`)."""
OVERCLAIM_MIN_AREA = 0.05
"""...and its share is at least this (a few pixels of an unlikely class are not worth a warning)."""


def overclaims(probability: float | None, area: float | None) -> bool:
    """Whether a class claims far more of the photo than its probability supports: the legend's warning.

    ``area >= OVERCLAIM_MIN_AREA and area > OVERCLAIM_RATIO · probability``. A CAM is normalised per class, so
    an unlikely class's map spreads as wide as a likely one's: "speedboat" at p = 0.7 % claimed 62 % of a
    lifeboat photo (ratio 89). The rule and its rate on the development photos are in ``docs/calibration.md``.

    Args:
        probability: the class's (calibrated) probability in ``[0, 1]``; ``None`` (background): never flagged.
        area: its share of the photo's pixels in ``[0, 1]``, or ``None`` (not computed): never flagged.
    """
    if probability is None or area is None:
        return False
    return area >= OVERCLAIM_MIN_AREA and area > OVERCLAIM_RATIO * probability
