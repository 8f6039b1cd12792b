"""The app's long texts (app/texts.py) and the labels they name say what is on screen."""

from __future__ import annotations

import re
from pathlib import Path

from app import (
    inputs,
    sidebar,
)
from app.state import Session
from app.tabs import compare
from tests.helpers import view_request

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def test_wording_says_what_is_on_screen(cat_session: Session) -> None:
    """Issue #14 item 18: no tab that does not exist, only the project's own numbers, each example named."""
    from app import texts

    assert "histogram tab" not in texts.HOW_IT_WORKS and "histogram under the panels" in texts.HOW_IT_WORKS
    readme = (EXAMPLES.parent.parent / "README.md").read_text()
    for number in re.findall(r"\b\d+\.\d\b", texts.HOW_IT_WORKS):  # every measured number is in the README
        assert number in readme, number
    assert "Bae et al.'s LID 2020 entry" in texts.CRF_INTRO and "seed paper" not in texts.CRF_INTRO
    named = sidebar.EXAMPLES_LABEL.split(": ", 1)[1].split(", ")
    assert [label.split()[0] for label in named] == ["cat", "espresso", "rocket", "coins", "astronaut"]
    assert len(named) == len(inputs.EXAMPLE_FILES) and "part-only" not in sidebar.EXAMPLES_LABEL
    caption = compare.render_localization(view_request(cat_session, "285")).caption
    assert "Share of M- inside the green box" in caption and "evidence *against* the class" in caption


def test_how_it_works_numbers_are_the_default_resolutions_measured_ones() -> None:
    """Issue #23: "How it works" quotes the 448 / 16 row of the measured grid (not 224 / 32's), and TAP's pair as
    the Why TAP caption and docs/tap_training.md do."""
    from app import tap_alone, texts

    root = Path(__file__).resolve().parent.parent
    row = next(r for r in (root / "docs" / "resolution_grid.md").read_text(encoding="utf-8").splitlines()
               if r.startswith("| 448 px, stride 16"))  # fmt: skip
    cells = [c.strip() for c in row.split("|")[1:-1]]  # setting, top-1, V2 cam, pas, nwc, nwc+pas, diff [CI], GT-known
    v2_cam, v2_ours, diff, gt_known = cells[2], cells[5], cells[6], cells[7]
    text = texts.HOW_IT_WORKS.replace("−", "-")
    assert f"MaxBoxAccV2\n{v2_cam} plain CAM vs {v2_ours} NWC+PaS" in text
    assert f"({diff.split(' ')[0]}, 95 % interval {diff.split(' ', 1)[1]})" in text
    assert "GT-known Loc {} vs {}".format(*gt_known.split(" / ")) in text
    measured = tap_alone.MEASURED["448/16"].replace("−", "-").replace("**", "")
    for number in re.findall(r"[+-]\d\.\d \[[^\]]+\]", measured)[:2]:  # V2 with plain CAM, with NWC+PaS
        assert number in " ".join(text.split()), number
    assert "no localisation gain" in text and "head-only" in text


def test_readme_states_the_apps_own_limits() -> None:
    """Issue #23: the README is a user's document with no stale claim; its limits are the code's constants."""
    from app import hosting
    from app.tabs import evaluate

    readme = (EXAMPLES.parent.parent / "README.md").read_text(encoding="utf-8")
    assert "not built yet" not in readme and "three bundled examples" not in readme
    assert f"{hosting.MAX_FILE_MB} MB a file" in readme
    assert f"{hosting.MAX_UPLOAD_BYTES // 2**20} MB a request" in readme
    assert f"up to\n   {evaluate.MAX_IMAGES} photos, {evaluate.MAX_TOTAL_MB} MB in all" in readme
    assert f"the {len(evaluate.boxed_examples())} bundled examples that have boxes" in readme
    assert "one of five\nexamples" in readme and len(inputs.EXAMPLE_FILES) == 5
    for heading in ("## Install", "## API", "## Library", "## Security"):  # other branches add blocks under these
        assert f"\n{heading}\n" in readme
    for link in re.findall(r"\]\(((?:docs|assets)/[^)#]+)\)", readme):  # every linked file exists
        assert (EXAMPLES.parent.parent / link).is_file(), link
