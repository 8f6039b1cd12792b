"""The app's caches (app/state.py): bounded, keyed by photo, model and resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import cam_core
from app.inputs import DEFAULT_RESOLUTION
from app.models import Resolution
from app.state import ANALYSES, AnalysisCache, image_hash

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


CAT = str(EXAMPLES / "cat.jpg")


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
