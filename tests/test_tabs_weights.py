"""M+ / M- (app/tabs/weights.py): the signed map and its decomposition, on the cat."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

import cam_core
from app import (
    render,
    weights_view,
)
from app.state import ANALYSES, Session
from app.tabs import weights


def test_weights_view_counts_negative_weights(cat_session: Session) -> None:
    _, _, pos, neg, bar_path, caption = weights.render_weights(cat_session, "285", "shared")
    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash)
    assert f"**{int((analysis.class_weights[285] < 0).sum())}** of 1280" in caption
    assert "not comparable" in weights.render_weights(cat_session, "285", "per map")[5]
    bar = np.asarray(Image.open(bar_path).convert("RGB")).reshape(-1, 3).astype(int)
    for entry in (render.SEQUENTIAL[40], render.SEQUENTIAL[128], render.SEQUENTIAL[250]):  # issue #14 item 10
        assert (np.abs(bar - entry).sum(axis=1) <= 6).sum() > 50, entry  # the colours themselves are shown
    assert Image.open(pos).size == Image.open(neg).size


def test_signed_view_prints_the_logit_and_one_scale_per_photo(cat_session: Session) -> None:
    analysis = ANALYSES.get(cam_core.DEFAULT_MODEL, cat_session.resolution, cat_session.image_hash)
    signed, _, pos, neg, _, caption = weights.render_weights(cat_session, "285", "shared")
    numbers = re.search(
        r"grid = (-?[\d.]+), plus the bias b = ([+-][\d.]+), gives (-?[\d.]+); the model's logit for "
        r"Egyptian cat is (-?\d+\.\d+)",
        caption,
    )
    assert numbers, caption
    mean, bias, total, logit = (float(v) for v in numbers.groups())
    by_hand = sum(analysis.class_weights[285, k] * analysis.feature_maps[k].astype(np.float64)
                  for k in range(analysis.feature_maps.shape[0])).mean()  # fmt: skip
    assert mean == pytest.approx(by_hand, abs=1e-3) and bias == pytest.approx(float(analysis.bias[285]), abs=1e-3)
    assert logit == pytest.approx(float(analysis.logits[285]), abs=1e-3)  # the model's own forward pass
    assert total == pytest.approx(logit, abs=2e-3) and abs(mean + bias - total) <= 1.5e-3
    scale = float(re.search(r"Scale ±([\d.]+)", caption).group(1))  # type: ignore[union-attr]
    top5 = [i for i, _, _ in analysis.top_k(5)]
    shown = cat_session.size_on_screen
    largest = max(float(np.abs(cam_core.upsample(analysis.cam(c), shown)).max()) for c in top5)
    assert scale == pytest.approx(largest, abs=0.01)
    other = weights.render_weights(cat_session, str(top5[3]), "shared")[5]
    assert f"Scale ±{scale:.2f}" in other  # the same scale for another class of this photo
    assert Image.open(signed).size == Image.open(pos).size == Image.open(neg).size == (451, 300)


def test_signed_colour_bar_shows_the_colours_centred_at_zero(cat_session: Session) -> None:
    _, signed_bar, _, _, bar, _ = weights.render_weights(cat_session, "285", "shared")
    strip = weights_view.signed_strip()
    np.testing.assert_array_equal(strip[127], [128, 128, 128])  # value 0: the mid-grey photo, no colour
    assert strip[0][2] > strip[0][0] and strip[254][0] > strip[254][2]  # blue below 0, red above
    pixels = np.asarray(Image.open(signed_bar).convert("RGB")).reshape(-1, 3).astype(int)
    for entry in (strip[10], strip[127], strip[244]):  # issue #14 item 10: the colours themselves are shown
        assert (np.abs(pixels - entry).sum(axis=1) <= 6).sum() > 50, entry
    pixels = np.asarray(Image.open(bar).convert("RGB")).reshape(-1, 3).astype(int)
    for entry in (render.SEQUENTIAL[40], render.SEQUENTIAL[128], render.SEQUENTIAL[250]):
        assert (np.abs(pixels - entry).sum(axis=1) <= 6).sum() > 50, entry
