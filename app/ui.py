"""Layout and wiring of the Gradio app: :func:`build_demo` returns the ``gr.Blocks``."""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr
import torch

import cam_core
from app import analysis_views as av
from app import evaluation as ev
from app import handlers as cb
from app import views
from app.errors import with_notice
from app.files import render_dir
from app.hosting import ExplainerBlocks
from app.inputs import CRF, DRAG, VIEW
from app.models import model_choices, tap_partner
from app.state import get_model
from app.wiring import components, event
from cam_core import crf

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
ANALYSIS_CONCURRENCY = int(os.environ.get("CAM_ANALYSIS_CONCURRENCY", "2"))
"""Events that run a forward pass, an evaluation or a CRF at once (one queue group); see bench/bench_load.py."""
TORCH_THREADS = int(os.environ.get("CAM_TORCH_THREADS", "0"))
"""torch intra-op threads (0: torch's default, one per core); see bench/bench_load.py."""
EXAMPLE_FILES = ["cat.jpg", "coffee.jpg", "rocket.jpg", "coins.jpg", "astronaut.jpg"]
DRAW_BOX_JS = (Path(__file__).with_name("draw_box.js")).read_text(encoding="utf-8")  # drag a ground-truth box
CSS = """
.caption {font-size: 0.95rem}
#notice p {color: var(--color-red-600, #dc2626); font-weight: 600}
"""

INTRO = """
# CAM Explainer: why CAM finds only part of an object, and three fixes
Upload a photo (or pick an example), then move the sliders. **Left:** plain Class Activation Mapping
with the usual *max as standard* box (blue). **Right:** the fixes of Bae et al., ECCV 2020
(*Rethinking CAM for WSOL*): **NWC** drops negative class weights, **PaS** thresholds at a percentile
instead of the peak, **TAP** re-trains the pooling (only with a TAP-trained model). Green box.
"""

HOW_IT_WORKS = r"""
**Plain CAM** (Zhou et al. 2016). Final feature maps $F_k$ $(C \times h \times w)$, classifier weights $W$,
bias $b$: $M_c(i,j) = \sum_k W_{c,k} F_k(i,j)$. With global average pooling (GAP) and one linear layer,
$\mathrm{mean}_{ij} M_c + b_c$ **is** the logit of class $c$; every model here is checked for this
identity when it loads, and heads that break it (MobileNetV3, ConvNeXt, VGG, max pooling) are refused.

**Box.** The map is upsampled (bicubic) to the photo, min-max normalised to $[0, 1]$, thresholded, and the
largest contour is boxed (wsolevaluation's conventions).

**MaS** (max as standard, the usual rule): foreground $= M > \theta \cdot \max M$ ($\theta = 0.2$). One peak
value sets the threshold, so a very peaky map gives a small box.

**PaS** (percentile as standard): foreground $= M > \theta \cdot P_p(M)$, the $p$-th percentile of all pixels
(paper code $p = 90,\ \theta = 0.35$; LID challenge $p = 98$). The histogram tab shows both thresholds.

**NWC** (negative weight clamping): $M_c = \sum_k \max(W_{c,k}, 0) F_k$. Channels with negative weights often
fire *on* the object too and subtract from it; compare $M^+$ and $M^-$ on one colour scale in their tab.
Classification still uses the unclamped weights.

**TAP** (thresholded average pooling), a training-time change: per channel keep pixels with
$F_k > \tau \max F_k$ and average only those. Under GAP, a channel active on a small area has a small pooled
value, so training gives it a large weight, and at the CAM peak it dominates. TAP needs a model **trained**
with it; the "Why TAP" tab shows the per-channel statistics behind this argument for the current model.

**Honesty notes.** CAM is exact only for GAP + linear heads. On an off-the-shelf ImageNet model NWC and PaS
change little (measured on 497 ImageNet photos: GT-known Loc 60.4 → 62.0); the paper's large gains come
with TAP-trained, WSOL-fine-tuned backbones. A heatmap shows what the classifier's evidence correlates
with, not a causal proof.
"""


def _controls() -> dict[str, gr.components.Component]:
    with gr.Row(equal_height=True):
        preset = gr.Radio([*cam_core.PRESETS, "custom"], value="paper code", label="Preset", scale=2)
        has_tap = tap_partner(cam_core.DEFAULT_MODEL) is not None
        tap_info = "uses the shipped TAP-trained head" if has_tap else "needs a TAP-trained model"
        tap = gr.Checkbox(False, label="TAP", interactive=has_tap, scale=1, info=tap_info)
        nwc = gr.Checkbox(True, label="NWC", info="clamp negative weights", scale=1)
        pas = gr.Checkbox(True, label="PaS", info="percentile threshold", scale=1)
    with gr.Row():
        theta_mas = gr.Slider(0.0, 1.0, 0.2, step=0.01, label="θ for MaS: threshold = θ · max")
        theta_pas = gr.Slider(0.0, 1.0, 0.35, step=0.01, label="θ for PaS: threshold = θ · P_p")
    with gr.Row():
        percentile = gr.Slider(50.0, 100.0, 90.0, step=1.0, label="percentile p for PaS")
        tau = gr.Slider(0.0, 0.5, 0.1, step=0.01, label="τ for TAP (statistics in 'Why TAP')")
    return {"preset": preset, "theta_mas": theta_mas, "theta_pas": theta_pas, "percentile": percentile,
            "tau": tau, "tap": tap, "nwc": nwc, "pas": pas}  # fmt: skip


def build_demo(expose_ui_events: bool = False) -> gr.Blocks:
    """Build the whole app (no server is started).

    Args:
        expose_ui_events: make the UI-only events callable by gradio_client (hidden from the API page)
            and add ``/noop`` events (queued and unqueued). For benchmarks and tests only; the app keeps them private.
    """
    ui_visibility = "undocumented" if expose_ui_events else "private"
    gr.set_static_paths([render_dir()])  # the app's own pictures, served without a copy into Gradio's cache
    if TORCH_THREADS > 0:
        torch.set_num_threads(TORCH_THREADS)
    get_model(cam_core.DEFAULT_MODEL)  # loaded before the first request, so no user waits on it
    with ExplainerBlocks(title="CAM Explainer") as demo:
        gr.Markdown(INTRO)
        session = gr.State(None)
        tab = gr.State("Plain vs improved")  # the tab on screen: views nobody sees are not redrawn
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                image_in = gr.Image(
                    label="Photo", sources=["upload", "clipboard", "webcam"], type="filepath", height=240
                )
                gr.Examples(
                    [[str(EXAMPLES / name)] for name in EXAMPLE_FILES],
                    inputs=[image_in],
                    label="Examples: part-only CAM, large, small, several objects, no class fits",
                )
                model_dd = gr.Dropdown(model_choices(), value=cam_core.DEFAULT_MODEL, label="Model")
                class_pick = gr.Radio([], label="Class: the model's top-5 (probability)", elem_id="class-pick")
                # all 1000 classes: fixed choices, never an event output (Gradio copies every output's props
                # on each status update, so a 1000-choice output would slow every slider move several-fold)
                class_search = gr.Dropdown(
                    views.search_choices(),
                    value=None,
                    label="Any other ImageNet class (type to search)",
                    filterable=True,
                    elem_id="class-search",
                )
                status = gr.Markdown("Upload a photo or pick an example.", elem_id="status")
                gt_box = gr.Textbox(
                    label="Ground-truth box (optional): drag on a photo, or type and press Enter",
                    placeholder="x0, y0, x1, y1 in photo pixels",
                    elem_id="gt-box",
                )
                gt_clear = gr.Button("Clear the ground-truth box", size="sm", variant="secondary")
            with gr.Column(scale=3):
                with gr.Tabs() as tabs:
                    with gr.Tab("Plain vs improved"):
                        with gr.Row():
                            plain_img = gr.HTML(elem_id="plain-panel", elem_classes="cam-panel", js_on_load=DRAW_BOX_JS)
                            ours_img = gr.HTML(elem_id="ours-panel", elem_classes="cam-panel", js_on_load=DRAW_BOX_JS)
                        caption = gr.Markdown(elem_classes="caption", elem_id="caption")
                        with gr.Row():
                            hist_img = gr.HTML(elem_id="histogram", elem_classes="cam-panel")
                            masks_img = gr.HTML(elem_id="masks", elem_classes="cam-panel")
                    with gr.Tab(cb.SWIPE_TAB) as swipe_tab:
                        swipe = gr.ImageSlider(
                            label="Swipe: plain CAM | improved", format="png", interactive=False, elem_id="swipe"
                        )
                    with gr.Tab("M+ / M−"):
                        scale = gr.Radio(["shared", "per map"], value="shared", label="Colour scale")
                        with gr.Row():
                            pos_img = gr.Image(
                                label="M+ = Σ max(W, 0) · F (what NWC keeps)", format="png", interactive=False
                            )
                            neg_img = gr.Image(
                                label="M− = Σ max(−W, 0) · F (what NWC drops)", format="png", interactive=False
                            )
                        colourbar = gr.Image(label="Colour scale", format="png", interactive=False, height=110)
                        weights_caption = gr.Markdown(elem_classes="caption", elem_id="caption")
                    with gr.Tab("Why TAP (P1)"):
                        channel_dd = gr.Dropdown([], label="Channel (top 20 by contribution to the CAM peak)")
                        p1_plot = gr.Image(label="Per-channel statistics", format="png", interactive=False)
                        with gr.Row():
                            channel_img = gr.Image(
                                label="Selected channel's feature map", format="png", interactive=False
                            )
                            p1_caption = gr.Markdown(elem_classes="caption", elem_id="caption")
                    with gr.Tab("CRF masks"):
                        available = crf.crf_available()
                        gr.Markdown(
                            "Dense CRF (Krähenbühl & Koltun 2011), as in the seed paper team's WSSS entry: the "
                            "CAM's foreground probability against background, with Gaussian (smoothness) and "
                            "bilateral (colour) pairwise terms, pulls each mask onto the photo's edges. "
                            "About half a second per mask, so it runs on request."
                            if available else "**Dense CRF is unavailable:** `pydensecrf2` is not installed "
                            "(it builds from source and needs a C++ compiler). Everything else works."
                        )  # fmt: skip
                        with gr.Accordion("CRF parameters", open=False):
                            with gr.Row():
                                crf_gsxy = gr.Slider(1, 20, 3, step=1, label="Gaussian sxy (px)")
                                crf_gcompat = gr.Slider(0, 20, 3, step=1, label="Gaussian compat")
                                crf_iters = gr.Slider(1, 20, 10, step=1, label="iterations")
                            with gr.Row():
                                crf_bsxy = gr.Slider(5, 200, 80, step=5, label="bilateral sxy (px)")
                                crf_bsrgb = gr.Slider(1, 50, 13, step=1, label="bilateral srgb")
                                crf_bcompat = gr.Slider(0, 30, 10, step=1, label="bilateral compat")
                        crf_btn = gr.Button("Refine both masks with dense CRF", interactive=available)
                        crf_view = gr.HTML(elem_id="crf-masks")
                        crf_caption = gr.Markdown(elem_classes="caption")
                    with gr.Tab("Evaluate"):
                        gr.Markdown(
                            "The paper's ablation on real boxes, with the field's metrics (GT-known Loc, Top-1 Loc, "
                            "MaxBoxAcc, MaxBoxAccV2), same code as `python -m cam_core.evaluate`. Upload up to "
                            f"{ev.MAX_IMAGES} photos ({ev.MAX_TOTAL_MB} MB) and a CSV "
                            "`filename,class_index,x0,y0,x1,y1`"
                            " (one row per box, pixels of each file), or run the three bundled examples."
                        )  # fmt: skip
                        with gr.Row():
                            eval_images = gr.File(label="Photos", file_count="multiple", file_types=["image"])
                            eval_csv = gr.File(label="Boxes CSV", file_types=[".csv"])
                        with gr.Row():
                            eval_btn = gr.Button("Evaluate the uploaded set", variant="primary")
                            eval_examples_btn = gr.Button("Evaluate the bundled examples")
                        eval_table = gr.Markdown(elem_id="eval-table")
                        eval_curves = gr.Image(label="BoxAcc (IoU ≥ 0.5) against θ", format="png", interactive=False)
                        eval_gallery = gr.Gallery(
                            label="Where NWC+PaS wins and loses against plain CAM (blue: plain, green: NWC+PaS, "
                            "gold: ground truth)", columns=4,
                        )  # fmt: skip
                        eval_json = gr.JSON(label="Evaluation JSON (same schema as the CLI)")
                    with gr.Tab("JSON & export"):
                        result_json = gr.JSON(label="Explanation (boxes in original-image pixels)")
                        download = gr.DownloadButton("Download JSON + PNGs (.zip)")
                notice = gr.Markdown(elem_id="notice")  # errors of the instant (unqueued) events
                ctl = _controls()
                with gr.Accordion("How it works", open=False):
                    gr.Markdown(HOW_IT_WORKS, latex_delimiters=[{"left": "$", "right": "$", "display": False}])
        explain_btn = gr.Button(visible=False)
        api_class = gr.Textbox("", visible=False, label="class: index or name; empty = top-1 (API input)")
        api_plain = gr.Image(format="png", visible=False, label="plain CAM overlay (API output)")
        api_ours = gr.Image(format="png", visible=False, label="improved CAM overlay (API output)")

        # ------------------------------------------------------------ wiring
        named = {"session": session, "class_choice": class_pick, "gt_text": gt_box, **ctl}
        loc_inputs = components(named, VIEW)
        loc_outputs = [plain_img, ours_img, hist_img, masks_img, caption, result_json]
        # forward passes, evaluation and CRF share one concurrency group sized by measurement (bench_load --sweep)
        heavy = {"concurrency_id": "heavy", "concurrency_limit": ANALYSIS_CONCURRENCY}
        quiet = {"show_progress": "hidden", "api_visibility": ui_visibility, "trigger_mode": "always_last"}
        # slider-speed events (a few ms of work, no network) skip the queue: one HTTP request instead of
        # join + SSE status messages, each of which costs the browser a round of Gradio's state bookkeeping
        instant = {**quiet, "queue": False}
        # the slider-driven update: errors go to `notice`; the swipe pictures only when their tab is open
        render_now = with_notice(event(cb.render_linked, VIEW), len(loc_outputs) + 1)
        linked_inputs, instant_outputs = [*loc_inputs, tab], [*loc_outputs, swipe, notice]

        def render_rest(event: gr.events.Dependency) -> None:
            event.success(
                av.render_weights, [session, class_pick, scale], [pos_img, neg_img, colourbar, weights_caption], **quiet
            ).success(
                av.render_p1,
                [session, class_pick, ctl["tau"], channel_dd],
                [p1_plot, channel_img, channel_dd, p1_caption],
                **quiet,
            )

        def render_all(event: gr.events.Dependency) -> None:
            render_rest(event.success(render_now, linked_inputs, instant_outputs, **instant))

        image_in.change(None, None, gt_box, js="() => ''")  # browser-only: a new photo drops the old ground truth
        render_all(image_in.change(cb.on_image, [image_in, model_dd], [session, class_pick, status], preprocess=False,
                                   api_visibility=ui_visibility, api_name="on_image", **heavy))  # fmt: skip
        render_all(model_dd.change(cb.on_model, [model_dd, session], [session, class_pick, status, ctl["tap"]],
                                   api_visibility="private", **heavy))  # fmt: skip
        render_rest(class_pick.input(render_now, linked_inputs, instant_outputs, **instant))
        searched = class_search.input(cb.pick_class, [class_search, session], [class_pick], api_visibility="private")
        render_all(searched)
        searched.then(None, None, [class_search], js="() => null")  # browser-only: the box empties for the next search
        for name in ("theta_mas", "theta_pas", "percentile", "tap", "nwc", "pas"):
            ctl[name].change(render_now, linked_inputs, instant_outputs, api_name=f"update_{name}", **instant)
        for name in ("theta_mas", "theta_pas", "percentile", "tau"):  # a hand-moved slider leaves the preset
            ctl[name].input(None, None, ctl["preset"], js="() => 'custom'")  # browser-only, no round trip
        gt_box.submit(render_now, linked_inputs, instant_outputs, **instant)
        draw_now = with_notice(event(cb.draw_gt, DRAG), 1 + len(loc_outputs))
        for panel in (plain_img, ours_img):  # a box dragged on either photo (see draw_box.js)
            panel.select(draw_now, components(named, DRAG), [gt_box, *loc_outputs, notice], **instant)
        gt_clear.click(lambda: "", None, gt_box, queue=False, api_visibility="private").success(
            render_now, linked_inputs, instant_outputs, **instant
        )
        tabs.select(cb.selected_tab, None, tab, queue=False, api_visibility="private")
        swipe_tab.select(event(cb.swipe_pair, VIEW), loc_inputs, [swipe], api_visibility="private")
        sliders = [ctl["theta_mas"], ctl["theta_pas"], ctl["percentile"], ctl["tau"]]
        ctl["preset"].change(cb.apply_preset, [ctl["preset"]], sliders,
                             api_visibility="private")  # fmt: skip
        scale.change(
            av.render_weights, [session, class_pick, scale], [pos_img, neg_img, colourbar, weights_caption], **quiet
        )
        p1_inputs = [session, class_pick, ctl["tau"], channel_dd]
        ctl["tau"].change(av.render_p1, p1_inputs, [p1_plot, channel_img, channel_dd, p1_caption], **quiet)
        channel_dd.input(av.render_p1, p1_inputs, [p1_plot, channel_img, channel_dd, p1_caption], **quiet)
        download.click(event(cb.export_zip, VIEW), loc_inputs, [download], api_visibility="private")
        crf_named = {
            "gaussian_sxy": crf_gsxy,
            "gaussian_compat": crf_gcompat,
            "bilateral_sxy": crf_bsxy,
            "bilateral_srgb": crf_bsrgb,
            "bilateral_compat": crf_bcompat,
            "iterations": crf_iters,
        }
        crf_inputs = components({**named, **crf_named}, VIEW, CRF)
        eval_outputs = [eval_table, eval_curves, eval_gallery, eval_json]
        eval_btn.click(ev.run_evaluation, [eval_images, eval_csv, gr.State(False), model_dd], eval_outputs,
                       api_visibility="private", **heavy)  # fmt: skip
        eval_examples_btn.click(ev.run_examples, [model_dd], eval_outputs, api_visibility="private", **heavy)
        crf_btn.click(
            event(av.render_crf, VIEW, CRF), crf_inputs, [crf_view, crf_caption], api_visibility="private", **heavy
        )
        explain_btn.click(cb.explain, [image_in, model_dd, api_class, *sliders[:3],
                                       ctl["tap"], ctl["nwc"], ctl["pas"]],
                          [result_json, api_plain, api_ours], api_name="explain", preprocess=False,
                          **heavy)  # fmt: skip
        if expose_ui_events:
            noop = gr.Button(visible=False)
            noop.click(lambda: None, None, None, api_name="noop", api_visibility=ui_visibility)
            noop.click(lambda: None, None, None, api_name="noop_direct", api_visibility=ui_visibility, queue=False)
    demo.queue(default_concurrency_limit=4, max_size=64)
    demo.css = CSS
    return demo
