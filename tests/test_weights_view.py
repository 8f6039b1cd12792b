"""The M+ / M- pictures (app/weights_view.py): what a TAP-pooled model's caption says."""

from __future__ import annotations

from dataclasses import replace

import cam_core
from app import weights_view
from app.state import ANALYSES, Session


def test_a_tap_pooled_model_says_its_logit_is_not_the_mean(cat_session: Session) -> None:
    analysis = replace(
        ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash), pooling="tap", tap_tau=0.1
    )
    caption = weights_view.weights_views(cat_session.display, analysis, 285, True).caption
    assert "pools with TAP (τ = 0.1)" in caption and "is not mean(M) + b" in caption
