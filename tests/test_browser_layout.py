"""Issue #14 items 14 and 13 in Chromium: controls and panels on one desktop screen; the page on a phone."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import histogram
from tests.helpers import EXAMPLES, shots, show_cat

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect
PANELS = ("#plain-panel img", "#ours-panel img")
SLIDERS = ("#theta-mas", "#theta-pas", "#percentile")
TOGGLES = ("#tap", "#nwc", "#pas")
# how much of a checkbox's label text is cut: its text's right edge against the nearest clipping ancestor's
LABEL_CUT = """el => {
  const label = el.querySelector('label');
  const range = document.createRange();
  range.selectNodeContents(label);
  const text = range.getBoundingClientRect();
  let clip = window.innerWidth;
  for (let node = label; node; node = node.parentElement) {
    if (getComputedStyle(node).overflowX !== 'visible') clip = Math.min(clip, node.getBoundingClientRect().right);
  }
  return {cut: text.right - clip, overflow: label.scrollWidth - label.clientWidth, text: label.innerText};
}"""


def _load_cat(page) -> None:
    show_cat(page)  # the page opens on it (issue #23)
    page.wait_for_function("document.querySelector('#plain-panel img').complete")


def _in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None, selector
    return (
        box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size["width"]
        and box["y"] + box["height"] <= size["height"]
    )  # fmt: skip


def test_controls_and_both_panels_on_one_desktop_screen(open_page, tmp_path: Path) -> None:
    """Item 14: at 1440 x 1000 both panels' pictures and every threshold slider are in the viewport at once,
    and the control bar stays there while the page scrolls down to the histogram."""
    desktop = open_page(viewport={"width": 1440, "height": 1000})
    _load_cat(desktop)
    for selector in (*PANELS, *SLIDERS, *TOGGLES, "#preset"):
        assert _in_viewport(desktop, selector), selector
    bar = desktop.locator("#control-bar").first.bounding_box()
    assert bar is not None and bar["height"] <= 200  # stuck over the scrolled page, it must hide little (was 281)
    folder = shots(tmp_path)
    desktop.screenshot(path=str(folder / "desktop_1440x1000.png"))
    desktop.locator("#histogram").first.scroll_into_view_if_needed()
    desktop.mouse.wheel(0, 400)
    desktop.wait_for_function("window.scrollY > 300")
    for selector in SLIDERS:  # sticky: still on screen, over the scrolled page
        assert _in_viewport(desktop, selector), selector
    number = desktop.get_by_label("number input for θ for MaS: threshold = θ · max")
    line = desktop.locator("#histogram line.threshold").first.get_attribute("data-value")
    number.fill("0.5")
    number.press("Enter")  # the bar still works while stuck
    desktop.wait_for_function(
        "([old]) => document.querySelector('#histogram line.threshold').getAttribute('data-value') !== old", arg=[line]
    )
    desktop.screenshot(path=str(folder / "desktop_scrolled.png"))


def test_phone_layout(open_page, tmp_path: Path) -> None:
    """Item 13: at 390 x 844 (touch) the panels stack full width, toggle labels are whole, the histogram
    is full width with axis text of at least 10 CSS px."""
    phone = open_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2)
    _load_cat(phone)
    plain, ours = (phone.locator(s).first.bounding_box() for s in PANELS)
    assert plain is not None and ours is not None
    assert plain["width"] >= 300 and abs(plain["width"] - ours["width"]) <= 1  # full width: 390 less the margins
    assert ours["y"] >= plain["y"] + plain["height"]  # stacked, one under the other
    for selector in TOGGLES:
        label = phone.locator(selector).first.evaluate(LABEL_CUT)
        assert label["cut"] <= 0.5 and label["overflow"] <= 0, (selector, label)
        assert label["text"].strip() in ("TAP", "NWC", "PaS")
    for selector in SLIDERS:
        box = phone.locator(selector).first.bounding_box()
        assert box is not None and box["width"] >= 300, selector  # one slider per line
    picture = phone.locator("#histogram img").first
    shown = picture.evaluate("img => [img.clientWidth, img.naturalWidth]")
    assert shown[0] >= 0.95 * plain["width"]
    assert histogram.FONT_PX * shown[0] / shown[1] >= 10  # axis text in CSS px
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    folder = shots(tmp_path)
    phone.locator("#caption").first.scroll_into_view_if_needed()
    phone.locator("#plain-panel").first.evaluate("el => el.scrollIntoView({block: 'start'})")
    phone.screenshot(path=str(folder / "phone_390x844.png"))
    phone.locator("#control-bar").first.evaluate("el => el.scrollIntoView({block: 'start'})")
    phone.screenshot(path=str(folder / "phone_controls.png"))


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DRAWN = "document.querySelector('#plain-panel img') !== null && document.querySelector('#plain-panel img').complete"


def test_the_page_opens_on_an_analysed_example_and_a_link_still_wins(open_page, app_url: str, tmp_path: Path) -> None:
    """Issue #23: the first screen is never blank: a bare URL opens on the bundled cat, analysed (panels, top-5,
    status); a deep link's example wins over it."""
    desktop = open_page(viewport={"width": 1440, "height": 1000})
    desktop.wait_for_function(DRAWN)
    desktop.wait_for_function("(document.querySelector('#status')?.innerText ?? '').includes('Egyptian cat')")
    assert desktop.locator("#class-pick input[type=radio]").count() == 5
    desktop.screenshot(path=str(shots(tmp_path) / "opening_1440x1000.png"))
    linked = open_page(f"{app_url}?example=coffee.jpg", viewport={"width": 1440, "height": 1000})
    linked.wait_for_function("(document.querySelector('#status')?.innerText ?? '').includes('espresso')")
    assert "Egyptian cat" not in linked.locator("#status").inner_text()


def test_on_a_phone_every_tab_is_reachable_and_an_upload_brings_the_panels_into_view(open_page, tmp_path: Path) -> None:
    """Issue #23: at 390 x 844 the eight tabs wrap onto rows (none behind Gradio's "..." menu); the opening example
    leaves the page at its top, and an upload scrolls its panels (~2,600 px below) into view."""
    phone = open_page(**PHONE)
    phone.wait_for_function(DRAWN)
    tabs = phone.locator("#tabs button[role=tab]")
    assert tabs.count() == 8
    for i in range(8):
        box = tabs.nth(i).bounding_box()
        assert tabs.nth(i).is_visible() and box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert phone.locator("#tabs .overflow-menu").count() == 0 or not phone.locator("#tabs .overflow-menu").is_visible()
    assert phone.evaluate("window.scrollY") == 0  # the opening photo is not the visitor's: no scroll
    phone.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "coffee.jpg"))
    phone.wait_for_function("(document.querySelector('#status')?.innerText ?? '').includes('espresso')")
    in_view = "(() => { const r = document.querySelector('#plain-panel').getBoundingClientRect();"
    phone.wait_for_function(in_view + " return r.top >= 0 && r.top < window.innerHeight / 2; })()")
    assert phone.evaluate("window.scrollY") > 1500
    phone.screenshot(path=str(shots(tmp_path) / "phone_after_upload.png"))
    tabs.nth(7).click()  # the last tab, reached without the overflow menu
    phone.wait_for_function("(document.querySelector('#tabs button[role=tab][aria-selected=true]')?.innerText ?? '')"
                            ".includes('Segmentation')")  # fmt: skip


def test_the_two_panels_pictures_start_at_one_height_when_a_title_wraps(open_page) -> None:
    """Issue #23: side by side, when one panel's title wraps onto more lines than the other's (a long class name,
    the TAP-trained head's longer title), both pictures still start at the same height."""
    desktop = open_page(viewport={"width": 1440, "height": 1000})
    measure = """() => ['#plain-panel', '#ours-panel'].map((id) => {
        const panel = document.querySelector(id);
        const text = document.createRange();
        text.selectNodeContents(panel.querySelector('figcaption'));
        const lines = new Set([...text.getClientRects()].map((r) => Math.round(r.top))).size;
        const picture = panel.querySelector('img').getBoundingClientRect();
        return [picture.top, lines, picture.left];
    })"""
    (plain_top, _, plain_left), (ours_top, _, ours_left) = desktop.evaluate(measure)
    assert ours_left - plain_left > 300 and abs(plain_top - ours_top) <= 1  # side by side, one line each
    # the plain title made three lines long, as a long class name does (the panels are redrawn on the next move)
    desktop.evaluate("""() => { const caption = document.querySelector('#plain-panel figcaption');
        caption.textContent += ' ' + caption.textContent + ' ' + caption.textContent; }""")
    (plain_top, plain_lines, _), (ours_top, ours_lines, _) = desktop.evaluate(measure)
    assert plain_lines >= 3 and ours_lines == 1
    assert abs(plain_top - ours_top) <= 1, (plain_top, ours_top)


# the topmost element at the centre of each block title (outside the bar) that lies under the stuck control bar
UNDER_THE_BAR = """() => {
  const bar = document.querySelector('#control-bar').getBoundingClientRect();
  const hits = [];
  for (const title of document.querySelectorAll('[data-testid="block-label"]')) {
    if (title.closest('#control-bar')) continue;
    const box = title.getBoundingClientRect();
    if (!box.width || !box.height) continue;
    const x = box.left + box.width / 2, y = box.top + box.height / 2;
    if (y <= bar.top || y >= bar.bottom || x <= bar.left || x >= bar.right) continue;
    const before = title.style.pointerEvents;
    title.style.pointerEvents = 'auto';  // Gradio's titles take no pointer events: elementFromPoint would look through
    const top = document.elementFromPoint(x, y);
    title.style.pointerEvents = before;
    hits.push({title: title.innerText, covered: !!(top && top.closest('#control-bar'))});
  }
  return hits;
}"""
# how far to scroll the page for the "Photos" file input's title to sit in the middle of the stuck bar
PHOTOS_UNDER_THE_BAR = """() => {
  const titles = [...document.querySelectorAll('[data-testid="block-label"]')];
  const title = titles.find((t) => t.innerText.trim() === 'Photos');
  const bar = document.querySelector('#control-bar').getBoundingClientRect();
  const box = title.getBoundingClientRect();
  return box.top + box.height / 2 - (bar.top + bar.bottom) / 2;
}"""


def test_the_stuck_control_bar_covers_what_scrolls_under_it(open_page, tmp_path: Path) -> None:
    """The sticky bar stays above every block that scrolls under it: Gradio draws block titles on layer 4 and their
    buttons on layer 5, and the Evaluate tab's "Photos" / "Boxes CSV" titles showed through a bar on z-index 20."""
    page = open_page()
    page.get_by_role("tab", name="Evaluate").click()
    expect(page.get_by_text("CAM-family methods to score too").first).to_be_visible()
    page.mouse.move(700, 600)
    for _ in range(5):  # a wheel scroll may land a few pixels off: correct it until the title is under the bar
        if page.evaluate(f"({UNDER_THE_BAR})().some((hit) => hit.title.includes('Photos'))"):
            break
        page.mouse.wheel(0, page.evaluate(PHOTOS_UNDER_THE_BAR))
        page.wait_for_timeout(300)
    page.wait_for_function(f"({UNDER_THE_BAR})().some((hit) => hit.title.includes('Photos'))")
    hits = page.evaluate(UNDER_THE_BAR)
    page.screenshot(path=str(shots(tmp_path) / "bar_over_evaluate.png"))
    assert all(hit["covered"] for hit in hits), hits
