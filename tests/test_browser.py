"""The app in Debian's Chromium (Playwright): upload a photo, move a slider, see boxes and histogram change.

Every assertion on the page waits for its own condition (Playwright's retrying ``expect``, or ``wait_for_function`` on
exactly what is asserted), never for another output to change first: the outputs of one response reach the page in
no promised order.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import EXAMPLES, THETA_MAS, shots, show_cat

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect


def _attr(page, selector: str, name: str) -> str:
    return page.locator(selector).first.get_attribute(name) or ""


def _upload_cat(page) -> None:
    show_cat(page)  # the page opens on the cat (issue #23): uploaded only where it shows something else
    expect(page.locator("#histogram line.threshold").first).to_be_attached()  # a line per panel


def _set_theta_mas(page, value: str) -> None:
    number = page.get_by_label(THETA_MAS)
    number.fill(value)
    number.press("Enter")


def test_upload_slider_updates_boxes_and_histogram(page, tmp_path: Path) -> None:
    _upload_cat(page)
    expect(page.locator("#caption")).to_contain_text("keeps")
    expect(page.locator("#status")).to_contain_text("Egyptian cat")
    caption = page.locator("#caption").inner_text()
    box, line = _attr(page, "#plain-panel rect.box", "data-box"), _attr(page, "#histogram line.threshold", "data-value")
    picture = _attr(page, "#plain-panel img", "src")

    _set_theta_mas(page, "0.6")
    expect(page.locator("#caption")).to_contain_text("0.60")
    expect(page.locator("#histogram line.threshold").first).to_have_attribute("data-value", "0.6000")  # it moved
    assert line != "0.6000"
    expect(page.locator("#plain-panel rect.box").first).not_to_have_attribute("data-box", box)  # the blue box moved
    plain_line = lambda text: next(line for line in text.splitlines() if line.startswith("Plain CAM"))  # noqa: E731
    page.wait_for_function(
        "([old]) => { const t = document.querySelector('#caption').innerText;"
        " const line = t.split('\\n').find((l) => l.startsWith('Plain CAM')); return line && line !== old; }",
        arg=[plain_line(caption)],
    )  # the blue box's foreground share moved in the caption
    assert _attr(page, "#plain-panel img", "src") == picture  # the heatmap picture itself was not re-sent
    assert page.locator("#plain-panel img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    shot = shots(tmp_path) / "app_after_slider.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000


def test_drag_draws_a_ground_truth_box_and_bad_input_is_said(page, tmp_path: Path) -> None:
    notice = page.locator("#notice")
    _upload_cat(page)  # the page opens on it (issue #23): "Upload a photo first" is checked after a refused file
    expect(notice).to_have_text("")
    field = page.locator("#gt-box textarea, #gt-box input").first
    stack = page.locator("#ours-panel .cam-stack").first.bounding_box()
    assert stack is not None
    page.mouse.move(stack["x"] + 0.25 * stack["width"], stack["y"] + 0.2 * stack["height"])
    page.mouse.down()
    page.mouse.move(stack["x"] + 0.75 * stack["width"], stack["y"] + 0.9 * stack["height"], steps=4)
    page.mouse.up()
    expect(page.locator("#plain-panel rect.box")).to_have_count(2)  # GT + CAM box
    expect(page.locator("#ours-panel rect.box")).to_have_count(2)
    expect(field).not_to_have_value("")
    x0, y0, x1, y1 = (int(v) for v in field.input_value().split(","))
    assert abs(x0 - 0.25 * 451) <= 2 and abs(y0 - 0.2 * 300) <= 2  # the cat is 451 x 300; display is smaller
    assert abs(x1 - 0.75 * 451) <= 2 and abs(y1 - 0.9 * 300) <= 2
    drawn = [_attr(page, f"#{panel} rect.box", "data-box") for panel in ("plain-panel", "ours-panel")]
    assert drawn[0] == drawn[1]  # the same gold box on both panels
    expect(page.locator("#caption").first).to_contain_text("Ground truth (gold): IoU plain")
    page.screenshot(path=str(shots(tmp_path) / "app_ground_truth.png"))

    field.fill("1, 2, three, 4")
    field.press("Enter")
    expect(notice).to_contain_text("write four numbers")
    page.get_by_role("button", name="Clear the ground-truth box").click()
    expect(page.locator("#plain-panel rect.box")).to_have_count(1)
    expect(field).to_have_value("")
    expect(notice).to_have_text("")

    field.fill("10, 10, 100, 100")
    field.press("Enter")
    expect(page.locator("#plain-panel rect.box")).to_have_count(2)
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "coffee.jpg"))
    expect(page.locator("#status")).to_contain_text("espresso")
    expect(page.locator("#plain-panel figcaption")).to_contain_text("espresso")
    expect(field).to_have_value("")  # a new photo drops the old ground truth
    expect(page.locator("#plain-panel rect.box")).to_have_count(1)


def _pixels(page, src: str) -> np.ndarray:
    """A picture the page shows, as the browser gets it from the server."""
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"))


def test_swipe_view_follows_the_sliders_while_open(page) -> None:
    _upload_cat(page)
    swipe = page.locator("#swipe img")
    pictures = lambda: [img.get_attribute("src") or "" for img in swipe.all()]  # noqa: E731
    page.get_by_role("tab", name="Swipe").click()
    expect(swipe).to_have_count(2)
    opened = pictures()
    _set_theta_mas(page, "0.6")
    expect(swipe.first).not_to_have_attribute("src", opened[0])
    expect(swipe.nth(1)).not_to_have_attribute("src", opened[1])  # one update redraws both pictures
    moved = pictures()
    # the plain panel's MaS box moved with θ; the improved panel (PaS: its own θ) is the same picture
    assert not np.array_equal(_pixels(page, moved[0]), _pixels(page, opened[0]))
    np.testing.assert_array_equal(_pixels(page, moved[1]), _pixels(page, opened[1]))
    page.get_by_role("tab", name="Plain vs improved").click()
    _set_theta_mas(page, "0.3")
    expect(page.locator("#caption")).to_contain_text("θ·max = 0.30")
    expect(swipe).to_have_count(0)  # hidden: emptied, not redrawn (no stale pictures for the next opening)
    page.get_by_role("tab", name="Swipe").click()  # opening draws it for the current threshold
    expect(swipe).to_have_count(2)
    assert pictures()[0] not in (opened[0], moved[0])


def _pick_resolution(page, label: str, exact: bool = True) -> None:
    page.locator("#resolution input").first.click()
    page.get_by_role("option", name=label, exact=exact).click()


def test_segmentation_tab_follows_the_sliders(page, tmp_path: Path) -> None:
    # 224 px / stride 32: the astronaut's top-3 pass the tab's 5 % floor there (calibrated, T = 0.84)
    _pick_resolution(page, "224 px, stride 32 -> 7x7 map")
    expect(page.locator("#status")).to_contain_text("224 px, stride 32")
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "astronaut.jpg"))
    expect(page.locator("#caption")).to_contain_text("224 px, stride 32")  # the astronaut, analysed at 224 / 32
    page.get_by_role("tab", name="Segmentation").click()
    legend = page.locator("#seg-legend")
    expect(legend.locator('tr[data-slot="3"]')).to_have_count(1)
    expect(legend).to_contain_text("bobsled")
    expect(legend).to_contain_text("football helmet")
    rows = legend.inner_text()
    overlay = _attr(page, "#seg-plain img.labels", "src")
    _set_theta_mas(page, "0.5")
    expect(page.locator("#seg-plain img.labels")).not_to_have_attribute("src", overlay)
    expect(legend).not_to_have_text(rows)  # the plain areas moved
    expect(page.locator("#seg-notice")).to_have_text("")
    search = page.locator("#seg-add input").first
    search.click()
    search.fill("281: tabby")
    search.press("ArrowDown")
    search.press("Enter")  # the first match joins the automatic three
    expect(legend.locator('tr[data-slot="4"]')).to_have_count(1)
    expect(legend).to_contain_text("281: tabby")
    expect(page.locator("#seg-notice")).to_have_text("")
    legend.scroll_into_view_if_needed()
    shot = shots(tmp_path) / "segtab.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000


def test_calibrated_probabilities_and_the_overclaim_flag_in_the_legend(page, tmp_path: Path) -> None:
    """Issue #23: at the defaults (448 px / 16) the status line says the probabilities are calibrated and gives T;
    the cat's Segmentation legend flags "tiger cat" (p 9.5 % calibrated, 49 % of the photo under plain CAM)."""
    _upload_cat(page)
    expect(page.locator("#status")).to_contain_text("probabilities calibrated at this resolution")
    expect(page.locator("#status")).to_contain_text("T = 0.34")
    page.get_by_role("tab", name="Segmentation").click()
    flagged = page.locator('#seg-legend tr[data-overclaims="1"]')
    expect(flagged).to_have_count(1)
    expect(flagged).to_contain_text("tiger cat")
    expect(flagged).to_contain_text("⚠ area ≫ probability")
    expect(page.locator('#seg-legend tr[data-slot="1"]')).not_to_have_attribute("data-overclaims", "1")
    for width, height in ((1440, 1000), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        flagged.scroll_into_view_if_needed()
        page.screenshot(path=str(shots(tmp_path) / f"seg_overclaim_{width}.png"), full_page=False)
        page.locator("#status").scroll_into_view_if_needed()
        page.screenshot(path=str(shots(tmp_path) / f"status_calibrated_{width}.png"), full_page=False)


def test_a_refused_upload_is_said_once_and_empties_the_views(page, tmp_path: Path) -> None:
    """Issue #14 item 16: no "Error (2)" toast, no red badges, no old panels: one status line."""
    _upload_cat(page)
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    page.locator("input[type=file]").first.set_input_files(str(bad))
    status = page.locator("#status")
    expect(status).to_contain_text("not an image format")
    expect(page.locator("#plain-panel img")).to_have_count(0)
    expect(page.locator("#histogram line.threshold")).to_have_count(0)
    expect(page.locator("#caption")).to_have_text("")
    expect(page.locator("#class-pick").first).to_be_hidden()
    # the browser sends this change twice: both answers are in when both requests of the photo event are done
    page.wait_for_function("() => !document.querySelector('.progress-text, .eta-bar')")
    page.wait_for_timeout(1500)  # a second answer would have come by now (nothing else to wait on: it must not)
    assert status.inner_text().count("not an image format") == 1
    assert page.locator(".toast-body").count() == 0 and page.locator("#notice").inner_text().strip() == ""
    page.screenshot(path=str(shots(tmp_path) / "app_refused_upload.png"))
    _set_theta_mas(page, "0.5")  # no photo now: an unqueued event, its error must still be visible
    expect(page.locator("#notice")).to_contain_text("Upload a photo first")
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "coffee.jpg"))
    expect(status).to_contain_text("espresso")
    expect(page.locator("#class-pick").first).to_be_visible()  # a good photo brings the picker back


def _download_json(page) -> dict:
    with page.expect_download() as download:
        page.locator("#download").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        return json.loads(archive.read("explanation.json"))


def test_the_download_is_what_the_screen_shows(page, tmp_path: Path) -> None:
    """Issue #14 item 7: the zip matches the caption at the moment of the click, from the first click on."""
    _upload_cat(page)
    _set_theta_mas(page, "0.6")
    expect(page.locator("#caption").first).to_contain_text("θ·max = 0.60")
    page.get_by_role("tab", name="JSON & export").click()
    assert _download_json(page)["plain"]["theta"] == 0.6
    _set_theta_mas(page, "0.3")  # moved while the export tab is open: the zip is made at the click, for 0.3
    expect(page.locator("#caption").first).to_contain_text("θ·max = 0.30")
    assert _download_json(page)["plain"]["theta"] == 0.3
    page.screenshot(path=str(shots(tmp_path) / "app_export.png"))


def test_the_resolution_control_reanalyses_and_keeps_the_class(page, tmp_path: Path) -> None:
    """Issue #13: 224 / 32 and back to 448 / 16 on the cat; the caption says the map size, the class stays, a hand
    change leaves the preset, a preset sets the resolution."""
    page.set_viewport_size({"width": 1440, "height": 1000})
    _upload_cat(page)
    caption, figure = page.locator("#caption").first, page.locator("#plain-panel figcaption")
    expect(caption).to_contain_text("448 px, stride 16 -> 28x28 map")
    expect(page.get_by_label("sharp (448 px)")).to_be_checked()
    page.get_by_label("tabby (").first.check()  # not the top-1: the class must survive the change
    expect(figure).to_contain_text("tabby")
    _pick_resolution(page, "224 px, stride 32 -> 7x7 map", exact=True)
    expect(caption).to_contain_text("224 px, stride 32 -> 7x7 map", timeout=90_000)
    expect(figure).to_contain_text("tabby")
    expect(page.locator("#status")).to_contain_text("224 px, stride 32 -> 7x7 map")
    expect(page.get_by_label("custom")).to_be_checked()  # moved by hand: no preset any more
    page.screenshot(path=str(shots(tmp_path) / "app_resolution_224.png"))
    _pick_resolution(page, "448 px, stride 16 -> 28x28 map", exact=True)
    expect(caption).to_contain_text("448 px, stride 16 -> 28x28 map", timeout=90_000)
    expect(figure).to_contain_text("tabby")
    page.screenshot(path=str(shots(tmp_path) / "app_resolution_448.png"))
    page.get_by_label("LID challenge").check()  # a preset sets the resolution and p
    expect(caption).to_contain_text("336 px, stride 16 -> 21x21 map", timeout=90_000)
    expect(page.locator("#resolution input").first).to_have_value("336 px, stride 16 -> 21x21 map")
    expect(caption).to_contain_text("θ·P98")


def test_a_typed_ground_truth_box_applies_when_the_field_is_left(page) -> None:
    """Issue #23: a box typed into the field is applied on leaving it (blur), not only on Enter."""
    _upload_cat(page)
    field = page.locator("#gt-box textarea, #gt-box input").first
    field.fill("60, 40, 300, 280")
    page.locator("#status").click()  # the visitor clicks elsewhere: the field loses the focus
    expect(page.locator("#plain-panel rect.box")).to_have_count(2)
    expect(page.locator("#caption").first).to_contain_text("Ground truth (gold): IoU plain")


def test_the_downloads_have_readable_names(page) -> None:
    """Issue #23: the zips download as ``cam-explanation-<photo>.zip`` and ``cam-label-maps-<photo>.zip``, not as
    the server's unguessable ``000000000012-<32 hex digits>.zip``."""
    _upload_cat(page)
    page.get_by_role("tab", name="JSON & export").click()
    with page.expect_download() as download:
        page.locator("#download").click()
    assert download.value.suggested_filename == "cam-explanation-cat.zip"
    page.get_by_role("tab", name="Segmentation").click()
    page.wait_for_function("(document.querySelector('#seg-legend')?.innerText ?? '').includes('cat')")
    with page.expect_download() as download:
        page.locator("#seg-download").click()
    assert download.value.suggested_filename == "cam-label-maps-cat.zip"


def test_the_method_menu_drives_both_panels_and_the_link(open_page, app_url: str, tmp_path: Path) -> None:
    """Issue #25: picking Grad-CAM redraws both panels with its map (the first time through the queue: its map is made
    there), the caption names it with its identity to CAM measured on the photo, the blue box is labelled with it,
    a slider then moves its boxes, and the URL records it; a link naming LayerCAM opens on it and says why NWC does
    nothing there."""
    page = open_page()
    caption, notice = page.locator("#caption"), page.locator("#notice")
    _upload_cat(page)
    expect(caption).not_to_contain_text("Method:")
    page.locator("#method input").first.click()
    page.get_by_role("option", name="Grad-CAM", exact=True).click()
    expect(caption).to_contain_text("Method: Grad-CAM")
    expect(caption).to_contain_text("ReLU(CAM) / (h w)")
    expect(caption).to_contain_text("(float32 noise)")
    expect(page.locator("#plain-panel")).to_contain_text("Grad-CAM, MaS")
    expect(page.locator("#ours-panel")).to_contain_text("Grad-CAM+NWC+PaS")
    page.wait_for_function("() => new URLSearchParams(location.search).get('method') === 'gradcam'")
    box = _attr(page, "#plain-panel rect.box", "data-box")
    _set_theta_mas(page, "0.6")
    expect(caption).to_contain_text("θ·max = 0.60")
    expect(page.locator("#plain-panel rect.box").first).not_to_have_attribute("data-box", box)
    expect(notice).to_have_text("")
    shot = shots(tmp_path) / "method_gradcam.png"
    page.screenshot(path=str(shot), full_page=True)
    linked = open_page(f"{app_url}?example=cat.jpg&method=layercam")
    expect(linked.locator("#caption")).to_contain_text("Method: LayerCAM")
    expect(linked.locator("#caption")).to_contain_text("NWC is undefined for LayerCAM")
    expect(linked.locator("#ours-panel")).to_contain_text("LayerCAM+PaS")
    expect(linked.locator("#method input").first).to_have_value("LayerCAM")
