"""The app's caches (app/state.py): bounded, keyed by photo, model and resolution."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

import cam_core
from app.events import event
from app.inputs import CRF, DEFAULT_RESOLUTION, VIEW
from app.models import Resolution
from app.state import ANALYSES, AnalysisCache, image_hash
from app.tabs import compare
from app.tabs import crf as crf_tab

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


CAT = str(EXAMPLES / "cat.jpg")


CONTROLS = (0.2, 0.35, 90, False, True, True)  # theta_mas, theta_pas, percentile, tap, nwc, pas


RAW_RENDER = event(compare.render_localization, VIEW)


RAW_CRF = event(crf_tab.render_crf, VIEW, CRF)


def panel_picture(html: str) -> Image.Image:
    """The (static, served) picture behind a panel's SVG overlay."""
    match = re.search(r'<img src="gradio_api/file=([^"]+)"', html)
    assert match, html[:200]
    return Image.open(match.group(1))


def svg_boxes(html: str) -> list[list[int]]:
    """The boxes drawn over a panel, in display pixels."""
    return [[int(v) for v in box.split(",")] for box in re.findall(r'data-box="([0-9,]+)"', html)]


def test_analysis_cache_is_bounded() -> None:
    cache = AnalysisCache(max_bytes=3 * 300_000)
    rng = np.random.default_rng(0)
    template = ANALYSES.get(cam_core.DEFAULT_MODEL, DEFAULT_RESOLUTION, image_hash(cam_core.load_image(CAT)))
    assert template is not None
    for i in range(20):
        image = rng.integers(0, 256, size=(200, 200, 3), dtype=np.uint8)  # 120 kB + 250 kB features
        features = np.zeros((1280, 7, 7), np.float32)  # a 224 px analysis' map (the default's 28 x 28 is 4 MB)
        small = cam_core.cam.Analysis(**{**template.__dict__, "image": image, "feature_maps": features})
        cache.put("m", DEFAULT_RESOLUTION, str(i), small)
        assert cache.nbytes <= cache.max_bytes
    assert len(cache) == 2 and cache.get("m", DEFAULT_RESOLUTION, "19") is not None
    assert cache.get("m", DEFAULT_RESOLUTION, "0") is None
    assert cache.get("m", Resolution(224, 32), "19") is None  # another resolution is another entry
