"""``app/inputs.py``: an event's raw inputs become one typed argument; every control reaches every view event."""

from __future__ import annotations

from dataclasses import astuple

import pytest

from app.inputs import CONTROL_FIELDS, DRAG, VIEW, Controls, Entrance
from app.label_maps import SEG
from cam_core.errors import ParameterError


def test_the_controls_parameter_stands_for_every_control() -> None:
    assert CONTROL_FIELDS == ("theta_mas", "theta_pas", "percentile", "tap", "nwc", "pas", "method")
    assert VIEW.fields == ("session", "class_choice", *CONTROL_FIELDS, "gt_text")
    assert DRAG.fields == ("session", "class_choice", *CONTROL_FIELDS)
    assert SEG.fields == ("session", *CONTROL_FIELDS, "seg_classes", "top_k", "min_probability")


def test_convert_checks_the_controls_into_one_value() -> None:
    request = VIEW.convert(None, "285", 0.6, 0.35, 90, True, False, True, "gradcam", "")
    assert request.controls == Controls(theta_mas=0.6, tap=True, nwc=False, method="gradcam")
    assert request.session is None and request.gt is None
    with pytest.raises(ParameterError, match="theta_pas"):
        VIEW.convert(None, "285", 0.6, 1.5, 90, False, False, True, "cam", "")
    for hostile in ("scorecam", "GRADCAM", None, 1, ["cam"], {"path": "/etc/passwd"}):
        with pytest.raises(ParameterError, match="`method` must be one of"):
            VIEW.convert(None, "285", 0.6, 0.35, 90, False, False, True, hostile, "")
    with pytest.raises(TypeError, match="expected 10 values"):
        VIEW.convert(None, "285", *astuple(Controls()))  # the ground-truth field left out


def test_an_entrance_without_controls_passes_its_values_through() -> None:
    def pair(a: int, b: int) -> tuple[int, int]:
        return a, b

    assert Entrance(pair).fields == ("a", "b") and Entrance(pair).convert(1, 2) == (1, 2)
