"""Evaluate's time budget: the cost of a set (photos x pixels x resolution) checked before any work, and a deadline.

The cost model is ``sum over photos of (s_per_photo[resolution] + sum over ticked methods of
method_s_per_photo[resolution][method] + megapixels x decode_s_per_mp[format])``: the evaluation loop's time per
photo at each offered resolution (forward pass, both localisations, the threshold sweeps), what each ticked
CAM-family method adds to it (its head pass, forward and backward, and its rules' thresholds and sweeps), plus
decoding the photo whole, as Evaluate does (boxes are in its pixels). The constants were measured with
``python -m bench.bench_lanes --calibrate`` on this project's 2-core machine with the slow lane's one torch thread;
a set whose estimate is over :data:`EVAL_BUDGET_S` is refused before anything is decoded, with what would fit.
A run that still takes longer (a slower server, a busy one) is stopped at :data:`EVAL_DEADLINE_S`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

import cam_core
from app.models import Resolution
from app.resolutions import RESOLUTIONS

EVAL_BUDGET_S = float(os.environ.get("CAM_EVAL_BUDGET_S", "30"))
"""The longest estimated Evaluate the app starts (seconds)."""
EVAL_DEADLINE_S = 2 * EVAL_BUDGET_S
"""An Evaluate still running after this long is stopped with a message (the estimate was wrong for this server)."""
SECONDS_PER_PHOTO = {"224/32": 0.052, "336/32": 0.109, "336/16": 0.141, "448/32": 0.223, "448/16": 0.260,
                     "512/16": 0.395}  # fmt: skip
"""Evaluation loop seconds per (small) photo by Resolution value (``bench_lanes --calibrate``, one thread)."""
METHOD_S_PER_PHOTO: dict[str, dict[str, float]] = {
    "224/32": {"gradcam": 0.021, "gradcampp": 0.015, "xgradcam": 0.023, "layercam": 0.011},
    "336/32": {"gradcam": 0.036, "gradcampp": 0.018, "xgradcam": 0.035, "layercam": 0.017},
    "336/16": {"gradcam": 0.046, "gradcampp": 0.027, "xgradcam": 0.058, "layercam": 0.023},
    "448/32": {"gradcam": 0.060, "gradcampp": 0.031, "xgradcam": 0.060, "layercam": 0.031},
    "448/16": {"gradcam": 0.093, "gradcampp": 0.052, "xgradcam": 0.094, "layercam": 0.038},
    "512/16": {"gradcam": 0.099, "gradcampp": 0.052, "xgradcam": 0.105, "layercam": 0.041},
}
"""Seconds per (small) photo that each CAM-family method adds, by Resolution value and method (issue #25): its
head pass (forward and backward, twice where NWC is defined), upsampling, thresholds and sweeps of its 4 rules
(2 for Grad-CAM++ and LayerCAM). The mean of two ``bench_lanes --calibrate`` runs (``method_s_per_photo_*``, 24
photos of 500 x 375, one thread, on 2 cores shared with other work, load 3 to 4): the runs agree within 22 %. All
four methods together roughly double a photo's cost (0.7 to 1.5 times :data:`SECONDS_PER_PHOTO`)."""
DECODE_S_PER_MP = {"JPEG": 0.026}
"""Seconds to decode and stretch one megapixel, by format (``bench_lanes --calibrate``)."""
DECODE_S_PER_MP_OTHER = 0.041
"""The same for every other format (PNG measured; the slower of the two)."""


@dataclass(frozen=True)
class PhotoSize:
    """What the cost model reads from a photo's header: ``width`` x ``height`` pixels and the file ``format``."""

    width: int
    height: int
    format: str

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def photo_size(path: Path) -> PhotoSize | None:
    """The photo's size and format from its header alone (``None``: unreadable, the evaluation says why)."""
    try:
        with Image.open(path) as image:
            return PhotoSize(image.size[0], image.size[1], str(image.format or ""))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def method_s_per_photo(at: Resolution, methods: Sequence[str] = ()) -> float:
    """Seconds per photo that ``methods`` (keys of :data:`cam_core.family.METHODS`) add at ``at``."""
    return sum(METHOD_S_PER_PHOTO[at.value][method] for method in methods)


def cost_s(photos: Sequence[PhotoSize], at: Resolution, methods: Sequence[str] = ()) -> float:
    """Estimated seconds of evaluating ``photos`` at ``at`` (one of :data:`~app.resolutions.RESOLUTIONS`), with
    the CAM-family ``methods`` scored too."""
    per_photo = SECONDS_PER_PHOTO[at.value] + method_s_per_photo(at, methods)
    decode = sum(p.megapixels * DECODE_S_PER_MP.get(p.format, DECODE_S_PER_MP_OTHER) for p in photos)
    return len(photos) * per_photo + decode


def check_budget(photos: Sequence[PhotoSize], at: Resolution, methods: Sequence[str] = ()) -> float:
    """The estimate of :func:`cost_s`, or a refusal that says the budget and how to fit it.

    Raises:
        ParameterError: the estimate is over :data:`EVAL_BUDGET_S`.
    """
    estimate = cost_s(photos, at, methods)
    if estimate <= EVAL_BUDGET_S:  # read at the call: tests and deployments may change it
        return estimate
    fits = int(len(photos) * EVAL_BUDGET_S / estimate)
    lower = [c.resolution for c in RESOLUTIONS if cost_s(photos, c.resolution, methods) <= EVAL_BUDGET_S]
    ways = [f"at most {fits} of these photos"] if fits else []
    if lower:
        best = max(lower, key=lambda r: SECONDS_PER_PHOTO[r.value])
        ways.append(f"a lower resolution ({best.label}: about {cost_s(photos, best, methods):.0f} s)")
    if methods and (without := cost_s(photos, at)) <= EVAL_BUDGET_S:
        ways.append(f"no CAM-family method (about {without:.0f} s)")
    ways.append("smaller photos (decoding counts: each is read whole)")
    megapixels = sum(p.megapixels for p in photos)
    added = len(photos) * method_s_per_photo(at, methods)
    seconds = f"{added:.0f}" if added >= 10 else f"{added:.1f}"
    ticked = f", {len(methods)} CAM-family method{'s' * (len(methods) > 1)}: +{seconds} s" if methods else ""
    raise cam_core.ParameterError(
        f"This evaluation would take about {estimate:.0f} s here ({len(photos)} photos, {megapixels:.0f} MP in all, "
        f"at {at.label}{ticked}); the in-app budget is {EVAL_BUDGET_S:.0f} s. To fit it: "
        + ", or ".join(ways)
        + ". The command line (`python -m cam_core.evaluate`) has no budget."
    )


def with_deadline(progress: Callable[[int, int], None], deadline_s: float | None = None) -> Callable[[int, int], None]:
    """``progress`` that first stops the evaluation (``ParameterError``) once ``deadline_s`` (default
    :data:`EVAL_DEADLINE_S`) have passed and photos remain."""
    start, deadline_s = time.monotonic(), EVAL_DEADLINE_S if deadline_s is None else deadline_s

    def checked(done: int, total: int) -> None:
        elapsed = time.monotonic() - start
        if elapsed > deadline_s and done < total:
            raise cam_core.ParameterError(
                f"Evaluate stopped after {elapsed:.0f} s ({done} of {total} photos): over the in-app limit of "
                f"{deadline_s:.0f} s on this server. Evaluate fewer or smaller photos, or use the command line."
            )
        progress(done, total)

    return checked
