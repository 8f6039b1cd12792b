"""Views of an :class:`~app.explanation.Explanation`: captions, panels, histogram and masks.

Two renderings of the same views:

* **live** (:func:`localization_views`): HTML over pictures cached per (photo, models, class, NWC) in
  :data:`STATICS`; a slider move sends SVG boxes, threshold lines and one small inline PNG of both masks;
* **burnt in** (:func:`panel_picture`, :func:`export_pictures`): RGB uint8 pictures with the boxes drawn,
  for the swipe view, the ``/explain`` overlays and the zip export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

import cam_core
from app import files, histogram, html_views, render, verdict
from app.explanation import Explanation, explanation_json, percent, short_name
from app.inputs import Controls
from app.models import TAP_VERDICT
from app.state import SmallLRU, analysis_key
from cam_core.cam import Analysis
from cam_core.family import IDENTITIES, NWC_UNDEFINED_WHY

IDENTITY_TOLERANCE = 1e-4
"""A measured identity gap (:func:`cam_core.family.identity_gap`) below this is float32 noise: the identity holds."""
COARSE_CELLS = 14  # a map with fewer cells a side is "coarse" in that line (7 x 7 at 224 px / stride 32)
COINCIDE_IOU = 0.8  # above this box IoU the caption says first why plain and improved look alike (issue #14 item 4)
_PERCENTILE_COLOUR = (140, 0, 204)
_OURS_LINE = (0, 140, 0)


# ---------------------------------------------------------------- class picker labels


def class_choices(analysis: Analysis, extra: int | None = None) -> list[tuple[str, str]]:
    """Class picker choices: the top-5 with probabilities, plus ``extra`` (a class picked by search) if not in them."""
    top = [(f"{short_name(name)} ({percent(p)})", str(i)) for i, name, p in analysis.top_k(5)]
    if extra is not None and str(extra) not in {value for _, value in top}:
        name, p = short_name(analysis.class_names[extra]), float(analysis.probabilities[extra])
        top.append((f"{name} ({percent(p)})", str(extra)))  # written as the top-5 are
    return top


def search_choices() -> list[tuple[str, str]]:
    """The search box's choices: every ImageNet class by index. Fixed, so they never travel with an update."""
    return [(f"{i}: {name}", str(i)) for i, name in enumerate(cam_core.imagenet_classes())]


# ---------------------------------------------------------------- texts


NEGATIVE_MAPS: SmallLRU = SmallLRU(8)
"""The improved panel's M- at display size per (photo, analysis, class, size): it does not move with the sliders."""


def negative_map(ex: Explanation) -> np.ndarray:
    """float32 (h, w) M- of the improved panel's analysis at display size, read-only (bicubic overshoot below 0
    clipped)."""
    key = (ex.image_hash, analysis_key(ex.ours_analysis), ex.class_index, ex.display)

    def make() -> np.ndarray:
        negative = ex.ours_analysis.cam(ex.class_index, "negative")
        upsampled = np.clip(cam_core.upsample(negative, ex.display), 0, None)
        upsampled.setflags(write=False)
        return upsampled

    return NEGATIVE_MAPS.get_or_make(key, make)


def plain_label(ex: Explanation) -> str:
    """The blue box's label: ``"CAM, MaS"``, or the method's (``"Grad-CAM, MaS"``)."""
    return f"{ex.controls.method_label}, MaS"


def method_line(ex: Explanation) -> str:
    """What the method menu's choice is and, where the algebra predicts one, its identity with CAM as measured on this
    photo and class (:data:`cam_core.family.IDENTITIES`); ``""`` for plain CAM."""
    c = ex.controls
    if c.method == "cam":
        return ""
    label = c.method_label
    head = (
        f"**Method: {label}** on both panels (torchcam's channel weights from the gradient of the class score at the "
        "final features, one backward pass through the head; combined as ReLU(Σₖ wₖ Fₖ) and then thresholded exactly "
        "as plain CAM: same upsampling, 8-bit rules, boxes)."
    )
    if ex.identity_gap is None:
        identity = (
            f" {label} has no identity with CAM: its alpha rescales channel k by 1 / (2 + gₖ Sₖ), which depends on the "
            "channel's total activation Sₖ, so its map is not a multiple of CAM's even on a GAP + linear head."
        )
    else:
        reference, formula = IDENTITIES[c.method]
        cam = "NWC CAM" if reference == "nwc" else "CAM"
        measured = f"max |h·w·{label} − ReLU({cam})| / max |{cam}| = {ex.identity_gap:.1e} on this photo and class"
        if ex.identity_gap < IDENTITY_TOLERANCE:
            identity = (
                f" On a GAP + linear head the gradient of the class score is W[c, k] / (h·w) at every cell, so "
                f"{label} = {formula}: {measured} (float32 noise). {_after_min_max(label, reference)}"
            )
        else:
            identity = f" The identity {label} = {formula} of a GAP + linear head does not hold here: {measured}. "
            if ex.trained_with[0] == "TAP":
                identity += "This head pools with TAP: its gradient is W[c, k] / |Sₖ| on a channel's active cells only."
            elif c.method == "xgradcam":
                identity += (
                    "XGrad-CAM divides by Σᵢⱼ Fₖ + ε (torchcam's ε = 1e-8), which departs from Grad-CAM where a "
                    "channel's total activation is near zero: this model's final features can be negative."
                )
    why = NWC_UNDEFINED_WHY.get(c.method, "")
    nwc = "" if c.nwc_defined else f" NWC is undefined for {label} ({why}): the NWC toggle does nothing here."
    return head + identity + nwc


def _after_min_max(label: str, reference: str) -> str:
    """What the identity means for the boxes, once min-max normalisation has removed the factor 1 / (h w)."""
    if reference == "nwc":
        return (
            f"After min-max normalisation {label}'s boxes are NWC CAM's (the NWC toggle under plain CAM) wherever NWC "
            "CAM ≥ 0, as on non-negative (ReLU) features, where its ReLU changes nothing."
        )
    return (
        "Its boxes differ from plain CAM's only because ReLU comes before the min-max normalisation, which moves "
        "the level where a fixed θ cuts."
    )


def caption(ex: Explanation, payload: dict[str, Any]) -> str:
    """The Markdown under the panels: the method, both rules, their boxes, their overlap, the negative map's share."""
    c, name = ex.controls, ex.controls.name
    plain, ours = payload["plain"], payload["ours"]
    neg_map = negative_map(ex)
    x0, y0, x1, y1 = ex.ours.box
    share = float(neg_map[y0 : y1 + 1, x0 : x1 + 1].sum() / max(neg_map.sum(), 1e-12))
    if c.pas:
        level = ex.percentile_value * 255  # P_p of the 8-bit map: the threshold is int(θ · that) / 255
        rule = (
            f"PaS: threshold θ·P{c.percentile:g} = {c.theta_pas:.2f} × {ex.percentile_value:.3f} → "
            f"{ex.ours.threshold:.3f} (on 8 bits, as wsolevaluation: ⌊{c.theta_pas:.2f} × {level:.1f}⌋ / 255)"
        )
    else:
        rule = f"MaS: threshold θ·max = {ex.ours.threshold:.3f}"
    short = f"PaS: θ·P{c.percentile:g} = {c.theta_pas:.2f} × {ex.percentile_value:.3f}" if c.pas else (
        f"MaS: θ·max = {c.theta_mas:.2f}")  # fmt: skip
    box_iou = float(cam_core.box_iou(plain["box"], ours["box"])[0, 0])
    lines = [
        *verdict.verdict_lines(name, payload, ex.ours.threshold, short, c.baseline),  # first: under the panels
        *filter(None, [method_line(ex), coincidence_line(ex, box_iou)]),
        resolution_line(ex),
        f"**{_capital(c.baseline)} (blue box)**, {weights_note(ex, 'plain')}: "
        f"{'no NWC' if c.nwc_defined else 'NWC undefined'}; MaS threshold θ·max = {c.theta_mas:.2f} keeps "
        f"{100 * plain['foreground_fraction']:.1f} % of pixels; box {plain['box']}.",
        f"**{name} (green box)**, {weights_note(ex, 'ours')}: NWC {_nwc_state(c)}; {rule} keeps "
        f"{100 * ours['foreground_fraction']:.1f} % of pixels; box {ours['box']}.",
        *_tap_story(ex),
        f"Box IoU plain vs {name}: {box_iou:.2f}. "
        f"Share of M- inside the green box: {100 * share:.0f} % (M- is CAM's evidence *against* the class that "
        "plain CAM subtracts and NWC drops; a high share means it sits on the region the green box keeps, "
        "see the M+ / M− tab).",
    ]
    lines.append(gain_loss_line(ex))
    if "ground_truth" in payload:
        lines.append(ground_truth_line(payload["ground_truth"], name))
    return "\n\n".join(lines)


def _capital(text: str) -> str:
    """``"plain CAM"`` -> ``"Plain CAM"`` (only the first letter; ``"Grad-CAM"`` stays as it is)."""
    return text[:1].upper() + text[1:]


def _nwc_state(controls: Controls) -> str:
    """``on``, ``off``, or ``undefined for LayerCAM`` (the toggle on, but the method has no signed weights)."""
    if not controls.nwc_defined:
        return f"undefined for {controls.method_label}"
    return "on" if controls.nwc else "off"


def ground_truth_line(gt: dict[str, Any], name: str) -> str:
    """The caption's ground-truth line: each rule's IoU with its best-matching gold box ("best of N boxes")."""
    count = len(gt["boxes"])
    if count == 1:
        head, plain, ours = "**Ground truth (gold)**", f"{gt['iou_plain']:.2f}", f"{gt['iou_ours']:.2f}"
    else:
        head = f"**Ground truth (gold), best of {count} boxes**"
        plain = f"{gt['iou_plain']:.2f} (with GT{gt['best_box_plain'] + 1})"
        ours = f"{gt['iou_ours']:.2f} (with GT{gt['best_box_ours'] + 1})"
    return (
        f"{head}: IoU plain {plain}, {name} {ours}, in the photo's own pixels (the Evaluate tab stretches photos "
        "to the network input, so its IoUs differ)."
    )


def gt_labels(gt: np.ndarray | None) -> list[str]:
    """The gold boxes' labels: ``GT`` for one box, ``GT1``, ``GT2``, ... for several (the caption's names)."""
    count = 0 if gt is None else len(np.asarray(gt).reshape(-1, 4))
    return ["GT"] if count == 1 else [f"GT{i + 1}" for i in range(count)]


def coincidence_line(ex: Explanation, box_iou: float) -> str:
    """Why the two boxes nearly coincide, and what would change that; ``""`` unless their IoU is above
    :data:`COINCIDE_IOU` (the caption's first line, right under the panels). A map under
    :data:`COARSE_CELLS` cells a side is called coarse, and a finer resolution is offered as a remedy."""
    if box_iou <= COINCIDE_IOU:
        return ""
    _, height, width = ex.ours_analysis.feature_maps.shape  # (C, h, w)
    coarse = max(height, width) < COARSE_CELLS
    if "TAP" in ex.trained_with:
        model, remedy = (
            "a classifier whose head alone was re-trained with TAP",
            "a backbone fine-tuned for localisation",
        )
    else:
        model, remedy = "an off-the-shelf ImageNet classifier trained with GAP", "a model trained with TAP"
    grid = f"{height} × {width} cells for the whole photo"
    digits = next((d for d in range(2, 6) if round(box_iou, d) > COINCIDE_IOU), 6)  # never "0.80 > 0.8"
    why = f"the map is coarse ({grid}) and" if coarse else f"even at {grid}, the map"
    finer = "a finer analysis resolution (the Resolution menu: more map cells), " if coarse else ""
    return (
        f"**Why the two boxes nearly coincide (box IoU {box_iou:.{digits}f} > {COINCIDE_IOU}):** {why} comes from "
        f"{model}, so both rules cut out much the same blob. What would change it: {finer}{remedy}, "
        "or another threshold (θ, p)."
    )


def gain_loss_line(ex: Explanation) -> str:
    """``+12 % of the photo gained, 3 % lost``: the improved rule's foreground against plain CAM's, and their IoU."""
    gained, lost, iou = html_views.gain_loss(ex.plain.mask, ex.ours.mask)
    return (
        f"**Gain / loss, {ex.controls.name} vs {ex.controls.baseline}** (last mask picture): +{gained:.0f} % of the "
        f"photo gained (magenta), {lost:.0f} % lost (orange); IoU of the two masks {iou:.2f}."
    )


def resolution_line(ex: Explanation) -> str:
    """``Analysed at 448 px, stride 16 -> 28x28 map``: the resolution both panels were analysed at."""
    a = ex.plain_analysis
    height, width = a.input_size
    return (
        f"**Analysed at {a.resolution}** (the photo stretched to {width} x {height} px; one map cell covers "
        f"{a.output_stride} x {a.output_stride} of those pixels: the Resolution control sets both)."
    )


def weights_note(ex: Explanation, which: str) -> str:
    """Which weights a panel's map is made of, the pooling they were trained with and, for a shipped checkpoint,
    the resolution it was trained at (the chosen one, or the nearest trained)."""
    analysis, pooling, trained = (ex.plain_analysis, ex.trained_with[0], ex.trained_at[0]) if which == "plain" else (
        ex.ours_analysis, ex.trained_with[1], ex.trained_at[1])  # fmt: skip
    note = f"weights of {analysis.model_name}, trained with {pooling}"
    if trained is None:
        return note
    note += f" at {trained.input_size} px, stride {trained.output_stride}"
    return note if trained == ex.resolution else f"{note} (the nearest trained head to this resolution)"


def _tap_story(ex: Explanation) -> list[str]:
    """What the TAP toggle did: nothing to say for two GAP panels; otherwise whose TAP-trained head is where."""
    plain, ours = ex.trained_with
    if plain == "TAP":
        return ["The picked model was trained with TAP, so **both panels use its TAP-trained head** (TAP is locked "
                f"on; a head-only fine-tune, {TAP_VERDICT} against its GAP control); the Why TAP tab shows the two "
                "heads under one rule."]  # fmt: skip
    if ours == "TAP":
        return ["TAP on: the green panel uses the shipped TAP-trained head, the blue one the GAP-trained model. That "
                f"head is a head-only fine-tune: {TAP_VERDICT} against its GAP control (the Why TAP tab shows the two "
                "heads under one rule)."]  # fmt: skip
    return []


# ---------------------------------------------------------------- burnt-in pictures


def gt_boxes_on_screen(ex: Explanation, gt: np.ndarray | None) -> list[tuple[np.ndarray, render.Colour, str]]:
    """The gold boxes in display pixels with their colour and label (``GT`` or ``GT1``, ``GT2``, ...)."""
    return [(box, render.GT_COLOUR, label) for box, label in zip(ex.to_display(gt), gt_labels(gt), strict=True)]


def panel_picture(ex: Explanation, which: str, gt: np.ndarray | None, swiped: bool = False) -> np.ndarray:
    """One panel (``"plain"`` or ``"ours"``) as RGB uint8 (h, w, 3): heatmap overlay, boxes and labels drawn in
    (``gt``: int (M, 4) ground-truth boxes in original pixels, or ``None``). ``swiped``: for the swipe view, whose
    divider starts in the middle: the labels stay in the half of the picture that is on screen (plain: left).

    The colour map is the default (:data:`app.render.DEFAULT_COLOUR_MAP`, opacity 0.5) whatever the browser's
    colour controls show: these pictures are for the swipe view, ``/explain`` and the zip export.
    """
    loc = ex.plain if which == "plain" else ex.ours
    picture = render.overlay(ex.photo, loc.heatmap)
    boxes = gt_boxes_on_screen(ex, gt)
    colour = render.PLAIN_COLOUR if which == "plain" else render.OURS_COLOUR
    boxes.append((loc.box, colour, plain_label(ex) if which == "plain" else ex.controls.name))
    width = float(picture.shape[1])
    half = ((0.0, width / 2) if which == "plain" else (width / 2, width)) if swiped else None
    return render.draw_labelled_boxes(picture, boxes, half)


def histogram_lines(ex: Explanation) -> list[histogram.Line]:
    """Each panel's threshold over its own map's histogram; P_p only while PaS is on (the plain line first)."""
    c, ours = ex.controls, ex.ours.threshold
    lines: list[histogram.Line] = [
        (ex.plain.threshold, histogram.PLAIN_STEP, False, f"blue: MaS θ·max = {ex.plain.threshold:.3f}")
    ]
    if c.pas:
        lines += [
            (ex.percentile_value, _PERCENTILE_COLOUR, True, f"green: P{c.percentile:g} = {ex.percentile_value:.3f}"),
            (ours, _OURS_LINE, False, f"green: PaS θ·P{c.percentile:g} = {ours:.3f}"),
        ]
    else:
        lines.append((ours, _OURS_LINE, False, f"green: MaS θ·max = {ours:.3f}"))
    return lines


def histogram_maps(ex: Explanation) -> list[tuple[render.Colour, str]]:
    """The legend of the two histograms: the plain map's outline, the improved map's bars."""
    return [
        (histogram.PLAIN_STEP, f"{ex.controls.baseline}'s map (outline)"),
        (histogram.OURS_BAR, f"{ex.controls.name}'s map (bars)"),
    ]


def histogram_picture(ex: Explanation) -> np.ndarray:
    """Both maps' histograms with burnt-in threshold lines and legend (exports)."""
    base = histogram.histogram_base(ex.plain.heatmap, ex.ours.heatmap)
    return histogram.histogram_with_thresholds(base, histogram_lines(ex), histogram_maps(ex))


def swipe_pictures(ex: Explanation, gt: np.ndarray | None) -> tuple[str, str]:
    """The swipe view's two pictures (the panels with boxes burnt in, each one's labels in its own half: the divider
    starts in the middle and no label hides behind it), as JPEG files."""
    plain, ours = panel_picture(ex, "plain", gt, swiped=True), panel_picture(ex, "ours", gt, swiped=True)
    return files.save_jpeg(plain), files.save_jpeg(ours)


class ExportPictures(NamedTuple):
    """The zip export's pictures, RGB uint8, named as in the archive."""

    plain_cam: np.ndarray
    improved_cam: np.ndarray
    histogram: np.ndarray
    masks: np.ndarray


def export_pictures(ex: Explanation, gt: np.ndarray | None) -> ExportPictures:
    """Both panels, the histogram and the two masks side by side, boxes burnt in."""
    masks = render.side_by_side(
        render.mask_picture(ex.photo, ex.plain.mask, render.PLAIN_COLOUR),
        render.mask_picture(ex.photo, ex.ours.mask, render.OURS_COLOUR),
    )
    return ExportPictures(panel_picture(ex, "plain", gt), panel_picture(ex, "ours", gt), histogram_picture(ex), masks)


# ---------------------------------------------------------------- live views over cached pictures


@dataclass(frozen=True)
class Statics:
    """Pictures that do not depend on the thresholds, written once per (photo, models, class, NWC).

    ``plain_url`` / ``ours_url``: each normalised map as 8-bit grey levels (PNG), coloured in the browser.
    """

    plain_url: str
    ours_url: str
    photo_url: str
    histogram_url: str
    histogram: histogram.HistogramBase

    def delete(self) -> None:
        """Remove the files (called when evicted from the cache)."""
        for url in (self.plain_url, self.ours_url, self.photo_url, self.histogram_url):
            files.delete_static(url)


STATICS: SmallLRU = SmallLRU(48, on_evict=lambda statics: statics.delete())
files.on_remove(STATICS.clear)


def statics(ex: Explanation) -> Statics:
    """The threshold-independent pictures of ``ex``, written on first use and then cached."""
    key = (
        ex.image_hash,
        analysis_key(ex.plain_analysis),
        analysis_key(ex.ours_analysis),
        ex.class_index,
        ex.controls.nwc_applied,
        ex.controls.method,
    )

    def make() -> Statics:
        plot = histogram.histogram_base(ex.plain.heatmap, ex.ours.heatmap)
        return Statics(
            files.static_url(render.grey_levels(ex.plain.heatmap), "png"),
            files.static_url(render.grey_levels(ex.ours.heatmap), "png"),
            files.static_url(ex.photo),
            files.static_url(plot.picture, "png"),
            plot,
        )

    return STATICS.get_or_make(key, make)


class LocalizationViews(NamedTuple):
    """Everything a slider move redraws: both panels, histogram and masks (HTML), caption, JSON."""

    plain: str
    ours: str
    histogram: str
    masks: str
    caption: str
    payload: dict[str, Any]


def localization_views(ex: Explanation, gt: np.ndarray | None) -> LocalizationViews:
    """The live views of ``ex`` (``gt``: int64 (M, 4) ground-truth boxes in original pixels, or ``None``)."""
    cached = statics(ex)
    gt_boxes = gt_boxes_on_screen(ex, gt)
    name, target = ex.controls.name, ex.class_name
    payload = explanation_json(ex, gt)
    return LocalizationViews(
        html_views.panel_html(
            f"{_capital(ex.controls.baseline)} for “{target}” ({ex.trained_with[0]}-trained weights), MaS box (blue)",
            cached.photo_url,
            cached.plain_url,
            ex.display,
            [*gt_boxes, (ex.plain.box, render.PLAIN_COLOUR, plain_label(ex))],
        ),
        html_views.panel_html(
            f"{name} for “{target}” ({ex.trained_with[1]}-trained weights), green box",
            cached.photo_url,
            cached.ours_url,
            ex.display,
            [*gt_boxes, (ex.ours.box, render.OURS_COLOUR, name)],
        ),
        html_views.histogram_html(
            cached.histogram_url,
            cached.histogram,
            histogram_lines(ex),
            histogram_maps(ex),
            f"Histograms of both maps (log scale): {ex.controls.baseline} outlined, {name} as bars; each threshold on "
            "its own map",
        ),
        html_views.compare_masks_html(
            cached.photo_url,
            ex.display,
            (ex.plain.mask, ex.controls.baseline_rule),
            (ex.ours.mask, name),
            [(ex.plain.box, render.PLAIN_COLOUR), (ex.ours.box, render.OURS_COLOUR)],
            ex.controls.baseline,
        ),
        caption(ex, payload),
        payload,
    )
