"""The app's long texts (Markdown, with LaTeX between ``$``) and its small stylesheet."""

from __future__ import annotations

CSS = """
.caption {font-size: 0.95rem}
#notice p {color: var(--color-red-600, #dc2626); font-weight: 600}
/* the controls stay on screen over the panels while the page scrolls (issue #14 item 14), above every block that
   scrolls under them: Gradio draws block titles on its layer 4 (40) and their buttons on layer 5 (50) */
#control-bar {position: sticky; top: 0; z-index: 60; background: var(--background-fill-primary);
  padding: 4px 0; box-shadow: 0 6px 6px -6px rgba(0, 0, 0, 0.25)}
#control-bar > * {margin: 0}
/* compact, so that stuck over a scrolled page it hides little of the panels: the presets on one line, small
   slider labels, less padding (the phone rules below undo the width-saving ones) */
#control-bar {gap: 6px !important}
#control-bar .block {padding: 6px 10px !important}
#notice:has(.md:empty) {display: none}  /* no empty line under the sliders while there is nothing to say */
#control-bar .form {gap: 0 !important}
#preset .wrap {gap: 4px !important}
#preset label {padding: 3px 9px !important; font-size: 0.85rem}
#sliders .head label span {font-size: 0.8rem; line-height: 1.2}
#sliders .head input[type=number] {width: 4.2em}
#sliders .slider_input_container {margin-top: 2px}
/* Gradio's container has overflow: hidden, which makes it the (never scrolling) box a sticky child sticks in;
   clip cuts the same overflow without being a scroll container */
.gradio-container {overflow: clip !important}
/* side by side, the two panels' pictures start at one height whatever their titles' lines (issue #23): the panels
   stretch to the row's height and each title takes the spare height above its picture */
@media (min-width: 641px) {
  .row:has(> #plain-panel) {align-items: stretch}
  #plain-panel, #ours-panel {display: flex; flex-direction: column}
  #plain-panel > .html-container, #ours-panel > .html-container, #plain-panel .prose, #ours-panel .prose,
  #plain-panel .cam-figure, #ours-panel .cam-figure {display: flex; flex-direction: column; flex: 1 1 auto}
  #plain-panel .cam-figure > figcaption, #ours-panel .cam-figure > figcaption {flex: 1 0 auto}
}
@media (max-width: 640px) {  /* phones: each panel full width, stacked, instead of ~120 px side by side */
  .cam-panel {min-width: 100% !important; flex: 1 1 100% !important}
  #control-bar {position: static; box-shadow: none}  /* a sticky bar would cover half a phone's screen */
  #toggles .form {flex-wrap: wrap}  /* preset on its own line, the three toggles under it */
  #preset {min-width: 100% !important; flex: 1 1 100% !important}
  #tap, #nwc, #pas {min-width: 96px !important; flex: 1 1 28% !important}  /* whole labels: no "TAF", "NW" */
  #theta-mas, #theta-pas, #percentile, #tau {min-width: 100% !important; flex: 1 1 100% !important}
  #seg-legend {overflow-x: auto !important}  /* the legend's area columns scroll sideways instead of being cut off */
  #seg-legend table.seg-legend {font-size: 0.8rem}
  /* Evaluate's table (up to 18 rows of 6 columns) scrolls sideways, each cell on one line, instead of wrapping
     every word letter by letter */
  #eval-table table {display: block; overflow-x: auto; font-size: 0.8rem}
  #eval-table th, #eval-table td {white-space: nowrap}
}
"""

INTRO = """
# CAM Explainer: why CAM finds only part of an object, and three fixes
Upload a photo (or pick an example), then move the sliders. **Left:** plain Class Activation Mapping
with the usual *max as standard* box (blue). **Right:** the fixes of Bae et al., ECCV 2020
(*Rethinking CAM for WSOL*): **NWC** drops negative class weights, **PaS** thresholds at a percentile
instead of the peak, **TAP** re-trains the pooling (only with a TAP-trained model). Green box. The **Method**
menu puts Grad-CAM and its kin through the same rules on both panels.
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
(paper code $p = 90,\ \theta = 0.35$; LID challenge $p = 98$). The histogram under the panels shows both maps,
each with its own threshold.

**NWC** (negative weight clamping): $M_c = \sum_k \max(W_{c,k}, 0) F_k$. Channels with negative weights often
fire *on* the object too and subtract from it; compare $M^+$ and $M^-$ on one colour scale in their tab.
Classification still uses the unclamped weights.

**TAP** (thresholded average pooling), a training-time change: per channel keep pixels with
$F_k > \tau \max F_k$ and average only those. Under GAP, a channel active on a small area has a small pooled
value, so training gives it a large weight, and at the CAM peak it dominates. TAP needs a model **trained**
with it. Bae et al. trained the whole network with TAP (CUB-200-2011, ImageNet); the TAP heads shipped here
are a head-only fine-tune on 993 photos, and against their GAP controls they show no localisation gain
(120 full-resolution photos, the pair trained at 448 px / stride 16: MaxBoxAccV2 +2.2 [−2.5, +5.6] with plain
CAM, −5.8 [−8.9, −1.4] with NWC+PaS; docs/tap_training.md). The "Why TAP" tab shows both heads side by side
under one rule, and the per-channel statistics behind the argument for the current model.

**The CAM family** (the Method menu). Grad-CAM weighs channel $k$ by the mean gradient of the class score,
$w_k = \mathrm{mean}_{ij}\, \partial Y_c / \partial F_k(i,j)$, and keeps $\mathrm{ReLU}(\sum_k w_k F_k)$; XGrad-CAM
weighs the gradient by the features, LayerCAM keeps $\mathrm{ReLU}$ of it per pixel, Grad-CAM++ reweighs it
(Chattopadhay et al.). On a GAP + linear head the gradient is $W_{c,k} / (h w)$ at every cell, so Grad-CAM
$=$ XGrad-CAM $= \mathrm{ReLU}(M_c) / (h w)$ and LayerCAM $= \mathrm{ReLU}(M_c^+) / (h w)$, NWC CAM: the caption
measures the identity on your photo. Both panels then run the same upsampling, rules and boxes as CAM. On 120
full-resolution photos at 448 px / stride 16, no family method beats CAM by a settled margin (Grad-CAM − CAM
+1.7 [−0.8, +4.2] MaxBoxAccV2 points), and PaS helps Grad-CAM++ as it helps CAM (+3.6 [+0.6, +6.7];
docs/methods.md).

**Honesty notes.** CAM is exact only for GAP + linear heads. Measured on this app's default model at its
default resolution (448 px, stride 16: a 28 × 28 map), on 120 full-resolution ImageNet photos: MaxBoxAccV2
55.6 plain CAM vs 60.0 NWC+PaS (+4.4, 95 % interval [−0.3, +8.3]), GT-known Loc 51.7 vs 46.7 at the paper
code's fixed thresholds (docs/resolution.md); at 224 px / stride 32 the two rules are level (MaxBoxAccV2 48.3 vs
48.6). The paper reports large gains with backbones trained with TAP for localisation. A heatmap shows what
the classifier's evidence correlates with, not a causal proof.
"""

CRF_INTRO = (
    "Dense CRF (Krähenbühl & Koltun 2011), as in Bae et al.'s LID 2020 entry: the "
    "CAM's foreground probability against background, with Gaussian (smoothness) and "
    "bilateral (colour) pairwise terms, pulls each mask onto the photo's edges. "
    "About half a second per mask, so it runs on request."
)
CRF_UNAVAILABLE = (
    "**Dense CRF is unavailable:** `pydensecrf2` is not installed "
    "(it builds from source and needs a C++ compiler). Everything else works."
)


EVALUATE_PROTOCOL = (
    "**These IoUs are not the main tab's.** Here each photo is stretched to the network input (the Resolution "
    "menu's, e.g. 448 × 448, aspect ratio not kept, stored pixel order: EXIF rotation ignored), its ground-truth "
    "boxes are scaled into "
    "that frame and truncated, the map is thresholded there, and a photo counts its best IoU over its boxes "
    "(wsolevaluation's protocol). The main tab thresholds the map upsampled to the upright photo at display size "
    "and compares boxes in the photo's own pixels. So the same photo, box and class can give different IoUs."
)
EVALUATE_PAS = (
    "PaS rows: MaxBoxAcc and PxAP sweep the map min(1, CAM / P_p), this project's extension, not "
    "wsolevaluation's, so their thresholds never go above P_p; MaS rows sweep the min-max map exactly as "
    "wsolevaluation."
)


EVALUATE_METHODS_INFO = (
    "Plain CAM's four rows (MaS, PaS, NWC, NWC+PaS) are always scored; each ticked method adds its own rows under "
    "the same rules (no NWC rows where NWC is undefined: Grad-CAM++, LayerCAM). All four together roughly double "
    "the time an evaluation takes; the in-app budget counts them."
)


def evaluate_identities(equal: list[tuple[str, str]], none: list[str], gap: bool = True) -> str:
    """The line under the table when CAM-family rows are in it: which method equals which on a GAP + linear head
    (``equal``: ``(label, formula)`` from :data:`cam_core.family.IDENTITIES`; ``none``: labels without one), so
    that identical rows do not look like a bug; ``gap=False`` (a TAP head) says which identity is left."""
    said = "**Equal rows are expected.** "
    if equal and gap:
        said += (
            "On a GAP + linear head "
            + ", ".join(f"{label} = {formula}" for label, formula in equal)
            + " (`cam_core.family.IDENTITIES`), and min-max normalisation removes the 1 / (h w): Grad-CAM and "
            "XGrad-CAM score alike, and LayerCAM and Grad-CAM / XGrad-CAM + NWC score as plain CAM's NWC rows "
            "(NWC CAM is already ≥ 0 on ReLU features). Grad-CAM still differs from plain CAM: its ReLU comes "
            "before min-max. "
        )
    elif equal:
        said = (
            "**This head is TAP, not GAP:** Grad-CAM = ReLU(CAM) / (h w) still holds (TAP's gradient averages to "
            "W / (h w) over the map), XGrad-CAM and LayerCAM no longer equal it. "
        )
    if none:
        said += f"{', '.join(none)}: no identity with CAM (its alpha weighs each pixel by its channel's activation)."
    return said.strip()


def evaluate_intro(max_images: int, max_total_mb: int, boxed: tuple[str, ...] = (), examples: int = 0) -> str:
    """The Evaluate tab's explanation, with the in-app limits; ``boxed``: the bundled examples that have boxes (of
    ``examples`` in the sidebar)."""
    bundled = "the bundled examples"
    if boxed:
        bundled = f"the {len(boxed)} bundled examples that have hand-drawn boxes ({', '.join(boxed)}"
        bundled += f"; {examples} in the sidebar)" if examples > len(boxed) else ")"
    return (
        "The paper's ablation on real boxes, with the field's metrics (GT-known Loc, Top-1 Loc, "
        "MaxBoxAcc, MaxBoxAccV2), same code as `python -m cam_core.evaluate`. Upload up to "
        f"{max_images} photos ({max_total_mb} MB) and a CSV "
        "`filename,class_index,x0,y0,x1,y1`"
        f" (one row per box, pixels of each file), or run {bundled}.\n\n" + EVALUATE_PROTOCOL + "\n\n" + EVALUATE_PAS
    )
