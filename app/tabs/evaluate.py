"""Evaluate: the library's WSOL evaluation on a small uploaded set or the bundled examples (slow lane).

Same code as ``python -m cam_core.evaluate`` (one forward per image, method.md's protocol); a per-image
hook collects plain-CAM and NWC+PaS boxes for the win / loss gallery without a second forward pass. The CAM-family
methods ticked in the tab (issue #25) add their rows as the CLI's ``--methods`` does, each a head pass on the cached
features; the budget counts their measured cost (:data:`app.eval_budget.METHOD_S_PER_PHOTO`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio.components import Component

import cam_core
from app import files, inputs, models, plots, render, texts
from app.checks import choices
from app.errors import user_errors
from app.eval_budget import check_budget, photo_size, with_deadline
from app.events import Events
from app.model_cache import LONG_JOB_LOAD_WAIT_S
from app.state import get_model
from cam_core.cam import Analysis
from cam_core.datasets import Sample, read_boxes_csv, read_boxes_csv_for_uploads
from cam_core.evaluate import EvaluationResult, default_configs, evaluate
from cam_core.family import IDENTITIES, METHOD_LABELS
from cam_core.localize import CONFIGS, localize
from cam_core.resolution import resolution_label

ID, LABEL = "evaluate", "Evaluate"
EXAMPLES = inputs.EXAMPLES
MAX_IMAGES = 64
MAX_TOTAL_MB = 50
MAX_EVAL_PIXELS = 16_000_000
"""Evaluation decodes each photo whole (its boxes are in its pixels): the app bounds that to 48 MB of RGB."""
EVAL_BATCH = 1
"""Photos per forward pass: one. A batch of 8 at 512 px / stride 16 held about 300 MB of activations at once
(``bench/bench_hostile.py``, the bundled examples) and was slower on the slow lane's one torch thread: 2.8 to 3.1 s
against 1.4 s for the same 8 photos one at a time (random 512 x 512 photos, lite0, this machine)."""
GALLERY_SIZE = 6


def boxed_examples() -> tuple[str, ...]:
    """The bundled examples that ``assets/examples/boxes.csv`` gives boxes for (what "Evaluate the bundled examples"
    runs), sorted."""
    return tuple(sorted({sample.path.name for sample in read_boxes_csv(EXAMPLES / "boxes.csv", EXAMPLES)}))


CAPTION_PX = 40
"""White strip under each gallery picture: the gallery draws its caption over the picture's bottom edge."""


@dataclass(frozen=True)
class EvaluateTab:
    """The WSOL evaluation of an uploaded set or the bundled examples."""

    images: gr.File
    boxes_csv: gr.File
    run: gr.Button
    run_examples: gr.Button
    methods: gr.CheckboxGroup
    table: gr.Markdown
    curves: gr.Image
    gallery: gr.Gallery
    json: gr.JSON

    def shares(self) -> dict[str, Component]:
        """Nothing: the tab reads the model and the resolution, and fills only its own views."""
        return {}

    @property
    def outputs(self) -> list[Any]:
        """Table, curves, gallery, JSON: the order of :func:`run_evaluation`'s result."""
        return [self.table, self.curves, self.gallery, self.json]


def build() -> EvaluateTab:
    """Upload photos and a boxes CSV, or run the examples."""
    with gr.Tab(LABEL, id=ID):
        gr.Markdown(texts.evaluate_intro(MAX_IMAGES, MAX_TOTAL_MB, boxed_examples(), len(inputs.EXAMPLE_FILES)))
        with gr.Row():
            images = gr.File(label="Photos", file_count="multiple", file_types=["image"])
            boxes_csv = gr.File(label="Boxes CSV", file_types=[".csv"])
        methods = gr.CheckboxGroup(
            [(label, key) for key, label in METHOD_LABELS.items()],
            value=[],
            label="CAM-family methods to score too",
            info=texts.EVALUATE_METHODS_INFO,
            elem_id="eval-methods",
        )
        with gr.Row():
            run = gr.Button("Evaluate the uploaded set", variant="primary")
            run_examples = gr.Button("Evaluate the bundled examples")
        table = gr.Markdown(elem_id="eval-table")
        curves = gr.Image(label="BoxAcc (IoU ≥ 0.5) against θ", format="png", interactive=False)
        gr.Markdown(  # not the gallery's own label: that one covers the pictures' top edge
            "**Where NWC+PaS wins and loses against plain CAM** (blue: plain, green: NWC+PaS, gold: ground truth); "
            "each photo as the network sees it, stretched to its input. Plain CAM's rows only, whatever methods are "
            "ticked: the family's rows are in the table."
        )
        gallery = gr.Gallery(
            label="Wins and losses",
            show_label=False,
            columns=3,
            object_fit="contain",  # whole pictures: a cropped thumbnail cut the boxes
            elem_id="eval-gallery",
        )
        json = gr.JSON(label="Evaluation JSON (same schema as the CLI)")
    return EvaluateTab(images, boxes_csv, run, run_examples, methods, table, curves, gallery, json)


@dataclass(frozen=True, eq=False)  # compared by identity: the gallery picks each outcome once
class ImageOutcome:
    """Plain CAM (MaS) vs NWC+PaS on one evaluated image, in network-input pixels."""

    name: str
    view: np.ndarray
    gt: np.ndarray
    plain_box: np.ndarray
    ours_box: np.ndarray
    plain_iou: float
    ours_iou: float


def _uploads_by_name(images: Any) -> dict[str, str]:
    """``{base name: checked real path}`` of the uploaded photos (each checked by :func:`inputs.upload_path`).

    The photo cap counts distinct files (``a.jpg`` uploaded twice is one photo).

    Raises:
        ParameterError: not a list, more than :data:`MAX_IMAGES` distinct photos or :data:`MAX_TOTAL_MB`,
            or two different photos with the same name.
    """
    if not isinstance(images, list) or len(images) > 4 * MAX_IMAGES:
        raise cam_core.ParameterError(f"`images`: upload at most {MAX_IMAGES} photos; use the CLI for more.")
    distinct = dict.fromkeys(inputs.upload_path(item, "images") for item in images)
    if len(distinct) > MAX_IMAGES:
        raise cam_core.ParameterError(f"{len(distinct)} photos: the in-app limit is {MAX_IMAGES}; use the CLI.")
    total = sum(os.path.getsize(path) for path in distinct) / 2**20
    if total > MAX_TOTAL_MB:
        raise cam_core.ParameterError(f"{total:.0f} MB of photos: the in-app limit is {MAX_TOTAL_MB} MB; use the CLI.")
    by_name: dict[str, str] = {}
    for path in distinct:
        name = os.path.basename(path)
        if by_name.setdefault(name, path) != path:
            raise cam_core.ParameterError(f"Two different uploaded photos are named {name!r}: rename one.")
    return by_name


def _too_big(path: Path) -> str:
    """Why a photo is too large to evaluate in the app ("" if it is not), from its header alone."""
    size = photo_size(path)
    if size is None:
        return ""  # the evaluation itself reports what is wrong with the file
    if size.width * size.height > MAX_EVAL_PIXELS:
        limit = MAX_EVAL_PIXELS // 10**6
        return f"{size.width}x{size.height} is over the in-app limit of {limit} MP per photo; use the CLI"
    return ""


def uploaded_samples(images: Any, boxes_csv: Any) -> tuple[list[Sample], list[dict[str, str]]]:
    """The uploaded photos labelled by the uploaded boxes CSV, and the CSV rows that were skipped (with why).

    A CSV file name is matched to the uploads by its base name only: a name with a path component
    (``../x.jpg``, ``/etc/x``, ``./x.jpg``) or without a matching upload is skipped with its reason, so no
    CSV can make the server read anything but what was uploaded.
    """
    if not images or boxes_csv is None:
        raise cam_core.ParameterError(
            "Upload the photos *and* a boxes CSV (filename,class_index,x0,y0,x1,y1), or use the examples."
        )
    uploads = _uploads_by_name(images)
    labelled, skipped_rows = read_boxes_csv_for_uploads(inputs.upload_path(boxes_csv, "boxes CSV"), uploads)
    skipped = [{"file": inputs.shown(s["file"]), "reason": f"line {s['line']}: {s['reason']}"} for s in skipped_rows]
    samples = []
    for sample in labelled:  # evaluation decodes photos whole (boxes are in their pixels): bound that here
        too_big = _too_big(sample.path)
        if too_big:
            skipped.append({"file": inputs.shown(sample.path.name), "reason": too_big})
        else:
            samples.append(sample)
    if not samples:
        reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped[:3])
        raise cam_core.DatasetError(f"No row of the CSV names an uploaded photo ({reasons}).")
    return samples, skipped


def _outcome(sample: Sample, analysis: Analysis, gt: np.ndarray) -> ImageOutcome:
    c = sample.class_index
    plain = localize(analysis, c, CONFIGS["cam"], analysis.input_size).box
    ours = localize(analysis, c, CONFIGS["nwc+pas"], analysis.input_size).box
    best = lambda box: float(cam_core.box_iou(box, gt).max())  # noqa: E731
    return ImageOutcome(sample.path.name, analysis.image, gt, plain, ours, best(plain), best(ours))


def table_markdown(result: EvaluationResult, pooling: str = "gap") -> str:
    """The ablation table as Markdown, percentages: plain CAM's rows, then each ticked method's (grouped, the
    method named once), and under them which rows are equal by an identity (``pooling``: the model's head)."""
    lines = [
        f"**{result.model}** ({result.weights}), {result.n_images} photos, protocol `{result.protocol}`, "
        f"analysed at {resolution_label(result.input_size, result.output_stride, result.feature_size)}, "
        f"top-1 {result.top1:.1f} %"
        + (
            f"; **skipped {len(result.skipped)}**: "
            + "; ".join(f"{s['file']} ({s['reason']})" for s in result.skipped[:10])
            if result.skipped
            else ""
        ),
        "",
        "| method | config | GT-known Loc | Top-1 Loc | MaxBoxAcc v1 | MaxBoxAccV2 (30 / 50 / 70) |",
        "|---|---|---|---|---|---|",
    ]
    shown_method = None
    for name, m in result.configs.items():  # grouped by method: default_configs lists each method's rules together
        method = result.settings.get(name, {}).get("method", "cam")
        label = "" if method == shown_method else f"**{method_label(method)}**"
        shown_method = method
        by = m.maxboxacc_v2_by_iou
        top1 = "–" if m.top1_loc is None else f"{m.top1_loc:.1f}"
        lines.append(
            f"| {label} | {name} | {m.gt_known_loc:.1f} | {top1} | {m.maxboxacc_v1:.1f} | "
            f"{m.maxboxacc_v2:.1f} ({by['30']:.1f} / {by['50']:.1f} / {by['70']:.1f}) |"
        )
    family = list(dict.fromkeys(s["method"] for s in result.settings.values() if s.get("method", "cam") != "cam"))
    if family:
        equal = [(METHOD_LABELS[m], IDENTITIES[m][1]) for m in family if m in IDENTITIES]
        none = [METHOD_LABELS[m] for m in family if m not in IDENTITIES]
        lines += ["", texts.evaluate_identities(equal, none, gap=pooling != "tap")]
    lines += ["", texts.EVALUATE_PROTOCOL, "", texts.EVALUATE_PAS]  # said where the numbers are
    return "\n".join(lines)


def method_label(method: str) -> str:
    """``"CAM"`` for plain CAM (the rows of the paper's ablation), else the family method's label."""
    return "CAM" if method == "cam" else METHOD_LABELS.get(method, method)


def gallery(outcomes: list[ImageOutcome]) -> list[tuple[str, str]]:
    """Where NWC+PaS wins most and loses most against plain CAM (boxes: blue plain, green ours, gold GT)."""
    ranked = sorted(outcomes, key=lambda o: o.ours_iou - o.plain_iou, reverse=True)
    picked = ranked[:GALLERY_SIZE] + [o for o in ranked[-GALLERY_SIZE:][::-1] if o not in ranked[:GALLERY_SIZE]]
    items = []
    for o in picked:
        picture = o.view.copy()
        for box in o.gt:
            render.draw_box(picture, box, render.GT_COLOUR)
        render.draw_box(picture, o.plain_box, render.PLAIN_COLOUR)
        render.draw_box(picture, o.ours_box, render.OURS_COLOUR)
        picture = np.pad(picture, ((0, CAPTION_PX), (0, 0), (0, 0)), constant_values=255)  # room for the caption
        items.append((files.save_jpeg(picture), gallery_caption(o)))
    return items


def gallery_caption(o: ImageOutcome) -> str:
    """``"cat.jpg: IoU 0.31 → 0.55, win +0.24"``: the name first (a long caption is cut at its end), a tie unsigned."""
    delta = round(o.ours_iou - o.plain_iou, 2)  # as shown: a difference that rounds to 0.00 is a tie, never "-0.00"
    verdict = f"win +{delta:.2f}" if delta > 0 else f"loss −{-delta:.2f}" if delta < 0 else "tie"
    return f"{inputs.shown(o.name, 40)}: IoU {o.plain_iou:.2f} → {o.ours_iou:.2f}, {verdict}"


@user_errors
def run_evaluation(
    images: list[Any] | None,
    boxes_csv: Any | None,
    use_examples: bool,
    model: str,
    resolution: Any = inputs.DEFAULT_RESOLUTION.value,
    methods: Any = None,
    progress: gr.Progress = gr.Progress(),
) -> tuple[str, str, list[tuple[str, str]], dict[str, Any]]:
    """Evaluate the uploaded set (or the bundled examples) and return table, curves, gallery and JSON.

    ``resolution`` is the Resolution menu's value (``"448/16"``): the photos are stretched to its input size and
    the model is built at its output stride, as on the main tab (a checkpoint family gives its member trained
    there, or the nearest: :func:`app.models.member`). ``methods``: the ticked CAM-family methods (keys of
    :data:`cam_core.family.METHOD_LABELS`, checked by :func:`checked_methods`), scored under the same rules as
    plain CAM, whose four rows always come first (``default_configs(..., methods=...)``, as the CLI's
    ``--methods``). A set over the time budget (methods included) is refused before any photo is decoded or any
    model loaded, and a run over the deadline is stopped (:mod:`app.eval_budget`).
    """
    at = inputs.resolution_choice(resolution)
    family = checked_methods(methods)
    outcomes: list[ImageOutcome] = []
    skipped: list[dict[str, str]]
    if use_examples is True:
        samples, skipped = read_boxes_csv(EXAMPLES / "boxes.csv", EXAMPLES), []
    else:
        samples, skipped = uploaded_samples(images, boxes_csv)
    check_budget([size for sample in samples if (size := photo_size(sample.path)) is not None], at, family)  # first
    network = get_model(models.member(model, at), at.output_stride, wait_s=LONG_JOB_LOAD_WAIT_S)
    loaded = cam_core.with_input_size(network, at.input_size)
    result = evaluate(
        loaded,
        samples,
        default_configs(loaded.pooling, methods=("cam", *family)),
        batch_size=EVAL_BATCH,
        progress=with_deadline(lambda done, total: progress(done / total, desc=f"{done}/{total} photos")),
        on_image=lambda sample, analysis, gt: outcomes.append(_outcome(sample, analysis, gt)),
    )
    # file names only: the server's folders are nobody's business
    result.skipped[:] = skipped + [{**s, "file": inputs.shown(Path(s["file"]).name)} for s in result.skipped]
    return (
        table_markdown(result, loaded.pooling),
        files.save_png(plots.curves_plot(result)),
        gallery(outcomes),
        result.to_dict(),
    )


def run_examples(
    model: str,
    resolution: Any = inputs.DEFAULT_RESOLUTION.value,
    methods: Any = None,
    progress: gr.Progress = gr.Progress(),
) -> tuple[str, str, list[tuple[str, str]], dict[str, Any]]:
    """The bundled examples with their hand-drawn boxes, at ``resolution``, with ``methods`` (see
    :func:`run_evaluation`)."""
    return run_evaluation(None, None, True, model, resolution, methods, progress)


def checked_methods(methods: Any) -> tuple[str, ...]:
    """The ticked methods as sent over HTTP: a list of distinct keys of :data:`~cam_core.family.METHOD_LABELS`
    (``None``: none), in the menu's order.

    Raises:
        ParameterError: anything else (not a list, an unknown or non-text item, a duplicate, more than four).
    """
    return choices(methods, "methods", METHOD_LABELS)


def wire(events: Events, tab: EvaluateTab) -> None:
    """The uploaded set or the bundled examples, evaluated with the current model at the current resolution."""
    model, resolution = events.named["model"], events.named["resolution"]
    # raw values (preprocess=False): every input is checked here, as over raw HTTP (Gradio's own checks would
    # answer a hostile checkbox value with a bare TypeError before the handler's message)
    tab.run.click(
        run_evaluation,
        [tab.images, tab.boxes_csv, gr.State(False), model, resolution, tab.methods],
        tab.outputs,
        api_visibility="private",
        preprocess=False,
        **events.slow,
    )
    tab.run_examples.click(
        run_examples,
        [model, resolution, tab.methods],
        tab.outputs,
        api_visibility="private",
        preprocess=False,
        **events.slow,
    )
