"""The app in Debian's Chromium (Playwright): upload a photo, move a slider, see boxes and histogram change."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.test_app_server import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


CSP_WATCH = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
                          (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"""


def watch_csp(page) -> list[str]:
    """Record the page's Content-Security-Policy violations (issue #22 item 5): the DOM event (from the next
    navigation on) and the console's report; read them with :func:`csp_violations`."""
    seen: list[str] = []
    page.add_init_script(CSP_WATCH)
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None)
    return seen


def csp_violations(page, seen: list[str]) -> list[str]:
    """Every violation :func:`watch_csp` recorded so far."""
    return [*seen, *page.evaluate("window.__csp || []")]


@pytest.fixture
def page(app_url: str):
    """The app in Chromium; on teardown, no Content-Security-Policy violation may have happened."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1150})
        page.set_default_timeout(30_000)
        seen = watch_csp(page)
        page.goto(app_url)
        yield page
        violations = csp_violations(page, seen)
        browser.close()
        assert violations == [], violations


def _attr(page, selector: str, name: str) -> str:
    return page.locator(selector).first.get_attribute(name) or ""


def test_upload_slider_updates_boxes_and_histogram(page, tmp_path: Path) -> None:
    page.locator("input[type=file]").first.set_input_files(str(ROOT / "assets" / "examples" / "cat.jpg"))
    page.wait_for_function(
        "document.querySelector('#caption') && document.querySelector('#caption').innerText.includes('keeps')"
    )
    page.wait_for_function("document.querySelector('#histogram line.threshold') !== null")
    assert "Egyptian cat" in page.locator("#status").inner_text()
    caption = page.locator("#caption").inner_text()
    box, line = _attr(page, "#plain-panel rect.box", "data-box"), _attr(page, "#histogram line.threshold", "data-value")
    picture = _attr(page, "#plain-panel img", "src")

    number = page.get_by_label("number input for θ for MaS: threshold = θ · max")
    number.fill("0.6")
    number.press("Enter")
    page.wait_for_function(
        "([old]) => { const t = document.querySelector('#caption').innerText; return t !== old && t.includes('0.60') }",
        arg=[caption],
    )
    new_caption = page.locator("#caption").inner_text()
    assert _attr(page, "#plain-panel rect.box", "data-box") != box  # the blue box moved on screen
    assert _attr(page, "#histogram line.threshold", "data-value") == "0.6000" != line  # the MaS line moved
    assert _attr(page, "#plain-panel img", "src") == picture  # the heatmap picture itself was not re-sent
    assert page.locator("#plain-panel img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    plain_line = lambda text: next(line for line in text.splitlines() if line.startswith("Plain CAM"))  # noqa: E731
    assert plain_line(new_caption) != plain_line(caption)  # the blue box and its foreground share moved
    shot = Path(os.environ.get("CAM_SCREENSHOT_DIR", tmp_path)) / "app_after_slider.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000


def _upload_cat(page) -> None:
    page.locator("input[type=file]").first.set_input_files(str(ROOT / "assets" / "examples" / "cat.jpg"))
    page.wait_for_function("document.querySelector('#histogram line.threshold') !== null")


def test_drag_draws_a_ground_truth_box_and_bad_input_is_said(page, tmp_path: Path) -> None:
    number = page.get_by_label("number input for θ for MaS: threshold = θ · max")
    number.fill("0.5")
    number.press("Enter")  # no photo yet: an unqueued event, its error must still be visible
    page.wait_for_function("document.querySelector('#notice').innerText.includes('Upload a photo first')")

    _upload_cat(page)
    assert page.locator("#notice").inner_text().strip() == ""  # the first good update clears the notice
    field = page.locator("#gt-box textarea, #gt-box input").first
    stack = page.locator("#ours-panel .cam-stack").first.bounding_box()
    assert stack is not None
    page.mouse.move(stack["x"] + 0.25 * stack["width"], stack["y"] + 0.2 * stack["height"])
    page.mouse.down()
    page.mouse.move(stack["x"] + 0.75 * stack["width"], stack["y"] + 0.9 * stack["height"], steps=4)
    page.mouse.up()
    page.wait_for_function("document.querySelectorAll('#plain-panel rect.box').length === 2")  # GT + CAM box
    x0, y0, x1, y1 = (int(v) for v in field.input_value().split(","))
    assert abs(x0 - 0.25 * 451) <= 2 and abs(y0 - 0.2 * 300) <= 2  # the cat is 451 x 300; display is smaller
    assert abs(x1 - 0.75 * 451) <= 2 and abs(y1 - 0.9 * 300) <= 2
    drawn = [_attr(page, f"#{panel} rect.box", "data-box") for panel in ("plain-panel", "ours-panel")]
    assert drawn[0] == drawn[1]  # the same gold box on both panels
    assert "Ground truth (gold): IoU plain" in page.locator("#caption").first.inner_text()
    page.screenshot(path=str(Path(os.environ.get("CAM_SCREENSHOT_DIR", tmp_path)) / "app_ground_truth.png"))

    field.fill("1, 2, three, 4")
    field.press("Enter")
    page.wait_for_function("document.querySelector('#notice').innerText.includes('write four numbers')")
    page.get_by_role("button", name="Clear the ground-truth box").click()
    page.wait_for_function("document.querySelectorAll('#plain-panel rect.box').length === 1")
    assert field.input_value() == "" and page.locator("#notice").inner_text().strip() == ""

    field.fill("10, 10, 100, 100")
    field.press("Enter")
    page.wait_for_function("document.querySelectorAll('#plain-panel rect.box').length === 2")
    page.locator("input[type=file]").first.set_input_files(str(ROOT / "assets" / "examples" / "coffee.jpg"))
    page.wait_for_function("document.querySelector('#status').innerText.includes('espresso')")
    page.wait_for_function("document.querySelector('#plain-panel figcaption').innerText.includes('espresso')")
    assert field.input_value() == ""  # a new photo drops the old ground truth
    assert page.locator("#plain-panel rect.box").count() == 1


def test_swipe_view_follows_the_sliders_while_open(page) -> None:
    _upload_cat(page)
    pictures = lambda: [img.get_attribute("src") for img in page.locator("#swipe img").all()]  # noqa: E731
    page.get_by_role("tab", name="Swipe").click()
    page.wait_for_function("document.querySelectorAll('#swipe img').length === 2")
    opened = pictures()
    number = page.get_by_label("number input for θ for MaS: threshold = θ · max")
    number.fill("0.6")
    number.press("Enter")
    page.wait_for_function(
        "([old]) => document.querySelector('#swipe img').getAttribute('src') !== old", arg=[opened[0]]
    )
    moved = pictures()
    assert moved[0] != opened[0] and moved[1] == moved[1]
    page.get_by_role("tab", name="Plain vs improved").click()
    caption = page.locator("#caption").first.inner_text()
    number.fill("0.3")
    number.press("Enter")
    page.wait_for_function("([old]) => document.querySelector('#caption').innerText !== old", arg=[caption])
    assert pictures() == []  # hidden: emptied, not redrawn (no stale pictures for the next opening)
    page.get_by_role("tab", name="Swipe").click()  # opening draws it for the current threshold
    page.wait_for_function("document.querySelectorAll('#swipe img').length === 2")
    assert pictures()[0] not in (opened[0], moved[0])


def test_segmentation_tab_follows_the_sliders(page) -> None:
    # 224 px / stride 32: the astronaut's top-3 pass the tab's 5 % floor there (at 448 / 16 none does)
    _pick_resolution(page, "224 px, stride 32 -> 7x7 map")
    page.wait_for_function("document.querySelector('#status').innerText.includes('224 px, stride 32')")
    page.locator("input[type=file]").first.set_input_files(str(ROOT / "assets" / "examples" / "astronaut.jpg"))
    page.wait_for_function("document.querySelector('#histogram line.threshold') !== null")
    page.get_by_role("tab", name="Segmentation").click()
    page.wait_for_function("document.querySelector('#seg-legend tr[data-slot=\"3\"]') !== null")
    legend = page.locator("#seg-legend").inner_text()
    assert "bobsled" in legend and "football helmet" in legend
    overlay = _attr(page, "#seg-plain img.labels", "src")
    number = page.get_by_label("number input for θ for MaS: threshold = θ · max")
    number.fill("0.5")
    number.press("Enter")
    page.wait_for_function(
        "([old]) => document.querySelector('#seg-plain img.labels').getAttribute('src') !== old", arg=[overlay]
    )
    assert page.locator("#seg-legend").inner_text() != legend  # the plain areas moved
    assert page.locator("#seg-notice").inner_text().strip() == ""
    search = page.locator("#seg-add input").first
    search.click()
    search.fill("281: tabby")
    search.press("ArrowDown")
    search.press("Enter")  # the first match joins the automatic three
    page.wait_for_function("document.querySelector('#seg-legend tr[data-slot=\"4\"]') !== null")
    assert "281: tabby" in page.locator("#seg-legend").inner_text()
    assert page.locator("#seg-notice").inner_text().strip() == ""
    page.locator("#seg-legend").scroll_into_view_if_needed()
    shot = Path(os.environ.get("CAM_SCREENSHOT_DIR", "/tmp")) / "segtab.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000


def test_a_refused_upload_is_said_once_and_empties_the_views(page, tmp_path: Path) -> None:
    """Issue #14 item 16: no "Error (2)" toast, no red badges, no old panels: one status line."""
    _upload_cat(page)
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    page.locator("input[type=file]").first.set_input_files(str(bad))
    page.wait_for_function("document.querySelector('#status').innerText.includes('not an image format')")
    page.wait_for_function("document.querySelector('#plain-panel img') === null")
    page.wait_for_timeout(1500)  # the browser sends this change twice: both answers must be quiet
    assert page.locator("#status").inner_text().count("not an image format") == 1
    assert page.locator(".toast-body").count() == 0 and page.locator("#notice").inner_text().strip() == ""
    assert not page.locator("#class-pick").first.is_visible()
    assert page.locator("#histogram line.threshold").count() == 0 and page.locator("#caption").inner_text() == ""
    page.screenshot(path=str(Path(os.environ.get("CAM_SCREENSHOT_DIR", tmp_path)) / "app_refused_upload.png"))
    page.locator("input[type=file]").first.set_input_files(str(ROOT / "assets" / "examples" / "coffee.jpg"))
    page.wait_for_function("document.querySelector('#status').innerText.includes('espresso')")
    assert page.locator("#class-pick").first.is_visible()  # a good photo brings the picker back


def _set_theta_mas(page, value: str) -> None:
    caption = page.locator("#caption").first.text_content()
    number = page.get_by_label("number input for θ for MaS: threshold = θ · max")
    number.fill(value)
    number.press("Enter")
    page.wait_for_function("([old]) => document.querySelector('#caption').textContent !== old", arg=[caption])


def _download_json(page) -> dict:
    with page.expect_download() as download:
        page.locator("#download").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        return json.loads(archive.read("explanation.json"))


def test_the_download_is_what_the_screen_shows(page, tmp_path: Path) -> None:
    """Issue #14 item 7: the zip matches the caption at the moment of the click, from the first click on."""
    _upload_cat(page)
    _set_theta_mas(page, "0.6")
    page.get_by_role("tab", name="JSON & export").click()
    page.wait_for_timeout(1000)  # the tab's select event makes the zip
    caption = page.locator("#caption").first.text_content() or ""
    assert "θ·max = 0.60" in caption and _download_json(page)["plain"]["theta"] == 0.6
    _set_theta_mas(page, "0.3")  # moved while the export tab is open: the zip is remade before the click
    page.wait_for_timeout(500)
    caption = page.locator("#caption").first.text_content() or ""
    assert "θ·max = 0.30" in caption and _download_json(page)["plain"]["theta"] == 0.3
    page.screenshot(path=str(Path(os.environ.get("CAM_SCREENSHOT_DIR", tmp_path)) / "app_export.png"))


def _pick_resolution(page, label: str, exact: bool = True) -> None:
    page.locator("#resolution input").first.click()
    page.get_by_role("option", name=label, exact=exact).click()


def test_the_resolution_control_reanalyses_and_keeps_the_class(page, tmp_path: Path) -> None:
    """Issue #13: 224 / 32 and back to 448 / 16 on the cat; the caption says the map size, the class stays, a hand
    change leaves the preset, a preset sets the resolution."""
    page.set_viewport_size({"width": 1440, "height": 1000})
    _upload_cat(page)
    caption = lambda: page.locator("#caption").first.inner_text()  # noqa: E731
    assert "448 px, stride 16 -> 28x28 map" in caption()
    assert page.get_by_label("sharp (448 px)").is_checked()
    page.get_by_label("tabby (").first.check()  # not the top-1: the class must survive the change
    page.wait_for_function("document.querySelector('#plain-panel figcaption').innerText.includes('tabby')")
    _pick_resolution(page, "224 px, stride 32 -> 7x7 map", exact=True)
    page.wait_for_function(
        "document.querySelector('#caption').innerText.includes('224 px, stride 32 -> 7x7 map')", timeout=90_000
    )
    assert "tabby" in page.locator("#plain-panel figcaption").inner_text()
    assert "224 px, stride 32 -> 7x7 map" in page.locator("#status").inner_text()
    assert page.get_by_label("custom").is_checked()  # moved by hand: no preset any more
    shots = Path(os.environ.get("CAM_SCREENSHOT_DIR", tmp_path))
    page.screenshot(path=str(shots / "app_resolution_224.png"))
    _pick_resolution(page, "448 px, stride 16 -> 28x28 map", exact=True)
    page.wait_for_function(
        "document.querySelector('#caption').innerText.includes('448 px, stride 16 -> 28x28 map')", timeout=90_000
    )
    assert "tabby" in page.locator("#plain-panel figcaption").inner_text()
    page.screenshot(path=str(shots / "app_resolution_448.png"))
    page.get_by_label("LID challenge").check()  # a preset sets the resolution and p
    page.wait_for_function(
        "document.querySelector('#caption').innerText.includes('336 px, stride 16 -> 21x21 map')", timeout=90_000
    )
    assert "336 px, stride 16" in page.locator("#resolution input").first.input_value()
    page.wait_for_function("document.querySelector('#caption').innerText.includes('θ·P98')")
