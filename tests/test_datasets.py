"""Data-set readers: boxes CSV edge cases, uploads matched by base name, box fitting, OpenImages masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cam_core
from cam_core.datasets import (
    fit_boxes,
    load_wsol_masks,
    read_boxes_csv,
    read_boxes_csv_for_uploads,
    read_wsol_metadata,
)
from cam_core.errors import DatasetError, InvalidImageError
from cam_core.evaluate import evaluate
from cam_core.evaluate.metrics import Evaluator

HEADER = "filename,class_index,x0,y0,x1,y1\n"


def test_utf8_bom_csv_as_excel_saves_it(tmp_path: Path) -> None:
    path = tmp_path / "boxes.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "a.png,3,1,2,3,4\n").encode())
    (sample,) = read_boxes_csv(path, tmp_path)
    assert sample.path == tmp_path / "a.png" and sample.class_index == 3 and sample.lines == (2,)


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("a.png,0,-1,0,5,5", "negative box coordinate"),
        ("a\x00b.png,0,0,0,5,5", "NUL byte"),
        ("../secret.png,0,0,0,5,5", "without '..'"),
        ("/etc/a.png,0,0,0,5,5", "relative"),
    ],
)
def test_refused_rows_name_the_line(tmp_path: Path, row: str, match: str) -> None:
    path = tmp_path / "boxes.csv"
    path.write_text(HEADER + "ok.png,0,0,0,5,5\n" + row + "\n")
    with pytest.raises(DatasetError, match=rf"line 3: .*{match}"):
        read_boxes_csv(path, tmp_path)


def test_subfolders_are_allowed_for_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "boxes.csv"
    path.write_text(HEADER + "val/a.png,0,0,0,5,5\n")
    assert read_boxes_csv(path, tmp_path)[0].path == tmp_path / "val" / "a.png"


def test_uploads_are_matched_by_base_name_only(tmp_path: Path) -> None:
    path = tmp_path / "server" / "boxes.csv"
    path.parent.mkdir()
    path.write_text(
        HEADER + "cat.jpg,1,0,0,5,5\nsub/cat.jpg,1,0,0,5,5\nc\x00t.jpg,1,0,0,5,5\n"
        "dog.jpg,2,1,1,4,4\ncat.jpg,1,2,2,6,6\nbird.jpg,3,0,0,1,1\n./dog.jpg,2,0,0,1,1\n"
    )
    uploads = {"cat.jpg": tmp_path / "u1" / "cat.jpg", "dog.jpg": tmp_path / "u2" / "dog.jpg"}
    samples, skipped = read_boxes_csv_for_uploads(path, uploads)
    assert [(s.path, s.class_index, s.lines) for s in samples] == [
        (uploads["cat.jpg"], 1, (2, 6)),
        (uploads["dog.jpg"], 2, (5,)),
    ]
    assert [(s["line"], s["reason"].split(";")[0]) for s in skipped] == [
        ("3", "the filename has a path component"),
        ("4", "the filename contains a NUL byte"),
        ("7", "no uploaded photo has this name"),
        ("8", "the filename has a path component"),  # pathlib would read "./dog.jpg" as "dog.jpg"
    ]
    assert skipped[1]["file"] == "c\\x00t.jpg"  # printable
    path.write_text("name,cls\n")
    with pytest.raises(DatasetError, match=r"^boxes\.csv, line 1: header") as info:
        read_boxes_csv_for_uploads(path, uploads)
    assert "server" not in str(info.value)  # base name only, never the server path


def test_fit_boxes_clips_and_refuses() -> None:
    boxes = np.array([[0, 0, 223.55, 100], [10, 10, 230, 240], [5, 5, 9, 9.0]])
    fitted, warnings = fit_boxes(boxes, (2, 3, 4), (224, 224))
    np.testing.assert_array_equal(fitted, [[0, 0, 223, 100], [10, 10, 223, 223], [5, 5, 9, 9]])
    assert len(warnings) == 1 and warnings[0].startswith("line 3: box") and "clipped" in warnings[0]
    with pytest.raises(InvalidImageError, match=r"line 7: box .* outside the 224x100 photo"):
        fit_boxes(np.array([[0, 0, 5, 5], [0, 150, 5, 160]]), (6, 7), (100, 224))


def _png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


@pytest.fixture
def openimages(tmp_path: Path) -> Path:
    """wsolevaluation's OpenImages layout: two instance masks + an ignore mask for one 32x32 photo."""
    meta, masks = tmp_path / "meta", tmp_path / "masks"
    meta.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    first, second, ignore = (np.zeros((32, 32), bool) for _ in range(3))
    first[2:10, 2:10], second[20:30, 16:28], ignore[0:16, 0:16] = True, True, True
    for name, mask in (("a_m1.png", first), ("a_m2.png", second), ("a_ignore.png", ignore)):
        _png(masks / "val" / name, mask)
    (meta / "image_ids.txt").write_text("a.jpg\n")
    (meta / "class_labels.txt").write_text("a.jpg,1\n")
    (meta / "localization.txt").write_text("a.jpg,val/a_m1.png,val/a_ignore.png\na.jpg,val/a_m2.png,\n")
    return tmp_path


def test_openimages_masks_union_and_ignore(openimages: Path) -> None:
    (sample,) = read_wsol_metadata(openimages / "meta", openimages)
    assert sample.masks == ("val/a_m1.png", "val/a_m2.png") and sample.ignore == "val/a_ignore.png"
    assert sample.boxes.shape == (0, 4)
    foreground, ignore, boxes = load_wsol_masks(openimages / "masks", sample)
    assert foreground.sum() == 64 + 120 and ignore.sum() == 256 - 64 and not (foreground & ignore).any()
    np.testing.assert_array_equal(boxes, [[2, 2, 9, 9], [16, 20, 27, 29]])


def test_pxap_excludes_ignored_pixels_by_hand() -> None:
    """Scores 0.9 (P), 0.6 (N), 0.3 (N), 0.1 (P). All counted: AP = 1/2 * 1 + 1/2 * 2/4 = 0.75.
    With 0.6 ignored (wsolevaluation's OpenImages rule): 1/2 * 1 + 1/2 * 2/3 = 5/6."""
    scores = np.array([[0.9, 0.6, 0.3, 0.1]], np.float32)
    gt = np.array([[True, False, False, True]])
    ignore = np.array([[False, True, False, False]])
    box = np.array([[0, 0, 0, 0]])
    ev = Evaluator()
    ev.accumulate(scores, box, box[0], gt_mask=gt)
    assert ev.compute().pxap == pytest.approx(75.0)
    ev.reset()
    ev.accumulate(scores, box, box[0], gt_mask=gt, gt_ignore=ignore)
    assert ev.compute().pxap == pytest.approx(500 / 6)


def test_evaluate_openimages_layout(tiny_model: cam_core.LoadedModel, openimages: Path) -> None:
    samples = read_wsol_metadata(openimages / "meta", openimages)
    result = evaluate(tiny_model, samples, masks=openimages / "masks")
    metrics = result.configs["cam"]
    assert result.n_images == 1 and metrics.pxap is not None and metrics.mask_iou is not None
    with pytest.raises(DatasetError, match=r"No image could be evaluated \(1 skipped; first: a\.jpg: .*--masks"):
        evaluate(tiny_model, samples)


def test_evaluate_clips_with_a_warning_and_skips_outside(tiny_model: cam_core.LoadedModel, tmp_path: Path) -> None:
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(tmp_path / "a.png")
    path = tmp_path / "boxes.csv"
    path.write_text(HEADER + "a.png,0,2,2,40,10\nb.png,0,50,0,60,5\n")
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(tmp_path / "b.png")
    result = evaluate(tiny_model, read_boxes_csv(path, tmp_path))
    assert [w["reason"].split(":")[0] for w in result.warnings] == ["line 2"] and "clipped" in result.warnings[0][
        "reason"
    ]
    assert result.n_images == 1 and "line 3: box" in result.skipped[0]["reason"]
