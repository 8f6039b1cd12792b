"""The Segmentation tab's label maps without Gradio (the tab itself: :mod:`app.tabs.segmentation`): its inputs,
the two label maps from the cache, their views and files.

Issue #16, app side. From the cached analysis (no forward pass), :func:`segment_pair` computes two
label maps of the same classes at display size: **plain CAM** (MaS, no NWC, ``theta_mas``) and the
**improved rule** of the main tab's controls (NWC / PaS / TAP), as :func:`cam_core.segment.segment`
would. The slider path is kept cheap by two caches: the per-class maps (bicubic upsampling, the costly
part) per (photo, model, classes, NWC), and each map's standard and 8-bit reference per rule and
percentile, so a θ move only re-runs the per-pixel argmax (:func:`cam_core.segment.label_map`).

Inputs arrive hostile, as in :mod:`app.inputs`: :func:`segment_request` converts one event's raw values
(session, the controls, the picked classes, ``top_k``, ``min_probability``); messages name the parameter.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import cam_core
from app import files, html_views, inputs
from app.crf_worker import mean_field_in_worker
from app.explanation import percent, resolve_class, short_name
from app.inputs import Controls, Entrance, need_session
from app.models import tap_partner
from app.state import Session, SmallLRU, analysis_key, get_analysis
from cam_core.cam import Analysis
from cam_core.crf import CrfParams, label_grid
from cam_core.localize import LocalizationConfig
from cam_core.segment import (
    Segmentation,
    SegmentConfig,
    class_maps,
    from_maps,
    label_size,
    palette,
    segment,
    select_classes,
    write_label_png,
)
from cam_core.segment import standards as map_standards
from cam_core.segment.labels import OVERCLAIM_MIN_AREA, OVERCLAIM_RATIO
from cam_core.threshold import quantize

TOP_K_MAX = 10
"""The top-k slider's maximum, and how many classes the picker offers (with their probabilities)."""
MAX_PICKED = 20
_START = SegmentConfig()
_STACK = 'style="position:relative;line-height:0"'
_OVER = 'style="position:absolute;left:0;top:0;width:100%;height:100%"'
_ALPHA_BACKGROUND, _ALPHA_CLASS = 120, 165  # the label overlay's opacity: background darkened, classes tinted


# ---------------------------------------------------------------- inputs, checked where they enter


@dataclass(frozen=True)
class ClassSet:
    """Which classes to segment.

    Attributes:
        picked: class references as given (index or name, see :func:`app.inputs.class_reference`);
            empty = the top ``top_k`` classes with probability >= ``min_probability``.
        top_k: in ``[1, TOP_K_MAX]``.
        min_probability: in ``[0, 1]``.
    """

    picked: tuple[int | str, ...] = ()
    top_k: int = _START.top_k
    min_probability: float = _START.min_probability


def class_set(seg_classes: Any, top_k: Any, min_probability: Any) -> ClassSet:
    """The class picker's and the two sliders' raw values, checked.

    Raises:
        ParameterError: ``seg_classes`` not a list of at most :data:`MAX_PICKED` indices or names;
            ``top_k`` not a whole number in ``[1, TOP_K_MAX]``; ``min_probability`` not in ``[0, 1]``.
    """
    if seg_classes is None:
        seg_classes = []
    if not isinstance(seg_classes, list | tuple) or len(seg_classes) > MAX_PICKED:
        shown = repr(seg_classes)[:40]
        raise cam_core.ParameterError(f"`seg_classes` must be a list of at most {MAX_PICKED} classes, got {shown}.")
    picked = tuple(inputs.class_reference(value, "seg_classes") for value in seg_classes)
    if any(reference is None for reference in picked):
        raise cam_core.ParameterError("`seg_classes`: an empty class name; give indices or ImageNet class names.")
    return ClassSet(
        tuple(reference for reference in picked if reference is not None),
        inputs.integer(top_k, "top_k", 1, TOP_K_MAX),
        inputs.number(min_probability, "min_probability", 0.0, 1.0),
    )


@dataclass(frozen=True)
class SegRequest:
    """One Segmentation event's inputs, checked: the session, the main tab's controls, the class set."""

    session: Session | None
    controls: Controls = field(default_factory=Controls)
    classes: ClassSet = field(default_factory=ClassSet)


def segment_request(
    session: Session | None,
    controls: Controls,
    seg_classes: Any = None,
    top_k: Any = _START.top_k,
    min_probability: Any = _START.min_probability,
) -> SegRequest:
    """The one conversion of a Segmentation event's inputs (:data:`SEG`: the raw controls arrive as one checked
    :class:`Controls`), in the order the tab's events send them. The label maps are plain CAM's whatever the
    method menu says (:attr:`Controls.as_cam`: a CAM-family map per class would be one head pass per class).

    Raises:
        ParameterError: naming ``seg_classes``, ``top_k`` or ``min_probability``.
    """
    return SegRequest(session, controls.as_cam, class_set(seg_classes, top_k, min_probability))


SEG: Entrance[SegRequest] = Entrance(segment_request)
"""Session, the controls, then the tab's class picker, top-k and floor."""


# ---------------------------------------------------------------- the two label maps, from the cache

MAPS: SmallLRU = SmallLRU(8)
"""float32 (n, h, w) class maps per (photo, analysis (model and resolution), classes, NWC, size): 5 classes at
512 px are 5 MB."""
STANDARDS: SmallLRU = SmallLRU(64)
"""Per maps key, rule and percentile: each map's standard u_c and its 8-bit reference (max or P_p of uint8)."""


def _maps(analysis: Analysis, image_hash: str, classes: tuple[int, ...], nwc: bool, size: tuple[int, int]) -> Any:
    key = (image_hash, analysis_key(analysis), classes, nwc, size)
    return key, MAPS.get_or_make(key, lambda: class_maps(analysis, classes, nwc, size))


def _standards(key: tuple[object, ...], maps: np.ndarray, loc: LocalizationConfig) -> tuple[np.ndarray, np.ndarray]:
    """``u_c`` (float64 (n,)) and the 8-bit reference ``max(q_c)`` or ``P_p(q_c)`` (float64 (n,)), cached."""

    def make() -> tuple[np.ndarray, np.ndarray]:
        quantized = [quantize(m) for m in maps]
        pas = loc.rule == "pas"
        reference = [float(np.percentile(q, loc.percentile)) if pas else float(q.max()) for q in quantized]
        return map_standards(maps, loc.rule, loc.percentile), np.asarray(reference)

    return STANDARDS.get_or_make((*key, loc.rule, loc.percentile if loc.rule == "pas" else None), make)


def segment_cached(analysis: Analysis, image_hash: str, config: SegmentConfig, size: tuple[int, int]) -> Segmentation:
    """:func:`cam_core.segment.segment` at ``size`` (h, w), equal label for label, from the two caches.

    The 8-bit levels are ``int(theta · reference)``: :func:`cam_core.threshold.threshold_8bit` on cached values.
    """
    classes = select_classes(analysis, config)
    loc = config.localization
    key, maps = _maps(analysis, image_hash, classes, loc.nwc, size)
    standard, reference = _standards(key, maps, loc)
    levels = np.array([int(loc.theta * r) for r in reference], np.int64) if loc.thresholding == "8bit" else None
    return from_maps(analysis, classes, maps, standard, levels, config)


@dataclass(frozen=True)
class SegPair:
    """Both label maps of one request, same classes (hence same slots and colours), at display size."""

    plain: Segmentation
    ours: Segmentation
    controls: Controls
    automatic: bool
    session: Session


def _analyses(session: Session, controls: Controls) -> tuple[Analysis, Analysis]:
    """The plain panel's analysis and the improved one's (the TAP partner's with TAP on)."""
    plain = get_analysis(session, session.model)
    partner = tap_partner(session.model)
    if controls.tap and partner is None:
        raise cam_core.ParameterError("`tap`: TAP needs a TAP-trained model; none is available for this model.")
    return plain, (get_analysis(session, partner) if controls.tap and partner else plain)


def chosen_classes(request: SegRequest, analysis: Analysis) -> tuple[int, ...]:
    """The picked classes (resolved), else the automatic top-k over the floor (by the plain model's probabilities).

    Raises:
        ClassIndexError: a picked class is unknown. ParameterError: repeated classes, or none over the floor.
    """
    picked = tuple(resolve_class(reference, analysis) for reference in request.classes.picked) or None
    wanted = request.classes
    config = SegmentConfig(request.controls.plain_config, picked, wanted.top_k, wanted.min_probability)
    return select_classes(analysis, config)


def segment_pair(request: SegRequest) -> SegPair:
    """Plain CAM (MaS, no NWC) and the improved rule's label maps, at display size, from the cached analysis."""
    session = need_session(request.session)
    plain_analysis, ours_analysis = _analyses(session, request.controls)
    classes = chosen_classes(request, plain_analysis)
    display, controls = session.size_on_screen, request.controls
    plain = segment_cached(plain_analysis, session.image_hash, SegmentConfig(controls.plain_config, classes), display)
    ours = segment_cached(ours_analysis, session.image_hash, SegmentConfig(controls.ours_config, classes), display)
    return SegPair(plain, ours, controls, not request.classes.picked, session)


def refine_pair(pair: SegPair, params: CrfParams) -> SegPair:
    """Both label maps refined by the (n + 1)-label dense CRF on the display-size photo (~0.6 s each), in the CRF
    worker process (:mod:`app.crf_worker`: the inference holds the GIL)."""
    photo, run = pair.session.display, mean_field_in_worker
    plain, ours = pair.plain.refine(photo, params, runner=run), pair.ours.refine(photo, params, runner=run)
    return replace(pair, plain=plain, ours=ours)


def class_choices(analysis: Analysis, extra: list[str] | tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The class picker's choices: the top :data:`TOP_K_MAX` with probabilities, plus the picked extras."""
    top = [(f"{short_name(name)} ({percent(p)})", str(i)) for i, name, p in analysis.top_k(TOP_K_MAX)]
    known = {value for _, value in top}
    for value in extra:
        if value not in known and value.isdigit() and int(value) < analysis.num_classes:
            index = int(value)
            p = float(analysis.probabilities[index])
            top.append((f"{index}: {short_name(analysis.class_names[index])} ({percent(p)})", value))
    return top


# ---------------------------------------------------------------- views: label maps over the photo, legend, caption

PHOTOS: SmallLRU = SmallLRU(48, on_evict=files.delete_static)
files.on_remove(PHOTOS.clear)
"""The display-size photo as a served file, per image hash (the label maps are laid over it)."""


def label_overlay_url(labels: np.ndarray, n: int) -> str:
    """A uint8 (h, w) slot map as a palette PNG data URL in VOC colours: background darkened, classes tinted."""
    height, width = labels.shape
    picture = Image.frombytes("P", (width, height), np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    picture.putpalette(palette(n).ravel().tolist())
    buffer = io.BytesIO()
    alpha = bytes([_ALPHA_BACKGROUND] + [_ALPHA_CLASS] * n)
    picture.save(buffer, format="PNG", compress_level=1, transparency=alpha)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def label_panel(title: str, photo_url: str, seg: Segmentation, refined: bool) -> str:
    """The photo with one label map laid over it (inline PNG), titled."""
    labels = seg.refined if refined and seg.refined is not None else seg.labels
    overlay = f'<img class="labels" src="{label_overlay_url(labels, len(seg.classes))}" alt="label map" {_OVER}/>'
    return html_views.figure(title, photo_url, seg.size, "", f"{title}: label map over the photo", extra=overlay)


def _percent(value: Any) -> str:
    return "" if value is None else f"{100 * float(value):.1f} %"


def _probability(value: Any) -> str:
    """As the class pickers say it (:func:`app.explanation.percent`: "< 0.01 %", never "0.0 %"), HTML-escaped."""
    return "" if value is None else html.escape(percent(float(value)))


OVERCLAIM = "⚠ area ≫ probability"
"""The legend's mark on a class that overclaims (:func:`cam_core.segment.overclaims`) under either rule."""
OVERCLAIM_TIP = (
    f"It covers at least {100 * OVERCLAIM_MIN_AREA:.0f} % of the photo and more than {OVERCLAIM_RATIO:g} times its "
    "probability: each class's CAM is normalised on its own, so an unlikely class can paint a large area"
)


def legend_html(pair: SegPair, refined: bool) -> str:
    """One row per slot: colour, class, probability, area under each rule (and after the CRF when refined); a class
    whose area is far above its probability carries :data:`OVERCLAIM` (and ``data-overclaims="1"`` on its row)."""
    plain, ours = pair.plain.legend(), pair.ours.legend()
    heads = ["", "class", "probability", "area: plain CAM", f"area: {pair.controls.name}"]
    heads += ["plain + CRF", f"{pair.controls.name} + CRF"] if refined else []
    rows, colours = [], palette(len(pair.plain.classes))
    for slot, (p, o) in enumerate(zip(plain, ours, strict=True)):
        r, g, b = (int(v) for v in colours[slot])
        swatch = f'<span style="display:inline-block;width:14px;height:14px;background:rgb({r},{g},{b});'
        swatch += 'border:1px solid #888;vertical-align:middle"></span>'
        name = p["name"] if p["class_index"] is None else f"{p['class_index']}: {short_name(str(p['name']))}"
        flagged = bool(p["overclaims"] or o["overclaims"])
        label = html.escape(str(name)) + (
            f' <span class="overclaim" title="{OVERCLAIM_TIP}">{OVERCLAIM}</span>' if flagged else ""
        )
        cells = [swatch, label, _probability(p["probability"]), _percent(p["area"]), _percent(o["area"])]
        cells += [_percent(p["area_crf"]), _percent(o["area_crf"])] if refined else []
        data = f'data-slot="{p["slot"]}" data-area-plain="{p["area"]:.4f}" data-area-ours="{o["area"]:.4f}"'
        data += ' data-overclaims="1"' if flagged else ""
        rows.append(f"<tr {data}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    return f'<table class="seg-legend"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def caption(pair: SegPair, refined: bool) -> str:
    """The Markdown under the legend: which classes, which rules, what a label means."""
    c, names = pair.controls, ", ".join(short_name(name) for name in pair.plain.names)
    how = "picked" if not pair.automatic else "automatic: the top-k classes with probability over the floor"
    ours_rule = f"PaS θ = {c.theta_pas:.2f} · P{c.percentile:g}" if c.pas else f"MaS θ = {c.theta_mas:.2f} · max"
    lines = [
        f"**Classes** ({how}): {names}.",
        f"**Plain CAM**: MaS θ = {c.theta_mas:.2f} · max, no NWC. **{c.name}**: NWC {'on' if c.nwc else 'off'}, "
        f"{ours_rule}{', TAP-trained head' if c.tap else ''}.",
        "A pixel takes the class whose normalised map, divided by its standard (max or P_p), is largest among "
        "the classes over their own threshold (the main tab's mask of that class); else background (dark).",
    ]
    if any(row["overclaims"] for seg in (pair.plain, pair.ours) for row in seg.legend()):
        lines.append(f"**{OVERCLAIM}**: {OVERCLAIM_TIP}; read its region as the map's guess, not the model's.")
    if refined:
        lines.append("**Dense CRF** for the controls as they were at the click; after moving them, refine again."
                     + _crf_grid_note(pair))  # fmt: skip
    return "\n\n".join(lines)


def _crf_grid_note(pair: SegPair) -> str:
    """Where the CRF's labels x pixels budget shrank its grid (:func:`cam_core.crf.label_grid`), say so."""
    (height, width), labels = pair.plain.size, len(pair.plain.names) + 1
    grid = label_grid(height, width, labels)
    if grid == (height, width):
        return ""
    return (f" With {labels} labels it ran on a {grid[1]} x {grid[0]} grid (its memory grows with labels x pixels; "
            "the labels were scaled back up).")  # fmt: skip


def segmentation_views(pair: SegPair, refined: bool = False) -> tuple[str, str, str, str]:
    """Both panels (HTML), the legend (HTML) and the caption (Markdown) of ``pair``."""
    session = pair.session
    photo_url = PHOTOS.get_or_make((session.image_hash,), lambda: files.static_url(session.display))
    suffix = " + CRF" if refined else ""
    return (
        label_panel(f"Plain CAM (MaS){suffix}", photo_url, pair.plain, refined),
        label_panel(f"{pair.controls.name}{suffix}", photo_url, pair.ours, refined),
        legend_html(pair, refined),
        caption(pair, refined),
    )


# ---------------------------------------------------------------- download: label PNGs + JSON, as the CLI writes


def _record(seg: Segmentation, session: Session, model: str) -> dict[str, Any]:
    """The sidecar JSON of one label PNG (the fields of ``python -m cam_core.segment``'s ``<stem>.json``)."""
    return {
        "image": session.name,
        "model": model,
        "size": list(seg.size),
        "config": {**asdict(seg.config.localization), "classes": list(seg.classes)},
        "crf": seg.refined is not None,
        "slots": seg.legend(),
    }


def export_zip(request: SegRequest) -> str:
    """A zip of ``plain.png`` / ``improved.png`` (palette PNGs of slots at the photo's own size) and their JSON.

    As ``python -m cam_core.segment`` writes them: each map is segmented at :func:`cam_core.segment.label_size`
    (the photo's size up to 4 megapixels), one class map at a time, and its uint8 labels resized (nearest) to the
    photo: a 12000 x 12000 photo costs one 144 MB label map, not a 576 MB float map per class.
    """
    session = need_session(request.session)
    plain_analysis, ours_analysis = _analyses(session, request.controls)
    classes = chosen_classes(request, plain_analysis)
    work = label_size(session.size)
    path = files.new_path(".zip", name=f"cam-label-maps {os.path.splitext(session.name)[0]}")
    with zipfile.ZipFile(path, "w") as archive:
        for stem, analysis, loc in (
            ("plain", plain_analysis, request.controls.plain_config),
            ("improved", ours_analysis, request.controls.ours_config),
        ):
            # one photo-size label map alive at a time: the first is gone before the second is made
            seg = segment(analysis, SegmentConfig(loc, classes), size=work, keep_maps=False)
            _add_label_map(archive, stem, seg.resized(session.size), session, analysis.model_name)
    return path


def _add_label_map(archive: zipfile.ZipFile, stem: str, seg: Segmentation, session: Session, model: str) -> None:
    """``<stem>.png`` and ``<stem>.json`` of one label map into ``archive``."""
    png = Path(files.new_path(".png"))
    write_label_png(png, seg.labels, len(seg.classes))
    archive.write(png, f"{stem}.png")
    png.unlink(missing_ok=True)
    archive.writestr(f"{stem}.json", json.dumps(_record(seg, session, model), indent=1))
