"""The app's caches (app/state.py): bounded, keyed by photo, model and resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import cam_core
from app.inputs import DEFAULT_RESOLUTION
from app.models import Resolution
from app.state import ANALYSES, AnalysisCache

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


CAT = str(EXAMPLES / "cat.jpg")


def test_analysis_cache_is_bounded(default_model: cam_core.LoadedModel) -> None:
    cache = AnalysisCache(max_bytes=3 * 300_000)
    rng = np.random.default_rng(0)
    template = cam_core.analyze(default_model, cam_core.load_image(CAT))  # its own: the test runs alone too
    for i in range(20):
        image = rng.integers(0, 256, size=(200, 200, 3), dtype=np.uint8)  # 120 kB + 250 kB features
        features = np.zeros((1280, 7, 7), np.float32)  # a 224 px analysis' map (the default's 28 x 28 is 4 MB)
        small = cam_core.cam.Analysis(**{**template.__dict__, "image": image, "feature_maps": features})
        cache.put("m", DEFAULT_RESOLUTION, str(i), small)
        assert cache.nbytes <= cache.max_bytes
    assert len(cache) == 2 and cache.get("m", DEFAULT_RESOLUTION, "19") is not None
    assert cache.get("m", DEFAULT_RESOLUTION, "0") is None
    assert cache.get("m", Resolution(224, 32), "19") is None  # another resolution is another entry


def test_the_opening_example_is_pinned_and_never_evicted(monkeypatch) -> None:
    """Issue #23: every page opens on the same example; its analysis and display copy are made once at start-up and
    no flood of uploads can evict them, so a page load never costs a forward pass."""
    from app.analyses import pin_opening_example
    from app.state import DISPLAYS

    session = pin_opening_example()
    pinned = ANALYSES.get(cam_core.DEFAULT_MODEL, DEFAULT_RESOLUTION, session.image_hash)
    assert pinned is not None and pinned.input_size == (DEFAULT_RESOLUTION.input_size,) * 2
    monkeypatch.setattr(ANALYSES, "max_bytes", 0)
    monkeypatch.setattr(DISPLAYS, "max_bytes", 0)
    rng = np.random.default_rng(1)
    for i in range(3):  # every other entry goes at once: the budget is 0
        other = cam_core.cam.Analysis(**{**pinned.__dict__, "image": rng.integers(0, 256, (8, 8, 3), np.uint8)})
        ANALYSES.put(cam_core.DEFAULT_MODEL, DEFAULT_RESOLUTION, f"flood-{i}", other)
        DISPLAYS.put(f"flood-{i}", rng.integers(0, 256, (8, 8, 3), np.uint8))
    assert ANALYSES.get(cam_core.DEFAULT_MODEL, DEFAULT_RESOLUTION, session.image_hash) is pinned
    assert DISPLAYS.need(session.image_hash).shape == (*session.size_on_screen, 3)
    assert pin_opening_example().image_hash == session.image_hash  # a second call re-analyses nothing new
