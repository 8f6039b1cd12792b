"""The percentile histogram (app/histogram.py), drawn with PIL on the slider path."""

from __future__ import annotations

import numpy as np

from app import histogram


def test_histogram_text_is_legible_on_a_phone() -> None:
    """Item 13: the histogram's axis text stays >= 10 CSS px when the 640 px picture is shown ~300 px wide."""
    width = histogram.SIZE[0]
    assert histogram.FONT_PX * 300 / width >= 10
    base = histogram.histogram_base(np.linspace(0, 1, 10_000).reshape(100, 100), np.ones((100, 100)) * 0.5)
    assert base.picture.shape == (histogram.SIZE[1], histogram.SIZE[0], 3)
    assert 0 < base.x0_px < base.x1_px <= width and 0 < base.top_px < base.bottom_px < histogram.SIZE[1]
