"""CRF masks (app/tabs/crf.py): both rules' masks refined on request, or a clear message without pydensecrf."""

from __future__ import annotations

import gradio as gr
import pytest

import cam_core
from app.events import event
from app.inputs import CRF, VIEW, crf_params
from app.state import Session, get_analysis
from app.tabs import crf as crf_tab
from tests.helpers import view_request

CONTROLS = (0.2, 0.35, 90, False, True, True, "cam")  # theta_mas, theta_pas, percentile, tap, nwc, pas, method


RAW_CRF = event(crf_tab.render_crf, VIEW, CRF)


def test_crf_view(cat_session: Session) -> None:
    pytest.importorskip("pydensecrf.densecrf")
    steps: list[tuple[object, str]] = []
    html, caption = crf_tab.render_crf(
        view_request(cat_session, "285", gt="0, 0, 450, 299"),
        crf_params(3, 3, 80, 13, 10, 5),
        lambda done, desc, unit: steps.append((done, desc)),  # type: ignore[arg-type]  (records gr.Progress calls)
    )
    assert steps == [((0, 2), "CRF 1/2: plain CAM, MaS"), ((1, 2), "CRF 2/2: NWC+PaS")], steps
    assert html.count("data:image/png;base64") == 4 and html.count('class="box"') == 4
    assert "CRF box" in caption and "IoU with GT" in caption
    mas = cam_core.localize(get_analysis(cat_session, cat_session.model), 285, cam_core.CONFIGS["cam"]).threshold
    assert f"**plain CAM, MaS** (threshold {mas:.3f})" in caption and "For “Egyptian cat”" in caption
    with pytest.raises(gr.Error, match="iterations"):
        RAW_CRF(cat_session, "285", *CONTROLS, "", 3, 3, 80, 13, 10, 0)


def test_crf_unavailable_message(cat_session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crf_tab.crf, "crf_available", lambda: False)
    with pytest.raises(gr.Error, match="pydensecrf2"):
        crf_tab.render_crf(view_request(cat_session, "285"), crf_params(3, 3, 80, 13, 10, 5))


def test_tab_without_pydensecrf_says_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``pydensecrf`` not importable the tab builds, says why, and disables its button (issue #24)."""
    import sys

    from app import texts

    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)  # makes the import raise ImportError
    cam_core.crf_available.cache_clear()
    try:
        with gr.Blocks():
            tab = crf_tab.build()
        notes = [block for block in tab.button.parent.children if isinstance(block, gr.Markdown)]
    finally:
        cam_core.crf_available.cache_clear()
    assert notes[0].value == texts.CRF_UNAVAILABLE and "pydensecrf2" in texts.CRF_UNAVAILABLE
    assert tab.button.interactive is False
