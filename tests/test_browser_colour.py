"""Colour map and opacity act in the browser alone; labels apart; the signed map's tab (issue #14 items 2, 3, 15)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cam_core
from app import analyses, html_views, inputs, render
from app.explanation import explain_request
from app.inputs import Controls
from tests.helpers import CAT, shots, show_cat

pytestmark = pytest.mark.browser

STACK = "#ours-panel .cam-stack"
LABELS_APART = """() => {
  const boxes = (sel) => [...document.querySelectorAll(sel)].map((e) => e.getBoundingClientRect());
  const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const labels = boxes('#plain-panel g.box-label rect');
  const stack = document.querySelector('#plain-panel .cam-stack').getBoundingClientRect();
  const inside = labels.every((r) => r.left >= stack.left - 1 && r.right <= stack.right + 1
                                   && r.top >= stack.top - 1 && r.bottom <= stack.bottom + 1);
  const edges = boxes('#plain-panel rect.box').flatMap((b) => [
    {left: b.left - 2, right: b.right + 2, top: b.top - 2, bottom: b.top + 2},
    {left: b.left - 2, right: b.right + 2, top: b.bottom - 2, bottom: b.bottom + 2},
    {left: b.left - 2, right: b.left + 2, top: b.top - 2, bottom: b.bottom + 2},
    {left: b.right - 2, right: b.right + 2, top: b.top - 2, bottom: b.bottom + 2}]);
  return {count: labels.length, inside, apart: !meet(labels[0], labels[1]),
          uncut: labels.every((l) => edges.every((e) => !meet(l, e)))};
}"""


def _centre(page) -> np.ndarray:
    """The colour on screen at the middle of the improved panel's picture."""
    shot = np.asarray(Image.open(io.BytesIO(page.locator(STACK).first.screenshot())).convert("RGB"))
    height, width = shot.shape[:2]
    return shot[height // 2 - 2 : height // 2 + 3, width // 2 - 2 : width // 2 + 3].reshape(-1, 3).mean(axis=0)


def _layer(page, selector: str) -> np.ndarray:
    """A served picture of the improved panel, read from the server's file (the app runs in this process)."""
    src = page.locator(f"{STACK} {selector}").first.get_attribute("src") or ""
    return np.asarray(Image.open(src.removeprefix("gradio_api/file=")))


def test_colour_map_and_opacity_change_pixels_without_a_request(page, tmp_path: Path) -> None:
    page.set_viewport_size({"width": 1440, "height": 1000})
    show_cat(page)  # the page opens on it (issue #23)
    page.wait_for_function("document.querySelector('#histogram line.threshold') !== null")
    field = page.locator("#gt-box textarea, #gt-box input").first
    field.fill("60, 40, 300, 280")
    field.press("Enter")
    page.wait_for_function("document.querySelectorAll('#plain-panel g.box-label').length === 2")
    page.locator("#colour-controls").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots(tmp_path) / "compare_inferno.png"))
    placed = page.evaluate(LABELS_APART)
    assert placed == {"count": 2, "inside": True, "apart": True, "uncut": True}  # issue #14 item 15, on screen

    grey, photo = _layer(page, "img.cam-heat"), _layer(page, "img:not(.cam-heat)")
    level = int(grey[grey.shape[0] // 2, grey.shape[1] // 2])
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    default = _centre(page)
    expected = 0.5 * photo[photo.shape[0] // 2, photo.shape[1] // 2] + 0.5 * render.SEQUENTIAL[level]
    assert np.abs(default - expected).max() < 16, (default, expected)  # inferno at 0.5 over the photo

    page.locator("select.cam-colour-map").select_option("jet")
    page.locator("input.cam-opacity").fill("1")
    page.wait_for_timeout(300)
    jet = _centre(page)
    assert np.abs(jet - render.JET[level]).max() < 16, (jet, render.JET[level])  # the map alone, through jet
    page.locator("input.cam-opacity").fill("0")
    page.wait_for_timeout(300)
    bare = _centre(page)
    assert np.abs(bare - photo[photo.shape[0] // 2, photo.shape[1] // 2]).max() < 16  # the photo alone
    assert [url for url in requests if "heartbeat" not in url] == []  # all of it in the browser

    page.locator("input.cam-opacity").fill("1")
    caption = page.locator("#caption").first.inner_text()
    number = page.get_by_label("number input for θ for MaS: threshold = θ · max")
    number.fill("0.5")
    number.press("Enter")  # the panels' HTML is replaced: the choice stays
    page.wait_for_function("([old]) => document.querySelector('#caption').innerText !== old", arg=[caption])
    page.wait_for_timeout(300)
    assert np.abs(_centre(page) - render.JET[level]).max() < 16
    assert page.evaluate("document.documentElement.dataset.camColourMap") == "jet"
    page.locator("input.cam-opacity").fill("0.5")
    page.locator("#colour-controls").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots(tmp_path) / "compare_jet.png"))


MASK_FILTERS = """async ([looks, levels]) => {
  const draw = (source, filter) => {
    const canvas = document.createElement('canvas');
    canvas.width = source.width; canvas.height = source.height;
    const context = canvas.getContext('2d');
    context.filter = filter; context.drawImage(source, 0, 0);
    return context.getImageData(0, 0, canvas.width, canvas.height).data;
  };
  const strip = document.createElement('canvas'); strip.width = levels.length; strip.height = 1;
  const pixels = strip.getContext('2d').createImageData(levels.length, 1);
  levels.forEach((v, k) => pixels.data.set([v, v, v, 255], 4 * k));
  strip.getContext('2d').putImageData(pixels, 0, 0);
  const drawn = Object.fromEntries(Object.keys(looks).map((id) => [id, Array.from(draw(strip, `url(#${id})`))]));
  const holder = document.querySelector('#masks .cam-masks > div');
  const url = holder.style.getPropertyValue('--cam-codes').match(/url\\(['"]?(.*?)['"]?\\)$/)[1];
  const picture = new Image(); picture.src = url; await picture.decode();
  const counts = {};
  const grey = draw(picture, 'none');
  for (let i = 0; i < grey.length; i += 4) counts[grey[i]] = (counts[grey[i]] || 0) + 1;
  const layers = [...document.querySelectorAll('#masks .mask')].map((e) => getComputedStyle(e).filter);
  return {drawn, counts, size: [picture.naturalHeight, picture.naturalWidth], layers};
}"""


def test_the_mask_cells_draw_the_servers_masks_through_the_page_filters(page) -> None:
    """One inline picture of both masks (codes 2 · plain + ours) drawn three ways: each filter gives each
    code the RGBA of ``html_views.MASK_LOOKS``, and the picture decodes to the server's codes."""
    show_cat(page)  # the page opens on it (issue #23)
    page.wait_for_function("document.querySelector('#masks .cam-masks') !== null")
    found = page.evaluate(MASK_FILTERS, [html_views.MASK_LOOKS, list(html_views.CODE_LEVELS)])
    for name, looks in html_views.MASK_LOOKS.items():
        drawn = np.array(found["drawn"][name]).reshape(4, 4)
        expected = np.array(looks)
        assert np.abs(drawn[:, 3] - expected[:, 3]).max() <= 1, (name, drawn)  # alpha
        visible = expected[:, 3] > 0  # colour where it shows (a fully transparent pixel has none)
        assert np.abs(drawn[visible, :3] - expected[visible, :3]).max() <= 3, (name, drawn)
    assert found["layers"] == ['url("#cam-mask-plain")', 'url("#cam-mask-ours")', 'url("#cam-gain-loss")']
    session, _, _ = analyses.on_image({"path": str(CAT)}, cam_core.DEFAULT_MODEL)
    ex = explain_request(inputs.VIEW.convert(session, "", *Controls().__dict__.values(), ""))
    codes = ex.plain.mask.astype(np.int64) * 2 + ex.ours.mask
    assert found["size"] == list(codes.shape)
    expected_counts = {str(html_views.CODE_LEVELS[c]): int(n) for c, n in enumerate(np.bincount(codes.ravel())) if n}
    assert found["counts"] == expected_counts  # every pixel at its code's level: the server's masks exactly


def test_the_signed_map_tab_shows_the_logit_check(page, tmp_path: Path) -> None:
    page.set_viewport_size({"width": 1440, "height": 1000})
    show_cat(page)  # the page opens on it (issue #23)
    page.wait_for_function("document.querySelector('#histogram line.threshold') !== null")
    page.get_by_role("tab", name="M+ / M−").click()
    page.wait_for_function("document.querySelector('#weights-caption').innerText.includes('Logit check')")
    page.wait_for_function("document.querySelectorAll('#signed-map img, #signed-bar img').length === 2")
    text = page.locator("#weights-caption").inner_text()
    total, logit = re.search(r"gives (-?[\d.]+); the model's logit for Egyptian cat is (-?\d+\.\d+)", text).groups()  # type: ignore[union-attr]
    assert abs(float(total) - float(logit)) <= 2e-3
    page.locator("#signed-map").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots(tmp_path) / "weights_signed.png"))
