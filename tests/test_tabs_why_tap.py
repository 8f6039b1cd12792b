"""Why TAP (app/tabs/why_tap.py): the P1 statistics, the channel map and the weight-ratio reading."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from app.models import tap_partner
from app.state import Session, get_analysis
from app.tabs import why_tap
from cam_core.tap import channel_stats
from tests.helpers import config_component


def test_p1_view(cat_session: Session) -> None:
    _, _, update, caption = why_tap.render_p1(cat_session, "285", 0.1, None)
    top = update["value"]
    assert top == update["choices"][0][1] and f"Channel **{top}**" in caption
    _, _, update2, _ = why_tap.render_p1(cat_session, "285", 0.1, update["choices"][3][1])
    assert update2["value"] == update["choices"][3][1]


@pytest.mark.parametrize(
    ("here", "after", "verdict", "change"),
    [
        (1.25, 1.00, "This photo supports the argument", "-20 %"),  # (1.00 - 1.25) / 1.25
        (0.80, 0.74, "This photo supports it only in part**: TAP training lowered", "-8 %"),  # -0.06 / 0.80 = -7.5
        (1.50, 1.80, "This photo supports it only in part**: under GAP the small-area channels do carry", "+20 %"),
        (0.50, 0.60, "This photo does not support it", "+20 %"),
    ],
)
def test_tap_ratio_reading(here: float, after: float, verdict: str, change: str) -> None:
    """Item 12: the summary number says what it measures, which way supports the paper, and this photo's verdict."""
    text = why_tap.tap_ratio_reading(here, after)
    assert "above 1: small-area channels weigh more" in text
    assert "predicts above 1 under GAP" in text and "lower after TAP training" in text
    assert f"({here:.2f} → {after:.2f}, {change})" in text and f"**{verdict}" in text


def test_p1_caption_reads_its_own_ratio(cat_session) -> None:
    """Item 12: the caption's two numbers are the hand-computed ratios, and its verdict is the one they give."""
    partner = tap_partner(cat_session.model)
    if partner is None or partner == cat_session.model:
        pytest.skip("no TAP-trained partner is shipped for the default model")
    *_, caption = why_tap.render_p1(cat_session, "285", 0.1, None)
    analysis = get_analysis(cat_session, cat_session.model)
    stats = channel_stats(analysis.feature_maps, analysis.class_weights[285], 0.1)
    small = np.zeros(stats.active_fraction.shape, bool)
    small[np.argsort(stats.active_fraction, kind="stable")[: stats.active_fraction.size // 4]] = True
    by_hand = [
        float(np.abs(w[small]).mean() / np.abs(w[~small]).mean())
        for w in (analysis.class_weights[285], get_analysis(cat_session, partner).class_weights[285])
    ]
    found = re.search(r"relative to the rest: ([0-9.]+) here vs ([0-9.]+) after TAP training\. (.*)$", caption, re.S)
    assert found, caption
    assert [float(found.group(1)), float(found.group(2))] == pytest.approx(by_hand, abs=0.006)
    assert found.group(3) == why_tap.tap_ratio_reading(*by_hand)


def test_why_tap_plot_has_no_badge_or_toolbar_over_its_titles(config: dict[str, Any]) -> None:
    """Item 12: the label badge and the toolbar covered the two plot titles."""
    props = config_component(config, "p1-plot")["props"]
    assert props["show_label"] is False and not props.get("buttons")


def test_tau_sits_where_it_acts_and_the_preset_still_sets_it(config: dict[str, Any]) -> None:
    """Issue #23: τ changes only the Why TAP statistics, so its slider is in that tab, not in the control bar over
    every tab (where a move changed nothing in sight but the preset); the preset still sets it."""
    from tests.helpers import config_component

    def ancestors(node: dict[str, Any], target: int, path: tuple[int, ...] = ()) -> tuple[int, ...] | None:
        if node["id"] == target:
            return path
        for child in node.get("children", []):
            found = ancestors(child, target, (*path, node["id"]))
            if found is not None:
                return found
        return None

    tau = config_component(config, "tau")
    assert "Only these statistics use it" in tau["props"]["info"]
    above = ancestors(config["layout"], tau["id"]) or ()
    bar = config_component(config, "control-bar")["id"]
    tab = next(c["id"] for c in config["components"] if c.get("props", {}).get("id") == why_tap.ID)
    assert tab in above and bar not in above
    preset = config_component(config, "preset")["id"]
    sets = [d for d in config["dependencies"] if [t[0] for t in d["targets"]] == [preset] and tau["id"] in d["outputs"]]
    assert sets, "the preset no longer sets τ"
