"""TAP alone (issue #23 item 3): the GAP-trained head against the TAP-trained head under one rule, on this photo.

Gradio-free. The two shipped heads (:func:`app.models.gap_control`, :func:`app.models.tap_partner`) share the
backbone, the recipe and the 993 training photos; only the pooling they were trained with differs. Both maps are
localised with the improved panel's rule without TAP (NWC, PaS, θ, p as the controls say), so what differs between
the two pictures is what TAP training did, and nothing else. The caption states the measured effect of the pair
(:data:`MEASURED`, from ``docs/tap_training.md``) and the paper's setting, and why a head-only fine-tune changes
little.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

import cam_core
from app import render
from app.explanation import localized, resolve_class, short_name
from app.inputs import Controls
from app.models import Resolution, gap_control, member, tap_partner, trained_at
from app.state import Session, get_analysis
from cam_core.localize import Localization, LocalizationConfig

GAP_LABEL, TAP_LABEL = "GAP head", "TAP head"

MEASURED: dict[str, str] = {
    "448/16": "MaxBoxAccV2 **+2.2** [−2.5, +5.6] with plain CAM and **−5.8** [−8.9, −1.4] with NWC+PaS, top-1 "
    "+0.8 [−8.3, +10.0]",
    "224/32": "MaxBoxAccV2 **−2.5** [−4.7, +0.3] with plain CAM and **−0.8** [−3.1, +1.1] with NWC+PaS, top-1 "
    "−11.7 [−19.2, −4.2]",
}
"""TAP minus GAP for the pair trained at each resolution, evaluated there on the 120 full-resolution dev photos
(``imagenet_val_fullres_dev``), paired bootstrap 95 % intervals: the table of ``docs/tap_training.md``."""

MEASURED_SET = "120 full-resolution ImageNet photos, 95 % intervals in brackets; one photo is 0.8 points"

PAPER_SETTING = (
    "**Why so little changes here, unlike the paper.** Bae et al. trained the **whole network** with TAP "
    "(VGG16, ResNet50 on CUB-200-2011 and ImageNet, hundreds of epochs on a GPU), so every layer learned "
    "features for a pooling that averages only the active pixels. The heads here are a **head-only** fine-tune "
    "on 993 photos: the backbone is frozen, and only the last 1 × 1 convolution, its BatchNorm and the classifier "
    "were re-trained. At each map cell both heads see the same backbone features, so TAP training can re-weight "
    "where the map peaks, but it cannot make the map fire on parts of the object the backbone does not respond "
    "to; that needs the backbone trained with TAP."
)

NO_PAIR = (
    "**TAP alone** needs a TAP-trained head and its GAP control; they are shipped for EfficientNet-Lite0 only "
    "(pick it, or one of the Experiment entries, in the model menu). " + PAPER_SETTING
)


class TapAlone(NamedTuple):
    """The two pictures (RGB uint8 (h, w, 3), display size, boxes drawn in) and the caption (Markdown)."""

    gap: np.ndarray
    tap: np.ndarray
    caption: str


def rule_without_tap(controls: Controls) -> tuple[LocalizationConfig, str]:
    """The improved panel's rule applied to both heads, and its name (``"NWC+PaS"``, ``"CAM, MaS"``)."""
    cam = controls.as_cam  # the two heads' own CAMs, whatever the method menu says
    name = "+".join(m for m in cam.modules if m != "TAP") or "CAM, MaS"
    return cam.ours_config, name


def compare_heads(session: Session, class_choice: Any, controls: Controls, gt: np.ndarray | None) -> TapAlone | None:
    """The GAP control's and the TAP head's maps on ``session``'s photo under :func:`rule_without_tap`, or
    ``None`` when ``session.model`` has no shipped pair (two forward passes the first time, then cached).

    Args:
        session: the photo (display size) and model; the pair is the one trained at (or nearest) its resolution.
        class_choice: the class picker's value (see :func:`app.explanation.resolve_class`).
        controls: the checked controls; their TAP flag is ignored.
        gt: int (M, 4) ground-truth boxes in original pixels, or ``None``.
    """
    gap_name, tap_name = gap_control(session.model), tap_partner(session.model)
    if gap_name is None or tap_name is None:
        return None
    gap_analysis, tap_analysis = get_analysis(session, gap_name), get_analysis(session, tap_name)
    c = resolve_class(class_choice, gap_analysis)
    config, rule = rule_without_tap(controls)
    display = session.size_on_screen
    gap = localized(session.image_hash, gap_analysis, c, config, display)
    tap = localized(session.image_hash, tap_analysis, c, config, display)
    gt_display = None if gt is None else cam_core.scale_boxes(np.asarray(gt).reshape(-1, 4), session.size, display)
    gap_picture = _picture(session.display, gap, GAP_LABEL, render.PLAIN_COLOUR, gt_display)
    tap_picture = _picture(session.display, tap, TAP_LABEL, render.OURS_COLOUR, gt_display)
    head = (short_name(gap_analysis.class_names[c]), rule, trained_at(member(tap_name, session.resolution)))
    ious = None
    if gt_display is not None:
        ious = (float(cam_core.box_iou(gap.box, gt_display).max()), float(cam_core.box_iou(tap.box, gt_display).max()))
    return TapAlone(gap_picture, tap_picture, caption(head, gap, tap, ious, session.resolution))


def _picture(photo: np.ndarray, loc: Localization, label: str, colour: render.Colour,
             gt: np.ndarray | None) -> np.ndarray:  # fmt: skip
    boxes = [(box, render.GT_COLOUR, "GT") for box in ([] if gt is None else gt)]
    return render.draw_labelled_boxes(render.overlay(photo, loc.heatmap), [*boxes, (loc.box, colour, label)])


def caption(head: tuple[str, str, Resolution | None], gap: Localization, tap: Localization,
            ious: tuple[float, float] | None, resolution: Resolution) -> str:  # fmt: skip
    """The caption: this photo's numbers, the pair's measured effect, the paper's setting.

    Args:
        head: the class's short name, the rule's name, the resolution the pair used was trained at.
        gap, tap: both heads' localisations under the same rule (boxes in display pixels).
        ious: each box's best IoU with the ground truth (GAP, TAP), in [0, 1], or ``None`` without one.
        resolution: the analysis resolution.
    """
    name, rule, trained = head
    box_iou = float(cam_core.box_iou(gap.box, tap.box)[0, 0])
    lines = [
        f"**TAP alone, on this photo** (“{name}”): the same rule, **{rule}** (the controls' improved rule without "
        "TAP), on two heads that differ only in the pooling they were trained with: the GAP-trained control (blue "
        "box) and the TAP-trained head (green box), with the same backbone, recipe and photos. Box IoU GAP vs TAP head "
        f"**{box_iou:.2f}**; foreground {100 * gap.foreground_fraction:.1f} % vs "
        f"{100 * tap.foreground_fraction:.1f} % of the photo." + _gt_words(ious)
    ]
    if trained is not None:
        where = f"{trained.input_size}/{trained.output_stride}"
        note = (
            ""
            if trained == resolution
            else f" (the pair nearest to {resolution.input_size}/{resolution.output_stride})"
        )
        if where in MEASURED:
            lines.append(
                f"**Measured for this pair** (trained and scored at {where}{note}; TAP minus GAP on {MEASURED_SET}): "
                f"{MEASURED[where]}. No localisation gain from TAP here (docs/tap_training.md)."
            )
    lines.append(PAPER_SETTING)
    return "\n\n".join(lines)


def _gt_words(ious: tuple[float, float] | None) -> str:
    """`` With the ground truth: IoU GAP 0.40, TAP 0.52 (TAP head ahead by 0.12).``; ``""`` without one."""
    if ious is None:
        return ""
    gap, tap = ious
    if round(gap, 2) == round(tap, 2):
        verdict = "a tie"
    else:
        verdict = f"{'TAP' if tap > gap else 'GAP'} head ahead by {abs(tap - gap):.2f}"
    return f" With the ground truth: IoU GAP head {gap:.2f}, TAP head {tap:.2f} ({verdict})."
