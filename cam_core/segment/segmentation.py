"""Weakly supervised semantic segmentation: from the cached CAMs of several classes to one label map.

Bae et al. took the three localisation fixes (TAP, NWC, PaS) to semantic segmentation (LID 2020,
Track 1). Here, from one cached :class:`~cam_core.cam.Analysis` and no further forward pass:

1. Classes: the ones asked for, else the top-k whose probability is >= a floor (:func:`select_classes`).
2. Scores: each class's map (plain or NWC, as :func:`cam_core.localize.heatmap`: bicubic upsampling,
   min-max to ``h_c`` in ``[0, 1]``) divided by its *standard* ``u_c``: MaS ``u_c = max h_c = 1``,
   PaS ``u_c = P_p(h_c)``. So ``s_c = h_c`` (MaS) or ``s_c = h_c / P_p(h_c)`` (PaS, not clipped at 1:
   clipping would tie every pixel above its percentile at 1 across classes, and the argmax could not
   choose). A ``P_p`` of 0 is floored at 1e-6.
3. Background: the constant ``theta`` (the threshold slider). Label = argmax over
   ``[theta, s_1, ..., s_n]``, ties to the lower label, so background wins ties. Hence a pixel belongs
   to class c iff it passes :func:`cam_core.localize.localize`'s threshold (``h_c > theta · u_c``; on
   8 bits, the default, ``uint8(255 h_c) > int(theta · Q_c)`` with ``Q_c`` the 8-bit max or percentile)
   and ``s_c`` is the largest score; with one class the label map *is* ``localize``'s binary mask.
   The other usual choice, ``1 - max_c s_c`` (Ahn & Kwak 2018 without the exponent), gives under MaS
   the same labels as the constant 0.5 (background wins iff ``1 - m >= m``): a special case that
   ignores the threshold slider.
4. CRF (on request, :meth:`Segmentation.refine`): an (n + 1)-label dense CRF with the
   :class:`~cam_core.crf.CrfParams` kernels. Unary ``-log p_l`` with ``p_l = score_l / sum(scores)``
   (background score ``theta``): proportional, so its argmax is the label map, and with one class and
   MaS ``p_fg = h / (h + theta)`` is 1/2 at the threshold, like the binary CRF's unary.

Label encoding. :attr:`Segmentation.labels` holds per-image *slots*: 0 = background, ``i + 1`` =
``classes[i]`` (uint8, at most 255 classes), so a palette PNG can store it whatever the class index
(ImageNet has 1000); :meth:`Segmentation.class_map` gives the issue's encoding, 0 = background and
``class index + 1`` otherwise (int32). Files (palette PNGs of slots with JSON sidecars): :mod:`cam_core.segment.files`.
The array maths of steps 2 to 4 (standards, scores, label map, CRF distribution) is in :mod:`cam_core.segment.labels`;
:mod:`cam_core.segment` re-exports the public names of both.

Memory. n class maps at a photo's own size cost 4 n bytes a pixel (5 classes of a 12000 x 12000 photo: 2.9 GB).
A photo is segmented at :func:`label_size` (itself up to 4 megapixels, the size it is analysed at) and the uint8
labels are resized to the photo by nearest neighbour (:meth:`Segmentation.resized`); ``keep_maps=False`` makes
one class map at a time (the running maximum), so an export holds a few 4-megapixel maps whatever n.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from cam_core.cam import Analysis
from cam_core.crf import CrfParams, MeanField, refine_labels
from cam_core.errors import ParameterError
from cam_core.localize import CONFIGS, LocalizationConfig, heatmap
from cam_core.segment.files import palette
from cam_core.segment.labels import (
    Candidate,
    label_map,
    label_probabilities,
    levels_8bit,
    overclaims,
    resize_labels,
    running_labels,
    slot_shares,
    standards,
)

MAX_CLASSES = 255
"""Slots 1..255 of a uint8 label map."""


@dataclass(frozen=True)
class SegmentConfig:
    """Which classes to segment and how their maps are normalised and thresholded.

    Attributes:
        localization: plain or NWC maps, MaS or PaS, theta and percentile: the same object the
            single-class localisation uses (default: the plain-CAM config of the paper code).
        classes: class indices in label order, or None for the top ``top_k`` with probability
            >= ``min_probability``.
        top_k: at most this many classes when ``classes`` is None, int in ``[1, 255]``.
        min_probability: the floor for automatic selection, in ``[0, 1]``.
    """

    localization: LocalizationConfig = field(default_factory=lambda: CONFIGS["cam"])
    classes: tuple[int, ...] | None = None
    top_k: int = 5
    min_probability: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.localization, LocalizationConfig):
            raise ParameterError(f"`localization` must be a LocalizationConfig, got {type(self.localization).__name__}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, (int, np.integer)):
            raise ParameterError(f"`top_k` must be an int in [1, {MAX_CLASSES}], got {self.top_k!r}")
        if not 1 <= self.top_k <= MAX_CLASSES:
            raise ParameterError(f"`top_k` must be an int in [1, {MAX_CLASSES}], got {self.top_k!r}")
        probability = self.min_probability
        if isinstance(probability, bool) or not isinstance(probability, (int, float, np.floating)):
            raise ParameterError(f"`min_probability` must be a number in [0, 1], got {probability!r}")
        if not 0.0 <= float(probability) <= 1.0:
            raise ParameterError(f"`min_probability` must be a number in [0, 1], got {probability!r}")
        if self.classes is not None:
            object.__setattr__(self, "classes", _check_classes(self.classes))


def _check_classes(classes: object) -> tuple[int, ...]:
    """``classes`` as a tuple of distinct ints, 1 to 255 of them; ParameterError naming `classes` otherwise."""
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
        raise ParameterError(f"`classes` must be a sequence of class indices, got {classes!r}")
    values = tuple(classes)
    if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in values):
        raise ParameterError(f"`classes` must hold ints, got {values!r}")
    values = tuple(int(c) for c in values)
    if not 1 <= len(values) <= MAX_CLASSES:
        raise ParameterError(f"`classes` must name 1 to {MAX_CLASSES} classes, got {len(values)}")
    repeated = sorted({c for c in values if values.count(c) > 1})
    if repeated:
        raise ParameterError(f"`classes` names class {', '.join(map(str, repeated))} more than once")
    return values


def select_classes(analysis: Analysis, config: SegmentConfig) -> tuple[int, ...]:
    """The classes to segment, in label order.

    Args:
        analysis: cached forward pass.
        config: ``classes`` if given (each checked against ``[0, K)``), else the top ``top_k``
            classes whose probability is >= ``min_probability``, most probable first.

    Returns:
        Distinct class indices, 1 to 255 of them.

    Raises:
        ClassIndexError: a given class is outside ``[0, K)``.
        ParameterError: no class reaches ``min_probability`` (the message names the best one).
    """
    if config.classes is not None:
        return tuple(analysis.check_class(c) for c in config.classes)
    top = analysis.top_k(config.top_k)
    chosen = tuple(index for index, _, probability in top if probability >= config.min_probability)
    if not chosen:
        index, name, probability = top[0]
        raise ParameterError(
            f"`min_probability` {config.min_probability:g}: no class reaches it (best: {name}, class {index}, "
            f"p = {probability:.3g}); lower the floor or pick classes"
        )
    return chosen


def class_maps(
    analysis: Analysis, classes: tuple[int, ...], nwc: bool = False, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Each class's normalised map, as :func:`cam_core.localize.heatmap` computes it.

    Args:
        analysis: cached forward pass.
        classes: n class indices in ``[0, K)``.
        nwc: clamp negative weights (module M2).
        size: output ``(H, W)``; defaults to the analysed image's size.

    Returns:
        float32 (n, H, W) in ``[0, 1]``: bicubic upsampling, then min-max per class.

    Raises:
        ParameterError: every map is constant (nothing to segment).
    """
    maps = np.stack([heatmap(analysis, c, nwc, size) for c in classes])  # (n, H, W)
    if not maps.any():
        raise _all_constant(analysis, classes)
    return maps


def _all_constant(analysis: Analysis, classes: tuple[int, ...]) -> ParameterError:
    names = ", ".join(analysis.class_names[c] for c in classes)
    return ParameterError(f"`classes`: every selected class map is constant ({names}); pick other classes")


@dataclass(frozen=True, eq=False)
class Segmentation:
    """The result of :func:`segment`: a label map before and (on request) after the dense CRF.

    Attributes:
        labels: uint8 (H, W) slots: 0 = background, ``i + 1`` = ``classes[i]``.
        classes: n distinct class indices, in slot order.
        names: n class names.
        confidences: float32 (n,) the classifier's softmax probability of each class.
        maps: float32 (n, H, W) in ``[0, 1]``, each class's normalised map; ``None`` when not kept
            (``segment(..., keep_maps=False)``, or after :meth:`resized`): then :meth:`refine` and
            :meth:`with_theta` cannot run.
        standards: float64 (n,) each map's MaS / PaS standard ``u_c``.
        config: the configuration used.
        refined: uint8 (H, W) slots after the CRF, or None until :meth:`refine` ran.
    """

    labels: np.ndarray
    classes: tuple[int, ...]
    names: tuple[str, ...]
    confidences: np.ndarray
    maps: np.ndarray | None
    standards: np.ndarray
    config: SegmentConfig
    refined: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the label maps."""
        return int(self.labels.shape[0]), int(self.labels.shape[1])

    @property
    def areas(self) -> np.ndarray:
        """float64 (n + 1,) share of pixels of each slot in :attr:`labels` (background first), sums to 1."""
        return slot_shares(self.labels, len(self.classes))

    @property
    def refined_areas(self) -> np.ndarray | None:
        """As :attr:`areas` for :attr:`refined`, or None before :meth:`refine`."""
        if self.refined is None:
            return None
        return slot_shares(self.refined, len(self.classes))

    def class_map(self, refined: bool = False) -> np.ndarray:
        """int32 (H, W): 0 = background, ``class index + 1`` otherwise (of :attr:`refined` if asked)."""
        slots = self.refined if refined else self.labels
        if slots is None:
            raise ParameterError("`refined`: no CRF result yet; call Segmentation.refine first")
        lookup = np.array([0, *(c + 1 for c in self.classes)], dtype=np.int32)
        return lookup[slots]

    def refine(
        self, image: np.ndarray, params: CrfParams | None = None, *, runner: MeanField | None = None
    ) -> Segmentation:
        """A copy with :attr:`refined` set by an (n + 1)-label dense CRF (module docstring, step 4).

        Args:
            image: uint8 (H', W', 3) RGB; resized (area) to :attr:`size` when it differs.
            params: CRF kernels; defaults to :class:`~cam_core.crf.CrfParams()`.
            runner: runs the inference (:data:`cam_core.crf.MeanField`; default: in this process).

        Raises:
            CrfUnavailableError: ``pydensecrf2`` is not installed.
            InvalidImageError: ``image`` is not uint8 (H, W, 3).
        """
        height, width = self.size
        if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        theta = self.config.localization.theta
        probabilities = label_probabilities(self._kept_maps(), self.standards, theta)
        refined = refine_labels(image, probabilities, params, runner=runner)
        return replace(self, refined=refined)

    def with_theta(self, theta: float) -> Segmentation:
        """The labels at another threshold from the cached maps and standards (~2 ms; ``refined`` dropped).

        Raises:
            ParameterError: ``theta`` outside ``[0, 1]``.
        """
        localization = replace(self.config.localization, theta=theta)  # validates theta
        config = replace(self.config, localization=localization)
        maps = self._kept_maps()
        labels = label_map(maps, self.standards, theta, _levels(maps, localization))
        return replace(self, labels=labels, config=config, refined=None)

    def resized(self, size: tuple[int, int]) -> Segmentation:
        """A copy whose label maps (and CRF result) are resized to ``size`` ``(H, W)`` by nearest neighbour, e.g.
        from the size they were computed at (:func:`label_size`) to the photo's; the maps are not kept.

        Raises:
            ParameterError: ``size`` is not two positive ints.
        """
        refined = None if self.refined is None else resize_labels(self.refined, size)
        return replace(self, labels=resize_labels(self.labels, size), refined=refined, maps=None)

    def _kept_maps(self) -> np.ndarray:
        if self.maps is None:
            raise ParameterError("this Segmentation kept no class maps (keep_maps=False, or resized); segment again")
        return self.maps

    def legend(self) -> list[dict[str, object]]:
        """One entry per slot (background first): slot, class index (None), name, colour, probability, areas, and
        ``overclaims``: its area (or area after the CRF) far above its probability (:func:`overclaims`)."""
        colours = palette(len(self.classes))
        refined = self.refined_areas
        rows: list[dict[str, object]] = []
        for slot, area in enumerate(self.areas):
            index = None if slot == 0 else self.classes[slot - 1]
            rows.append({
                "slot": slot,
                "class_index": index,
                "name": "background" if slot == 0 else self.names[slot - 1],
                "colour": [int(v) for v in colours[slot]],
                "probability": None if slot == 0 else float(self.confidences[slot - 1]),
                "area": float(area),
                "area_crf": None if refined is None else float(refined[slot]),
            })  # fmt: skip
            p, shares = rows[-1]["probability"], (rows[-1]["area"], rows[-1]["area_crf"])
            rows[-1]["overclaims"] = any(overclaims(p, a) for a in shares)  # type: ignore[arg-type]
        return rows


def _levels(maps: np.ndarray, loc: LocalizationConfig) -> np.ndarray | None:
    """The 8-bit candidate levels when ``loc`` thresholds on 8 bits (as localize does), else ``None``."""
    return levels_8bit(maps, loc.rule, loc.theta, loc.percentile) if loc.thresholding == "8bit" else None


def segment(
    analysis: Analysis,
    config: SegmentConfig | None = None,
    size: tuple[int, int] | None = None,
    *,
    keep_maps: bool = True,
) -> Segmentation:
    """Label map of several classes from one cached analysis: no forward pass, no CRF (see ``refine``).

    Args:
        analysis: cached forward pass.
        config: classes and controls; defaults to :class:`SegmentConfig()`.
        size: output ``(H, W)``, e.g. the display size; defaults to the analysed image's size.
        keep_maps: keep the n class maps (float32 (n, H, W): what :meth:`Segmentation.refine` and
            :meth:`Segmentation.with_theta` need). ``False`` makes each map only when the running maximum of
            :func:`~cam_core.segment.labels.running_labels` asks for it and drops it after, so memory holds a few
            (H, W) maps whatever n (an export of 20 classes: the same labels, a twentieth of the memory).

    Returns:
        The :class:`Segmentation`, ``refined`` None.

    Raises:
        ClassIndexError: a picked class is outside ``[0, K)``.
        ParameterError: no class over the floor, or every selected map constant (messages name the parameter).
    """
    config = SegmentConfig() if config is None else config
    if not isinstance(config, SegmentConfig):
        raise ParameterError(f"`config` must be a SegmentConfig or None, got {type(config).__name__}")
    classes = select_classes(analysis, config)
    loc = config.localization
    if not keep_maps:
        labels, standard = _streamed(analysis, classes, loc, size or analysis.image_size)
        return Segmentation(labels, classes, _names(analysis, classes), _confidences(analysis, classes), None,
                            standard, config)  # fmt: skip
    maps = class_maps(analysis, classes, loc.nwc, size)  # (n, H, W)
    standard = standards(maps, loc.rule, loc.percentile)  # (n,)
    return from_maps(analysis, classes, maps, standard, _levels(maps, loc), config)


def _streamed(
    analysis: Analysis, classes: tuple[int, ...], loc: LocalizationConfig, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (H, W) labels and float64 (n,) standards, each class's map made when the running maximum needs it."""
    standard: list[float] = []
    constant = True

    def candidates() -> Iterator[Candidate]:
        nonlocal constant
        for c in classes:
            heat = heatmap(analysis, c, loc.nwc, size)[None]  # (1, H, W): one class, as class_maps makes it
            constant = constant and not heat.any()
            standard.append(float(standards(heat, loc.rule, loc.percentile)[0]))
            level = _levels(heat, loc)
            yield heat[0], standard[-1], None if level is None else int(level[0])

    labels = running_labels(candidates(), size, loc.theta)
    if constant:
        raise _all_constant(analysis, classes)
    return labels, np.asarray(standard)


def from_maps(
    analysis: Analysis,
    classes: tuple[int, ...],
    maps: np.ndarray,
    standard: np.ndarray,
    levels: np.ndarray | None,
    config: SegmentConfig,
) -> Segmentation:
    """The :class:`Segmentation` of maps and standards already computed (e.g. cached by a caller).

    Args:
        analysis: the analysis the maps come from (names, probabilities).
        classes: the n class indices, in slot order.
        maps: float32 (n, H, W) from :func:`class_maps`; standard: float (n,) from :func:`standards`.
        levels: int (n,) from :func:`levels_8bit` (8-bit rule) or ``None`` (float rule).
        config: the configuration the maps were made for.
    """
    return Segmentation(
        labels=label_map(maps, standard, config.localization.theta, levels),
        classes=classes,
        names=_names(analysis, classes),
        confidences=_confidences(analysis, classes),
        maps=maps,
        standards=standard,
        config=config,
    )


def _names(analysis: Analysis, classes: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(analysis.class_names[c] for c in classes)


def _confidences(analysis: Analysis, classes: tuple[int, ...]) -> np.ndarray:
    return analysis.probabilities[list(classes)].astype(np.float32)
