"""A deep link's query (app/link/query.py): read with the app's input checks; bad values become a notice."""

from __future__ import annotations

from typing import Any

import pytest

import cam_core
from app import analyses
from app.inputs import EXAMPLES
from app.link import deeplink
from app.link.query import LINK_KEYS, parse_query
from app.page import TAB_IDS
from app.tabs import swipe


def pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


@pytest.fixture(scope="module")
def cat() -> Any:
    return analyses.on_image({"path": str(EXAMPLES / "cat.jpg")}, cam_core.DEFAULT_MODEL)[0]


def test_good_keys_are_read_with_their_types() -> None:
    state = parse_query(pairs(
        "example=cat.jpg&model=tf_efficientnet_lite0&class=281&theta_mas=0.6&theta_pas=0.4&percentile=95"
        "&tap=FALSE&nwc=false&pas=true&method=xgradcam&tab=swipe"
    ), TAB_IDS)  # fmt: skip
    assert state.notices == ()
    assert state.values == {"example": "cat.jpg", "model": "tf_efficientnet_lite0", "class": 281, "theta_mas": 0.6,
                            "theta_pas": 0.4, "percentile": 95.0, "tap": False, "nwc": False, "pas": True,
                            "method": "xgradcam", "tab": swipe.ID}  # fmt: skip
    assert parse_query(pairs("class=tabby")).values == {"class": "tabby"}  # a name, resolved after the photo


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("theta_mas=abc", "`theta_mas=abc` ignored: `theta_mas` must be a number in [0, 1], got 'abc'"),
        ("theta_mas=1.5", "`theta_mas` must be a number in [0, 1], got 1.5"),
        ("theta_pas=nan", "`theta_pas` must be a number in [0, 1], got nan"),
        ("theta_pas=1e999", "`theta_pas` must be a number in [0, 1], got inf"),
        ("percentile=30", "`percentile` must be a number in [50, 100]"),  # the slider's range, not only (0, 100]
        ("percentile=" + "9" * 40, "`percentile` must be a number in [50, 100]"),
        ("tap=yes", "`tap` must be true or false, got 'yes'"),
        ("nwc=1", "`nwc` must be true or false, got '1'"),
        ("method=scorecam", "`method` must be one of ['cam', 'gradcam', 'gradcampp', 'xgradcam', 'layercam']"),
        ("method=GradCAM", "`method` must be one of"),
        ("method=../../etc/passwd", "`method` must be one of"),
        ("model=../../etc/passwd", "`model` must be one of"),
        ("model=resnet50.a1_in1k%2F..", "`model` must be one of"),
        ("example=../../etc/passwd", "`example` must be one of ['cat.jpg'"),
        ("example=notes.png", "`example` must be one of"),
        ("class=", "`class` is empty"),
        ("tab=api", "`tab` must be one of ['compare'"),
        ("theta_mas=0.5%00", "`theta_mas` must be a text of at most 100 characters"),
        ("model=" + "x" * 10**5, "`model` must be a text of at most 100 characters"),
    ],
)
def test_each_bad_value_is_ignored_with_a_notice(query: str, message: str) -> None:
    state = parse_query(pairs(query), TAB_IDS)
    assert state.values == {}
    (notice,) = state.notices
    assert message in notice and len(notice) < 400, notice


def test_unknown_repeated_and_too_many_keys() -> None:
    state = parse_query(pairs("theta=0.6&zzz=1&theta_mas=0.3&theta_mas=0.9&view=api&__theme=dark"))
    assert state.values == {"theta_mas": 0.3}  # the first of a repeated key; Gradio's own keys pass silently
    assert state.notices == (
        "`theta_mas` was given twice: the first value is used",
        f"unknown keys `theta`, `zzz` ignored (known: {', '.join(LINK_KEYS)})",
    )
    many = parse_query([("nwc", "false")] + [(f"k{i}", "1") for i in range(100)])
    assert many.values == {"nwc": False} and "only the first 40 query parameters were read" in many.notices
    hostile = parse_query([("nwc\x00", "true"), (5, "x"), ("pas", None), ("tab", "<script>alert(1)</script>")])
    assert hostile.values == {} and "\x00" not in " ".join(hostile.notices)
    text = deeplink.notice_text(hostile.notices)
    assert text.startswith("⚠️ **Link:** `tab=<script>alert(1)</script>` ignored: `tab` must be one of")
    assert "; unknown key `nwc\\x00` ignored" in text and text.endswith(".")
